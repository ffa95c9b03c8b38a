"""A passphrase-protected SSH key for the boards, checked before anything connects (issue 13).

tx2setup never reads a key's passphrase: the key is used through ssh-agent (`ssh-add KEY`
once per login session), so the passphrase is in no argv, file, log or record of a run.
Without an agent holding it, ssh would ask for the passphrase on a terminal, where an
Ansible run (no terminal: ansible-runner drives it through a pty of its own) or verify's
BatchMode ssh cannot answer: a hang or an opaque "Permission denied (publickey)". So each
verb that connects first checks every board's key file and refuses, in one line naming
the boards and the key, with what to do.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

from tx2setup.errors import UserError

# OpenSSH's own key format, PROTOCOL.key (openssh/openssh-portable): after the armour,
#   byte[] AUTH_MAGIC ("openssh-key-v1\0"); string ciphername; string kdfname;
#   string kdfoptions; uint32 number of keys N; string publickey1 ... publickeyN; ...
# The public keys are not encrypted; ciphername is "none" for a key without passphrase.
BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
END = "-----END OPENSSH PRIVATE KEY-----"
AUTH_MAGIC = b"openssh-key-v1\0"
# The older PEM keys (RFC 1421, 4.6.1.1) mark encryption with this header line.
PEM_ENCRYPTED = "Proc-Type: 4,ENCRYPTED"


def _string(data: bytes, at: int) -> tuple[bytes, int]:
    (size,) = struct.unpack(">I", data[at : at + 4])
    return data[at + 4 : at + 4 + size], at + 4 + size


def inspect(path: Path) -> tuple[bool, bytes | None]:
    """(whether the key needs a passphrase, its public key blob when the file says it).
    A file tx2setup cannot read or parse counts as not encrypted: ssh reports on it."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False, None
    if PEM_ENCRYPTED in text:
        return True, _pub_file_blob(path)
    if BEGIN not in text or END not in text:
        return False, None
    body = text.split(BEGIN, 1)[1].split(END, 1)[0]
    try:
        data = base64.b64decode("".join(body.split()), validate=True)
        if not data.startswith(AUTH_MAGIC):
            return False, None
        cipher, at = _string(data, len(AUTH_MAGIC))
        _, at = _string(data, at)  # kdfname
        _, at = _string(data, at)  # kdfoptions
        at += 4  # number of keys: tx2setup's boards use one key a file
        public, _ = _string(data, at)
    except (binascii.Error, struct.error):
        return False, None
    return cipher != b"none", public or None


def _pub_file_blob(path: Path) -> bytes | None:
    """The blob of KEY.pub (`type base64 comment`, sshd(8) AUTHORIZED_KEYS FILE FORMAT)."""
    try:
        fields = path.with_name(path.name + ".pub").read_text(encoding="ascii").split()
        return base64.b64decode(fields[1]) if len(fields) > 1 else None
    except (OSError, binascii.Error, UnicodeDecodeError):
        return None


def agent_keys() -> set[bytes] | None:
    """The public key blobs the agent holds (`ssh-add -L`, one `type base64 comment` a line),
    or None when there is no agent: ssh-add exits 2 when it cannot reach one and 1 when the
    agent has no identities (ssh-add(1); openssh-portable regress/agent.sh checks both)."""
    if not os.environ.get("SSH_AUTH_SOCK"):
        return None
    try:
        proc = subprocess.run(["ssh-add", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode == 2:
        return None
    blobs = set()
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        fields = line.split()
        if len(fields) > 1:
            try:
                blobs.add(base64.b64decode(fields[1]))
            except binascii.Error:
                continue
    return blobs


def require_usable(keys: Iterable[tuple[str, str | None]]) -> None:
    """Refuse (UserError, one line) when a board's key file needs a passphrase that no agent
    holds. `keys`: (board, its ansible_ssh_private_key_file or None)."""
    by_key: dict[str, list[str]] = {}
    for board, key in keys:
        if key:
            by_key.setdefault(str(Path(key).expanduser()), []).append(board)
    held: set[bytes] | None = None
    asked = False
    for key, boards in by_key.items():
        encrypted, public = inspect(Path(key))
        if not encrypted:
            continue
        if not asked:
            held, asked = agent_keys(), True
        if held is not None and (public is None or public in held):
            continue  # an agent runs; with no public key to compare, ssh will tell
        why = "no ssh-agent runs (SSH_AUTH_SOCK)" if held is None else "the ssh-agent does not hold it"
        raise UserError(
            f"{', '.join(boards)}: SSH key {key} is passphrase-protected and {why}: "
            f"run `eval $(ssh-agent)` and `ssh-add {key}` in this shell, then run again"
        )
