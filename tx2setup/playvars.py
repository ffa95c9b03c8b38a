"""One board's plan inside a play: what the collection's action plugin
(plugins/action/plan.py, `tx2setup.jetson.plan`) computes on the controller.

The play hands over the board's own variables (whatever the inventory source: an INI or
YAML file, an AWX inventory, a dynamic one); this module turns them into the same
BoardPlan `tx2setup inventory check` prints, with the same code (fleet's field checks,
plan.resolve_board) and the same one-line errors. It then routes the large artifacts:
straight from the plan's URLs, or from `tx2setup_cache_url` (a `tx2setup cache serve`
server, or the one `tx2setup provision` starts) by their cache key, each with the sha256
pinned in the lock file (else the matrix's), which the board's download checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tx2setup import cache, fleet, plan, wheelhouse
from tx2setup.errors import ChecksumError, InventoryError, UserError
from tx2setup.matrix import load as load_matrix

# Every variable fleet._board_from_vars reads; the plugin templates these and no others.
BOARD_KEYS = (
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "board_serial",
    "usb_port",
    "jetson_module",
    "jetpack",
    "l4t",
    "power_mode",
    "target_fps",
    "components",
    "tx2setup_emulated",
    *fleet.OVERRIDE_FIELDS,
)
# plan field with a URL -> plan field with its sha256 (the board's get_url checks it)
ARTIFACTS = {"torch_wheel_url": "torch_sha256", "zed_sdk_url": "zed_sdk_sha256", "caffe_source_url": "caffe_sha256"}
CACHE_URL_VAR = "tx2setup_cache_url"
LOCK_FILE_VAR = "tx2setup_lock_file"


def address_of(hostvars: Mapping[str, Any]) -> tuple[str, int] | None:
    """(address, port) as fleet.load compares them: host names are case-insensitive."""
    host = hostvars.get("ansible_host")
    if host is None or str(host).strip() == "":
        return None
    port = hostvars.get("ansible_port")
    try:
        port_i = int(str(port)) if port is not None else 22
    except ValueError:
        return None
    return str(host).lower().rstrip("."), port_i


def duplicate_of(name: str, mine: tuple[str, int] | None, others: Mapping[str, tuple[str, int] | None]) -> str | None:
    """The board fleet.load names when `name` shares its address: the first, in name order,
    of the boards sorted before it (fleet.load refuses the later board of a pair)."""
    if mine is None:
        return None
    earlier = sorted(other for other, where in others.items() if other < name and where == mine)
    return earlier[0] if earlier else None


def resolve(
    inventory: Path,
    name: str,
    hostvars: Mapping[str, Any],
    groups: Iterable[str],
    others: Mapping[str, tuple[str, int] | None] | None = None,
) -> plan.BoardPlan:
    """The board's plan, or the InventoryError/PlanError `inventory check` raises for it."""
    hv = {k: hostvars[k] for k in BOARD_KEYS if k in hostvars}
    board = fleet._board_from_vars(inventory, name, hv, list(groups))
    dup = duplicate_of(name, address_of(hv), others or {})
    if dup is not None:
        port = f" port {board.ansible_port}" if board.ansible_port else ""
        raise fleet._fail(inventory, name, "ansible_host", f"{board.ansible_host}{port} is also the address of {dup}")
    inv = fleet.Inventory(path=inventory, boards=(board,))
    return plan.resolve_board(inv, board, load_matrix())


def lock_for(inventory: Path, lock_file: str | None) -> cache.LockFile:
    """The lock file named by tx2setup_lock_file, else the inventory's (`tx2setup.lock` beside it)."""
    path = Path(lock_file).expanduser() if lock_file else cache.lock_path_for(inventory)
    if lock_file and not path.is_absolute():
        path = (inventory if inventory.is_dir() else inventory.parent) / path
    return cache.LockFile.load(path)


