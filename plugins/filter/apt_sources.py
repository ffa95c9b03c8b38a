# tx2setup.jetson.apt_via_proxy: apt source lines with their https:// repositories in
# apt-cacher-ng's "http://HTTPS///host/path" form, so that the run's proxy fetches them over
# HTTPS and caches them (apt-cacher-ng manual, section 8.2 "tell-me-what-you-need method":
# /usr/share/doc/apt-cacher-ng/html/howtos.html#ssluse, https://www.unix-ag.uni-kl.de/~bloch/acng/html/howtos.html#ssluse).
# apt asks the proxy over plain HTTP; the proxy's own TLS connection checks the repository's
# certificate, and apt still checks every file against the repository's signed InRelease.
# Only for the run: playbooks/site.yml's last task writes the https:// form back.
# Filter plugin layout: https://docs.ansible.com/ansible/latest/dev_guide/developing_plugins.html#filter-plugins
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from ansible.errors import AnsibleFilterError

# One-line-style source entries (sources.list(5)): "deb [options] URI suite [component...]"
_ENTRY = re.compile(r"^(\s*deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?)https://(\S+)(.*)$")
PROXY_FORM = "http://HTTPS///"


def apt_via_proxy(lines: Iterable[str]) -> list[str]:
    """Each https:// entry in the proxy's form; comments, http:// and other lines unchanged."""
    if isinstance(lines, str):
        raise AnsibleFilterError("apt_via_proxy wants a list of source lines, not one string")
    return [_ENTRY.sub(lambda m: f"{m.group(1)}{PROXY_FORM}{m.group(2)}{m.group(3)}", line) for line in lines]


class FilterModule:
    """Ansible's filter plugin entry point."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"apt_via_proxy": apt_via_proxy}
