"""graphs.capturing: the collector is off during a capture and back on after it, whatever happens."""

from __future__ import annotations

import contextlib
import gc

import pytest
import torch

from tx2setup.bench import graphs


def _recording_graph(seen: list[object]):
    @contextlib.contextmanager
    def fake_graph(graph, stream=None):
        seen.append(("capture", graph, stream, gc.isenabled()))
        yield

    return fake_graph


def test_collector_off_during_capture_and_on_after(monkeypatch):
    seen: list[object] = []
    monkeypatch.setattr(torch.cuda, "graph", _recording_graph(seen))
    assert gc.isenabled()
    with graphs.capturing("g", stream="s"):
        assert not gc.isenabled()
    assert gc.isenabled()
    assert seen == [("capture", "g", "s", False)]


def test_collector_back_on_after_a_failed_capture(monkeypatch):
    monkeypatch.setattr(torch.cuda, "graph", _recording_graph([]))
    with pytest.raises(RuntimeError, match="capture failed"), graphs.capturing("g"):
        raise RuntimeError("capture failed")
    assert gc.isenabled()


def test_collector_left_off_when_the_caller_had_it_off(monkeypatch):
    monkeypatch.setattr(torch.cuda, "graph", _recording_graph([]))
    gc.disable()
    try:
        with graphs.capturing("g"):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
