# tx2setup.jetson.not_installed: the one "already installed?" test of every role's apt task.
# The board's installed packages come from jetson_base's local facts script
# (roles/jetson_base/files/tx2setup.fact, read at fact gathering as ansible_local.tx2setup):
# one string of "name" and "name=version" words. A role skips its apt task when this filter
# returns nothing, which saves a full apt run (about 1.5 s a task) on a provisioned board.
# Filter plugin layout: https://docs.ansible.com/ansible/latest/dev_guide/developing_plugins.html#filter-plugins
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


def installed_words(local_facts: Mapping[str, Any] | None) -> set[str]:
    """The board's "name" and "name=version" words; empty before jetson_base's first run
    (no facts script yet): then every package counts as missing and apt decides."""
    facts = (local_facts or {}).get("tx2setup") or {}
    if not isinstance(facts, Mapping):
        kind = type(facts).__name__
        raise AnsibleFilterError(f"ansible_local.tx2setup is a {kind}, not jetson_base's facts: re-run jetson_base")
    words = facts.get("installed", "")
    if not isinstance(words, str):
        # a list would make every `in` test a scan of thousands of items (tx2setup.fact's docstring)
        raise AnsibleFilterError(
            "ansible_local.tx2setup.installed is not the one string tx2setup.fact writes: re-run jetson_base"
        )
    return set(words.split())


def not_installed(specs: Iterable[str], local_facts: Mapping[str, Any] | None) -> list[str]:
    """The apt specs the board lacks. "name" wants the package at any version; "name=PREFIX*"
    (apt's version glob, as the jetpack role pins) wants a version starting with PREFIX."""
    have = installed_words(local_facts)
    pinned = [w for w in have if "=" in w]
    return [s for s in specs if not (_has_version(s, pinned) if s.endswith("*") and "=" in s else s in have)]


def _has_version(spec: str, pinned: list[str]) -> bool:
    """Whether a "name=version" word starts with the spec's "name=PREFIX" (apt's glob)."""
    return any(w.startswith(spec[:-1]) for w in pinned)


class FilterModule:
    """Ansible's filter plugin entry point."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"not_installed": not_installed}
