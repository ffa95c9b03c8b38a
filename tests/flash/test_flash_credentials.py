"""The default user: from inventory vars (plain or vault), a key, or a prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from tx2setup.errors import UserError
from tx2setup.flash import credentials
from tx2setup.fleet import Board

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx0f1uYk3w9m0cWmQb6JXQ1oOq2r9b3bqk9hYb2l7xN lab@control"


def board(name: str = "b1", **hostvars: Any) -> Board:
    return Board(name, "10.0.0.1", "tx2", "4.6.4", None, 15.0, (), (), hostvars=hostvars)


def test_user_and_password_from_the_inventory() -> None:
    user = credentials.resolve([board(flash_user="robot", flash_password="pw1")])
    assert (user.name, user.password, user.ssh_pubkey, user.password_generated) == ("robot", "pw1", None, False)
    assert credentials.resolve([board(ansible_user="nvidia", flash_password="pw")]).name == "nvidia"


def test_vaulted_password(tmp_path: Path) -> None:
    secret = tmp_path / "vault-pass"
    secret.write_text("hunter2\n")
    cipher = VaultLib([("default", VaultSecret(b"hunter2"))]).encrypt("s3cret").decode()
    b = board(flash_user="nvidia", flash_password={"__ansible_vault": cipher})
    assert credentials.resolve([b], vault_password_file=str(secret)).password == "s3cret"
    with pytest.raises(UserError, match="host b1: flash_password: vault-encrypted; pass --vault-password-file"):
        credentials.resolve([b])
    secret.write_text("wrong\n")
    with pytest.raises(UserError, match="does not decrypt it"):
        credentials.resolve([b], vault_password_file=str(secret))


def test_key_only_gets_a_random_password(tmp_path: Path) -> None:
    keyfile = tmp_path / "id.pub"
    keyfile.write_text(KEY + "\n")
    user = credentials.resolve([board(flash_user="nvidia", flash_ssh_key=str(keyfile))])
    assert user.ssh_pubkey == KEY and user.password_generated and len(user.password) >= 12
    with pytest.raises(UserError, match="flash_ssh_key: 'nonsense' is neither a public key line nor a readable file"):
        credentials.resolve([board(flash_user="nvidia", flash_ssh_key="nonsense")])


def test_missing_values_are_asked_for_or_refused() -> None:
    with pytest.raises(UserError, match=r"host b1: flash_password: missing"):
        credentials.resolve([board(flash_user="nvidia")])
    with pytest.raises(UserError, match=r"host b1: flash_user: missing"):
        credentials.resolve([board(flash_password="pw")])
    prompts: list[tuple[str, bool]] = []

    def ask(prompt: str, hide: bool) -> str:
        prompts.append((prompt, hide))
        return "jetson" if not hide else "typed-pw"

    user = credentials.resolve([board()], ask=ask)
    assert (user.name, user.password) == ("jetson", "typed-pw")
    assert [hide for _, hide in prompts] == [False, True]  # the password is asked for hidden


def test_boards_in_one_run_must_share_the_user() -> None:
    with pytest.raises(UserError, match="host b2: flash_password: differs from host b1"):
        b1, b2 = board("b1", flash_user="n", flash_password="a"), board("b2", flash_user="n", flash_password="b")
        credentials.resolve([b1, b2])
    with pytest.raises(UserError, match="flash_user: 'Bad User' is not a valid Linux user name"):
        credentials.resolve([board(flash_user="Bad User", flash_password="x")])


def test_install_key_into_the_rootfs(bsp: Path) -> None:
    rootfs = bsp / "rootfs"
    with (rootfs / "etc" / "passwd").open("a") as fh:
        fh.write("nvidia:x:1000:1000::/home/nvidia:/bin/bash\n")
    user = credentials.DefaultUser("nvidia", "pw", KEY)
    keys = credentials.install_key(rootfs, user)
    assert keys == rootfs / "home" / "nvidia" / ".ssh" / "authorized_keys"
    assert keys.read_text() == KEY + "\n"
    st = keys.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1000, 1000, 0o600)
    credentials.install_key(rootfs, user)  # idempotent
    assert keys.read_text().count("ssh-ed25519") == 1
    newer = KEY.replace("lab@control", "lab@new-control").replace("hYb2l7xN", "hYb2l7xM")
    credentials.install_key(rootfs, credentials.DefaultUser("nvidia", "pw", newer))
    assert keys.read_text() == newer + "\n"  # the earlier run's key does not stay
    with pytest.raises(UserError, match="user ghost was not created"):
        credentials.install_key(rootfs, credentials.DefaultUser("ghost", "pw", KEY))
