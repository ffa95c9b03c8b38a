"""What boards to emulate: `--boards N --module M --jetpack J` or a YAML spec file.

Spec file format (every field but module/jetpack optional)::

    boards:
      - {module: tx2, jetpack: "4.6.4", count: 2}
      - {name: nx-lab, module: xavier-nx, jetpack: "5.1.2"}

Boards without a name are called <module>-<k>, k counting per module in request order,
so asking for the same fleet twice names the same boards (that is what makes `up`
idempotent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tx2setup.errors import UserError
from tx2setup.matrix import Matrix
from tx2setup.matrix import load as load_matrix

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
MAX_BOARDS = 64
DEFAULT_MODULE = "tx2"


@dataclass(frozen=True)
class BoardSpec:
    """One emulated board to have: its module and JetPack (name chosen if not given)."""

    module: str
    jetpack: str
    name: str | None = None


def check(spec: BoardSpec, where: str, matrix: Matrix | None = None) -> None:
    """Raise UserError (naming `where`) unless the matrix can put this JetPack on this module."""
    m = matrix or load_matrix()
    if spec.module not in m.modules:
        raise UserError(f"{where}: module: unknown module {spec.module!r} (known: {', '.join(m.modules)})")
    try:
        rel = m.release(jetpack=spec.jetpack)
    except UserError as exc:
        raise UserError(f"{where}: jetpack: {exc.message}") from None
    if spec.module not in rel.modules:
        can = [r.jetpack for r in m.releases if spec.module in r.modules]
        raise UserError(
            f"{where}: jetpack: {m.modules[spec.module].name} cannot run JetPack {spec.jetpack} "
            f"(it runs {can[0]} to {can[-1]})"
        )
    if spec.name is not None and not NAME_RE.match(spec.name):
        raise UserError(
            f"{where}: name: {spec.name!r} must be 1-32 lowercase letters, digits or '-' (it becomes the hostname)"
        )


def default_jetpack(module: str, matrix: Matrix | None = None) -> str:
    """The newest JetPack the matrix lists for this module (releases are in JetPack order),
    so that `--module M` alone names a release M can run."""
    m = matrix or load_matrix()
    if module not in m.modules:
        raise UserError(f"--module: unknown module {module!r} (known: {', '.join(m.modules)})")
    runs = [r.jetpack for r in m.releases if module in r.modules]
    if not runs:
        raise UserError(f"--module: the matrix lists no JetPack for {module!r}; give --jetpack")
    return runs[-1]


def from_args(boards: int, module: str | None, jetpack: str | None, matrix: Matrix | None = None) -> list[BoardSpec]:
    if not 1 <= boards <= MAX_BOARDS:
        raise UserError(f"--boards: {boards} is out of range (1 to {MAX_BOARDS})")
    module = module or DEFAULT_MODULE
    spec = BoardSpec(module=module, jetpack=jetpack or default_jetpack(module, matrix))
    check(spec, "--module/--jetpack", matrix)
    return assign_names([spec] * boards)


def parse_spec(data: Any, source: str, matrix: Matrix | None = None) -> list[BoardSpec]:
    if not isinstance(data, dict) or not isinstance(data.get("boards"), list) or not data["boards"]:
        raise UserError(f"{source}: boards: expected a non-empty list of boards")
    extra = set(data) - {"boards"}
    if extra:
        raise UserError(f"{source}: {sorted(extra)[0]}: unknown key (only 'boards')")
    out: list[BoardSpec] = []
    for i, item in enumerate(data["boards"]):
        where = f"{source}: boards[{i}]"
        if not isinstance(item, dict):
            raise UserError(f"{where}: expected a mapping with module and jetpack")
        unknown = set(item) - {"module", "jetpack", "count", "name"}
        if unknown:
            raise UserError(f"{where}: {sorted(unknown)[0]}: unknown key (module, jetpack, count, name)")
        for key in ("module", "jetpack"):
            if item.get(key) in (None, ""):
                raise UserError(f"{where}: {key}: missing")
        count = item.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BOARDS:
            raise UserError(f"{where}: count: {count!r} is not a number from 1 to {MAX_BOARDS}")
        name = None if item.get("name") is None else str(item["name"])
        if name is not None and count != 1:
            raise UserError(f"{where}: name: a named entry stands for one board (drop count or name)")
        spec = BoardSpec(module=str(item["module"]), jetpack=str(item["jetpack"]), name=name)
        check(spec, where, matrix)
        out.extend([spec] * count)
    if len(out) > MAX_BOARDS:
        raise UserError(f"{source}: boards: {len(out)} boards is more than {MAX_BOARDS}")
    return assign_names(out, source)


def load_spec(path: str | Path, matrix: Matrix | None = None) -> list[BoardSpec]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{p}{line}: YAML syntax error: {getattr(exc, 'problem', exc)}") from None
    return parse_spec(data, str(p), matrix)


def assign_names(specs: list[BoardSpec], source: str = "boards") -> list[BoardSpec]:
    """Give every unnamed spec the name <module>-<k>; refuse duplicate names."""
    counters: dict[str, int] = {}
    named: list[BoardSpec] = []
    for s in specs:
        if s.name is None:
            counters[s.module] = counters.get(s.module, 0) + 1
            s = BoardSpec(module=s.module, jetpack=s.jetpack, name=f"{s.module}-{counters[s.module]}")
        named.append(s)
    seen: set[str] = set()
    for s in named:
        assert s.name is not None
        if s.name in seen:
            raise UserError(f"{source}: name: two boards are called {s.name!r}")
        seen.add(s.name)
    return named
