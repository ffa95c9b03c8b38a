"""The emulated fleet's fixtures for the security tests that need boards (host keys,
secrets, controller-side faults): the same `sim_fleet` / `fresh_board` as tests/integration.
Run on their own (`pytest tests/security/test_host_keys.py`), a session gets its own fleet."""

from __future__ import annotations

from tests.integration.conftest import fresh_board, sim_fleet

__all__ = ["fresh_board", "sim_fleet"]