def artifact_vars(p: plan.BoardPlan, lock: cache.LockFile, cache_url: str | None) -> tuple[dict[str, Any], list[str]]:
    """plan_<url> and plan_<sha256> for each artifact the board downloads, and the URLs
    that have no sha256 anywhere (fetched unverified: `tx2setup cache sync` pins them)."""
    if cache_url is not None and not fleet.URL_RE.match(cache_url):
        raise UserError(f"{CACHE_URL_VAR}: {cache_url!r} is not an http(s) URL (e.g. http://10.0.0.5:8765)")
    out: dict[str, Any] = {f"plan_{sha}": getattr(p, sha, None) for sha in ARTIFACTS.values()}
    needed = cache.plan_artifacts([p])  # the same rule the CLI's cache uses (index installs excluded)
    unpinned = []
    for url_field, sha_field in ARTIFACTS.items():
        url = getattr(p, url_field)
        if not url or url not in needed:
            continue
        pin, matrix_sha = lock.pins.get(url), needed[url]
        if pin and matrix_sha and pin.sha256 != matrix_sha:
            raise ChecksumError(
                f"matrix pin for {url}: sha256 {matrix_sha} does not match the pinned {pin.sha256} "
                f"({lock.path}); nothing was used"
            )
        sha = pin.sha256 if pin else matrix_sha
        if cache_url is not None:
            if pin is None:
                raise UserError(
                    f"{url}: not pinned in {lock.path}, so {cache_url} cannot serve it verified: "
                    "run `tx2setup cache sync -i INVENTORY` first"
                )
            out[f"plan_{url_field}"] = f"{cache_url.rstrip('/')}/{pin.key}"
        if sha is None and cache.unverified_plain_http(url):
            raise cache.plain_http_refused(url, f"{p.name}: {url_field}; {lock.path}")
        if sha is None:
            unpinned.append(url)
        out[f"plan_{sha_field}"] = sha
    return out, unpinned


def play_vars(
    inventory: Path,
    name: str,
    hostvars: Mapping[str, Any],
    groups: Iterable[str],
    others: Mapping[str, tuple[str, int] | None] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Everything the plugin sets for one board: tx2setup_plan (the plan exactly as
    `inventory check --json` prints it) and the flat plan_* variables the roles read,
    with the artifacts routed; plus the URLs fetched without a sha256."""
    p = resolve(inventory, name, hostvars, groups, others)
    lock = lock_for(inventory, _opt_str(hostvars.get(LOCK_FILE_VAR)))
    routed, unpinned = artifact_vars(p, lock, _opt_str(hostvars.get(CACHE_URL_VAR)))
    # JSON round trip: tuples become lists, exactly as `inventory check --json` prints them
    facts: dict[str, Any] = json.loads(json.dumps({**p.ansible_vars(), **routed}))
    facts["tx2setup_plan"] = json.loads(json.dumps(p.to_dict()))
    # the wheelhouse's find-links page (pytorch_pip_find_links) where the cache server has
    # one for this board's Python and platform; "" keeps the role's install without it
    cache_url = _opt_str(hostvars.get(CACHE_URL_VAR))
    facts["plan_pip_find_links"] = wheelhouse.find_links_url(p, cache_url) if cache_url else ""
    # the on-board harness the acceptance role copies: this package's own bench/ (a collection
    # installed from its tarball has no checkout beside its playbooks to find it in)
    facts["tx2setup_bench_src"] = str(Path(__file__).resolve().parent / "bench")
    return facts, unpinned


def _opt_str(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value)


def inventory_of(hostvars: Mapping[str, Any], name: str) -> Path:
    """The inventory source the board came from (Ansible's `inventory_file`), which error
    messages name and whose directory holds the lock file."""
    source = hostvars.get("inventory_file")
    if not source:
        raise InventoryError(f"host {name}: Ansible gave no inventory_file for it (an implicit localhost?)")
    return Path(str(source))
