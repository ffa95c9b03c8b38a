"""Shared helpers for the bench tests: tiny run policies so the suite stays fast on 2 cores."""

from __future__ import annotations

import pytest

FAST = ["--warmup", "0", "--min-iters", "5", "--min-duration", "0", "--no-telemetry", "--quiet"]


@pytest.fixture(autouse=True)
def _bench_cache(tmp_path, monkeypatch):
    # exported ONNX / engines go to a per-test cache, never ~/.cache during tests
    monkeypatch.setenv("TX2SETUP_CACHE", str(tmp_path / "cache"))
