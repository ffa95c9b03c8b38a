"""Wait for flashed boards to come up on the network.

A board counts as up when its SSH port accepts a TCP connection. Where to knock, per
board, in this order:

- its configured address (`ansible_host`, an IP or a host name that DNS or /etc/hosts
  resolves): connecting to it is the active probe;
- the hostname the flash gave it (one-by-one flashing sets each board's hostname to its
  inventory name; a DHCP server that registers names in DNS, such as dnsmasq, then
  resolves it). A mass flash shares one rootfs, so every board keeps the BSP's default
  hostname (tegra-ubuntu) and this step finds nothing;
- when the inventory gives `board_mac`: the addresses the host's neighbour table
  (/proc/net/arp) holds for that MAC, and the addresses a DHCP server on this host leased
  to it (dnsmasq's /var/lib/misc/dnsmasq.leases, ISC dhcpd's /var/lib/dhcp/dhcpd.leases,
  when present). The neighbour table only knows boards this host has talked to; there is
  no ping sweep of a subnet (no subnet is configured anywhere to sweep).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ARP_TABLE = Path("/proc/net/arp")
LEASE_FILES = (Path("/var/lib/misc/dnsmasq.leases"), Path("/var/lib/dhcp/dhcpd.leases"))
_DHCPD_LEASE = re.compile(r"lease\s+(\S+)\s*\{(.*?)\}", re.S)


@dataclass(frozen=True)
class NetTarget:
    name: str
    host: str
    port: int = 22
    mac: str | None = None
    hostname: str | None = None  # the hostname the flash set, if any


def arp_lookup(mac: str, table: Path = ARP_TABLE) -> list[str]:
    """IPs the neighbour table maps to `mac` (case-insensitive; incomplete entries skipped)."""
    want = mac.strip().lower()
    try:
        lines = table.read_text().splitlines()[1:]  # header: IP address HW type Flags HW address ...
    except OSError:
        return []
    out = []
    for line in lines:
        cols = line.split()
        if len(cols) >= 4 and cols[3].lower() == want and cols[2] != "0x0":
            out.append(cols[0])
    return out


def lease_lookup(mac: str, files: Sequence[Path] = LEASE_FILES) -> list[str]:
    """IPs a DHCP server on this host leased to `mac` (dnsmasq and ISC dhcpd lease files), newest last."""
    want = mac.strip().lower()
    out: list[str] = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if "lease " in text and "{" in text:  # dhcpd: lease <ip> { ... hardware ethernet <mac>; ... }
            for ip, body in _DHCPD_LEASE.findall(text):
                m = re.search(r"hardware ethernet\s+([0-9a-fA-F:]+)\s*;", body)
                if m and m.group(1).lower() == want and "binding state free" not in body:
                    out.append(ip)
            continue
        for line in text.splitlines():  # dnsmasq: <expiry> <mac> <ip> <hostname> <client-id>
            cols = line.split()
            if len(cols) >= 3 and cols[1].lower() == want:
                out.append(cols[2])
    return out


def tcp_open(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_for(
    targets: Sequence[NetTarget],
    timeout_s: float,
    poll_s: float = 2.0,
    arp_table: Path = ARP_TABLE,
    probe: Callable[[str, int], bool] = tcp_open,
    on_up: Callable[[NetTarget, str], None] | None = None,
    lease_files: Sequence[Path] = LEASE_FILES,
) -> dict[str, str | None]:
    """Board name -> the address it answered on, or None if it did not within `timeout_s`."""
    found: dict[str, str | None] = {t.name: None for t in targets}
    deadline = time.monotonic() + timeout_s
    while True:
        for t in targets:
            if found[t.name] is not None:
                continue
            candidates = [t.host, *([t.hostname] if t.hostname else [])]
            if t.mac:
                candidates += [*arp_lookup(t.mac, arp_table), *reversed(lease_lookup(t.mac, lease_files))]
            for addr in dict.fromkeys(candidates):
                if probe(addr, t.port):
                    found[t.name] = addr
                    if on_up is not None:
                        on_up(t, addr)
                    break
        if all(v is not None for v in found.values()) or time.monotonic() >= deadline:
            return found
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
