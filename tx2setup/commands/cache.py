"""`tx2setup cache sync|list|verify|serve`: the artifact cache from the command line."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import click

from tx2setup.commands.options import JSON, LIMIT, VAULT_PASSWORD_FILE, inventory_option
from tx2setup.console import emit_json, json_to_stdout, print_table, progress_line

INVENTORY = inventory_option()
LOCK = click.option(
    "--lock", "lock", type=click.Path(path_type=Path), default=None, help="Lock file (default: tx2setup.lock by INV)."
)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _fetched(url: str, size: int, fetched: int) -> None:
    """A line per artifact as it lands (the sync of a fleet's artifacts takes minutes)."""
    how = f"fetched {_human(fetched)}" if fetched else "already cached"
    progress_line(url.rsplit("/", 1)[-1], "cache sync", f"{how}, {_human(size)} ({url})")


@click.group("cache")
def cache() -> None:
    """Fetch large artifacts once, pin their sha256, and serve them to boards."""


@cache.command("sync")
@INVENTORY
@LIMIT
@VAULT_PASSWORD_FILE
@LOCK
@click.option(
    "--with-bsp",
    is_flag=True,
    help="Also fetch the L4T BSP tarballs (driver package + sample rootfs) `tx2setup flash` needs for each L4T.",
)
@click.option(
    "--bsp-mirror",
    envvar="TX2SETUP_BSP_MIRROR",
    help="With --with-bsp: base URL that serves the BSP tarballs by file name, instead of NVIDIA's download URLs.",
)
@click.option(
    "--no-wheels",
    "no_wheels",
    is_flag=True,
    help="Skip the pip wheelhouse (numpy and torch's dependencies for the boards' Python and platform).",
)
@JSON
def sync(
    inventory: Path,
    limit: str | None,
    vault_password_file: str | None,
    lock: Path | None,
    with_bsp: bool,
    bsp_mirror: str | None,
    no_wheels: bool,
    json_out: str | None,
) -> None:
    """Fetch every artifact the inventory's boards need; pin new ones in the lock file."""
    from tx2setup import board
    from tx2setup import cache as c

    plans = board.load(inventory, limit=limit, vault_password_file=vault_password_file).plans
    lock_path = lock or c.lock_path_for(inventory)
    store = c.ArtifactCache(c.LockFile.load(lock_path))
    rows = []
    for url, sha in c.plan_artifacts(plans).items():
        art = store.fetch(url, sha)
        rows.append({"url": url, "sha256": art.sha256, "size": art.size, "fetched": art.fetched_bytes})
        _fetched(url, art.size, art.fetched_bytes)
    if with_bsp:
        # the same fetch `tx2setup flash` does (same cache, same pins), so a flash later finds
        # the tarballs in place and downloads nothing
        from tx2setup.flash import bsp

        for l4t, jetpack in sorted({(p.l4t, p.jetpack) for p in plans}):
            for tarball in bsp.fetch_tarball_artifacts(l4t, jetpack, lock_path, bsp_mirror):
                _fetched(tarball.url, tarball.size, tarball.fetched_bytes)
                rows.append(
                    {
                        "url": tarball.url,
                        "sha256": tarball.sha256,
                        "size": tarball.size,
                        "fetched": tarball.fetched_bytes,
                    }
                )
    # installed by the boards from a package index (JetPack 6 torch): nothing to fetch or pin
    from_index = [{"requirement": req, "index_url": url} for req, url in c.index_installs(plans).items()]
    wheels = [] if no_wheels else _sync_wheels(plans, store)
    emit_json(
        json_out, {"lock": str(store.lock.path), "artifacts": rows, "from_index": from_index, "wheelhouse": wheels}
    )
    if json_to_stdout(json_out):
        return
    table = [
        (r["url"], str(r["sha256"])[:16], _human(int(str(r["size"]))), _human(int(str(r["fetched"])))) for r in rows
    ]
    table += [
        (f"{i['index_url']} ({i['requirement']})", "-", "-", "not cached: boards install from the index")
        for i in from_index
    ]
    table += [
        (f"{w['path']} (pip wheelhouse)", f"{len(w['files'])} wheels", "-", _human(int(w["fetched"]))) for w in wheels
    ]
    print_table(
        "Artifacts",
        ["url", "sha256", "size", "fetched now"],
        table,
        caption=f"pinned in {store.lock.path}",
    )


def _sync_wheels(plans: list[Any], store: Any) -> list[dict[str, Any]]:
    """The fleet's pip wheelhouse (tx2setup/wheelhouse.py), after the artifacts: torch's
    dependencies are read from the cached wheel."""
    from tx2setup import wheelhouse

    out: list[dict[str, Any]] = []
    for tag, filled in wheelhouse.sync(plans, store).filled.items():
        size = sum((filled.path / n).stat().st_size for n in filled.files)
        how = f"fetched {_human(filled.fetched_bytes)}" if filled.fetched_bytes else "already there"
        progress_line(
            tag, "cache sync", f"wheelhouse: {len(filled.files)} wheels, {how}, {_human(size)} ({filled.path})"
        )
        out.append({"tag": tag, "path": str(filled.path), "files": filled.files, "fetched": filled.fetched_bytes})
    return out


@cache.command("list")
@INVENTORY
@LOCK
@JSON
def list_(inventory: Path, lock: Path | None, json_out: str | None) -> None:
    """Show the pinned artifacts and whether each is in the cache."""
    from tx2setup import cache as c

    store = c.ArtifactCache(c.LockFile.load(lock or c.lock_path_for(inventory)))
    rows = [(url, pin.sha256, pin.size, str(store.dir / pin.key), present) for url, pin, present in store.entries()]
    emit_json(json_out, [{"url": u, "sha256": s, "size": n, "path": p, "cached": ok} for u, s, n, p, ok in rows])
    if json_to_stdout(json_out):
        return
    print_table(
        "Pinned artifacts",
        ["url", "sha256", "size", "cached"],
        [(u, s[:16], _human(n), "yes" if ok else "no") for u, s, n, _, ok in rows],
        caption=f"{store.lock.path}",
    )


@cache.command("verify")
@INVENTORY
@LOCK
@JSON
def verify(inventory: Path, lock: Path | None, json_out: str | None) -> None:
    """Re-hash every cached artifact against the lock file (exit 5 on a mismatch)."""
    from tx2setup import cache as c
    from tx2setup.errors import ChecksumError

    store = c.ArtifactCache(c.LockFile.load(lock or c.lock_path_for(inventory)))
    problems = store.verify()
    bad = [(u, p) for u, p in problems if not p.startswith("missing")]
    emit_json(
        json_out,
        {
            "lock": str(store.lock.path),
            "verified": len(store.lock.pins) - len(problems),
            "problems": [{"url": u, "problem": p} for u, p in problems],
        },
    )
    for url, problem in problems:
        click.echo(f"{url}: {problem}", err=True)
    if bad:
        raise ChecksumError(f"{len(bad)} cached artifact(s) do not match {store.lock.path}: {bad[0][0]}: {bad[0][1]}")
    if not json_to_stdout(json_out):
        click.echo(f"{len(store.lock.pins) - len(problems)} artifact(s) verified against {store.lock.path}")


@cache.command("serve")
@INVENTORY
@LOCK
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address the boards can reach.")
@click.option("--port", default=8470, show_default=True, type=int)
@click.option(
    "--apt",
    "apt",
    is_flag=True,
    help="Also run the boards' apt cache (apt-cacher-ng) and print the tx2setup_apt_proxy_url to set "
    "in the inventory, for plain ansible-playbook and AWX runs.",
)
@click.option(
    "--apt-port",
    default=3142,  # apt-cacher-ng's own default Port (/etc/apt-cacher-ng/acng.conf)
    show_default=True,
    type=click.IntRange(1, 32767),  # 3.7.4 mishandles larger ports (tx2setup/aptproxy.py)
)
def serve(inventory: Path, lock: Path | None, bind: str, port: int, apt: bool, apt_port: int) -> None:
    """Serve the cache directory over HTTP (with Range) until Ctrl-C; with --apt, the apt cache too."""
    import contextlib

    from tx2setup import aptproxy
    from tx2setup import cache as c

    store = c.ArtifactCache(c.LockFile.load(lock or c.lock_path_for(inventory)))
    with contextlib.ExitStack() as stack:
        from tx2setup import wheelhouse

        server = stack.enter_context(c.CacheServer(store.dir, bind=bind, port=port, wheelhouse=wheelhouse.root()))
        proxy = stack.enter_context(aptproxy.AptProxy(bind=bind, port=apt_port)) if apt else None
        for url, pin, present in store.entries():
            if present:
                click.echo(f"{server.url_for(pin.key)}  <- {url}")
        for index in sorted(wheelhouse.root().glob(f"*/{wheelhouse.INDEX}")):
            click.echo(
                f"{server.base_url}/{wheelhouse.DIR_NAME}/{index.parent.name}/  <- pip wheelhouse ({index.parent})"
            )
        click.echo(f"serving {store.dir} at {server.base_url} (Ctrl-C stops)")
        if proxy is not None:
            click.echo(f"apt cache (apt-cacher-ng) at {proxy.url}, cache in {proxy.root}")
            click.echo(f"set in the inventory: tx2setup_apt_proxy_url={proxy.url}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo(f"stopped; {_human(server.bytes_served)} served")
            if proxy is not None:
                st = proxy.stats()
                click.echo(
                    f"apt cache: {_human(st.fetched_bytes)} fetched upstream, {_human(st.served_bytes)} served, "
                    f"{st.hits} hits, {st.misses} misses"
                )
