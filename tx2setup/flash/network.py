"""Wait for flashed boards to come up on the network.

A board counts as up when its SSH port accepts a TCP connection. Where to knock, per
board: its configured address (`ansible_host`, an IP or a host name that DNS or
/etc/hosts resolves) and, when the inventory gives `board_mac`, whatever IP the host's
neighbour table (/proc/net/arp) holds for that MAC (a board that took a DHCP address).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ARP_TABLE = Path("/proc/net/arp")


@dataclass(frozen=True)
class NetTarget:
    name: str
    host: str
    port: int = 22
    mac: str | None = None


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
) -> dict[str, str | None]:
    """Board name -> the address it answered on, or None if it did not within `timeout_s`."""
    found: dict[str, str | None] = {t.name: None for t in targets}
    deadline = time.monotonic() + timeout_s
    while True:
        for t in targets:
            if found[t.name] is not None:
                continue
            candidates = [t.host, *(arp_lookup(t.mac, arp_table) if t.mac else [])]
            for addr in dict.fromkeys(candidates):
                if probe(addr, t.port):
                    found[t.name] = addr
                    if on_up is not None:
                        on_up(t, addr)
                    break
        if all(v is not None for v in found.values()) or time.monotonic() >= deadline:
            return found
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
