"""The TensorRT backend's logic that runs without TensorRT: capability checks through a stand-in
``tensorrt`` module, the calibrator's batch assembly and input order, dynamic-input detection.

TensorRT itself is on no machine of this project; these are stand-ins, not TensorRT.
"""

from __future__ import annotations

import types

import pytest
import torch

from tx2setup.bench import cli, trt
from tx2setup.bench.spec import load_spec


def _fake_trt(fast_fp16, fast_int8):
    """A stand-in for the tensorrt module: only what check() touches."""

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    class Builder:
        platform_has_fast_fp16 = fast_fp16
        platform_has_fast_int8 = fast_int8

        def __init__(self, logger):
            self.logger = logger

    return types.SimpleNamespace(Logger=Logger, Builder=Builder, __version__="8.2.1")


@pytest.fixture
def tx2_like(monkeypatch):
    """A GPU with fast fp16 and no fast int8 (the TX2's sm_62), as the stand-in reports it."""
    monkeypatch.setattr(trt, "_trt", lambda: _fake_trt(True, False))
    monkeypatch.setattr(trt, "cuda_reason", lambda: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA Tegra X2")


def test_check_reports_missing_fast_int8_and_fp16(tx2_like, monkeypatch):
    spec = load_spec("z2color")
    trt.TensorRTBackend("fp32").check(spec)
    trt.TensorRTBackend("fp16").check(spec)
    with pytest.raises(trt.BackendUnavailable, match="NVIDIA Tegra X2 has no fast int8"):
        trt.TensorRTBackend("int8").check(spec)
    monkeypatch.setattr(trt, "_trt", lambda: _fake_trt(False, False))
    with pytest.raises(trt.BackendUnavailable, match="no fast fp16"):
        trt.TensorRTBackend("fp16").check(spec)
    trt.TensorRTBackend("fp32").check(spec)  # fp32 never depends on the fast paths


def test_list_backends_shows_the_reason(tx2_like, capsys):
    assert cli.main(["--list-backends", "--backends", "trt-fp32,trt-fp16,trt-int8"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert " available " in lines["trt-fp32"] and " available " in lines["trt-fp16"]
    assert "unavailable: NVIDIA Tegra X2 has no fast int8" in lines["trt-int8"]


def test_calibration_batches_match_the_engine_batch():
    samples = [[torch.full((1, 2), float(i)), torch.full((1, 3), -float(i))] for i in range(7)]
    batches = trt.assemble_calibration(samples, 3)
    assert len(batches) == 2  # 7 samples -> 2 full batches of 3, the remainder dropped
    assert batches[0][0].shape == (3, 2) and batches[0][1].shape == (3, 3)
    assert batches[1][0][:, 0].tolist() == [3.0, 4.0, 5.0]
    assert trt.assemble_calibration(samples[:2], 3) == []


def test_calibration_feeder_follows_the_order_of_names():
    x = torch.arange(6.0).reshape(2, 3)
    meta = torch.arange(4.0).reshape(2, 2) + 100
    moved = []

    def to_device(t):  # stand-in for .cuda(): records what was moved
        moved.append(t)
        return t.clone()

    feeder = trt.CalibrationFeeder([[x, meta]], ["x", "meta"], to_device)
    assert feeder.batch_size == 2
    ptrs = feeder.next_pointers(["meta", "x"])  # TensorRT may ask in another order
    assert len(moved) == 2 and torch.equal(moved[0], meta) and torch.equal(moved[1], x)
    assert ptrs == [t.data_ptr() for t in feeder._held]
    assert feeder.next_pointers(["meta", "x"]) is None  # exhausted: calibration ends
    bad = trt.CalibrationFeeder([[x, meta]], ["x", "meta"], to_device)
    with pytest.raises(KeyError):
        bad.next_pointers(["images"])


def test_dynamic_inputs_are_found():
    def tensor(name, shape):
        return types.SimpleNamespace(name=name, shape=shape)

    inputs = [tensor("x", (-1, 3, 224, 224)), tensor("meta", (1, 6, 13, 26))]
    network = types.SimpleNamespace(num_inputs=2, get_input=lambda i: inputs[i])
    assert trt.dynamic_inputs(network) == ["x"]
