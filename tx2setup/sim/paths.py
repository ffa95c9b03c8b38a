"""Where the emulated fleet keeps things on the host.

Shared, built once: $TX2SETUP_CACHE/sim/{base,upstream} (TX2SETUP_CACHE defaults to
~/.cache/tx2setup). Per fleet: the state dir, $TX2SETUP_SIM_DIR or
$TX2SETUP_CACHE/sim/fleet, so tests can run their own fleet beside a user's.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tx2setup.cache import cache_root  # one rule for every cache of tx2setup


@dataclass(frozen=True)
class Layout:
    """Every path the sim uses, derived from the cache root and the fleet's state dir."""

    cache: Path
    fleet: Path

    @classmethod
    def default(cls, sim_dir: Path | str | None = None) -> Layout:
        cache = cache_root()
        if sim_dir is None:
            env = os.environ.get("TX2SETUP_SIM_DIR")
            sim_dir = Path(env).expanduser() if env else cache / "sim" / "fleet"
        return cls(cache=cache, fleet=Path(sim_dir).absolute())

    # shared by every fleet on this host
    @property
    def sim(self) -> Path:
        return self.cache / "sim"

    @property
    def base(self) -> Path:
        return self.sim / "base"

    @property
    def rootfs(self) -> Path:
        return self.base / "rootfs"

    @property
    def base_stamp(self) -> Path:
        return self.base / "stamp.json"

    @property
    def debs_cache(self) -> Path:
        return self.sim / "debootstrap-debs"

    @property
    def upstream(self) -> Path:
        return self.sim / "upstream"

    @property
    def gnupg(self) -> Path:
        return self.sim / "gnupg"

    @property
    def host_lock(self) -> Path:
        return self.sim / "host.lock"

    @property
    def claims(self) -> Path:
        """One file per claimed loopback address, naming the board dir that owns it."""
        return self.sim / "addresses"

    # per fleet
    @property
    def state(self) -> Path:
        return self.fleet / "fleet.json"

    @property
    def fleet_lock(self) -> Path:
        return self.fleet / "fleet.lock"

    @property
    def key(self) -> Path:
        return self.fleet / "keys" / "id_ed25519"

    @property
    def vault_password(self) -> Path:
        """0600: the vault password of the fleet's vaulted become password (inventory.py)."""
        return self.fleet / "keys" / "vault-password"

    @property
    def known_hosts(self) -> Path:
        return self.fleet / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.fleet / "inventory.ini"

    @property
    def http_log(self) -> Path:
        return self.fleet / "upstream-http.log"

    def board_dir(self, name: str) -> Path:
        return self.fleet / "boards" / name


def link_or_copy(src: Path, target: Path) -> Path:
    """`target` becomes `src`: a hard link when the file system allows, else a copy; atomic."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, target)
    return target
