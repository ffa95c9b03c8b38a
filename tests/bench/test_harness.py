"""The CLI end to end on the CPU: correctness harness, schema round-trip, verdict, exit codes, profile."""

from __future__ import annotations

import json

import pytest
import torch

from tx2setup.bench import SCHEMA_VERSION, cli
from tx2setup.bench.backends import TorchBackend, all_backends
from tx2setup.bench.correctness import check_backend
from tx2setup.bench.pipeline import STAGES
from tx2setup.bench.report import load_json, write_json
from tx2setup.bench.spec import load_spec

from .conftest import FAST


class NanBackend(TorchBackend):
    """A backend whose every output is NaN (a broken kernel, an fp16 overflow)."""

    def __init__(self):
        super().__init__("cpu-nan", device="cpu", description="deliberately NaN")

    def run(self):
        return super().run() * float("nan")


class WrongBackend(TorchBackend):
    """A fast but wrong backend: its output is off by 5%."""

    def __init__(self):
        super().__init__("cpu-wrong", device="cpu", description="deliberately wrong")

    def run(self):
        return super().run() * 1.05


def test_correctness_harness_catches_a_wrong_backend():
    spec = load_spec("z2color")
    good, bad = TorchBackend("cpu-fp32", device="cpu"), WrongBackend()
    for b in (good, bad):
        b.prepare(spec)
    ok = check_backend(good, spec, seed=11)
    wrong = check_backend(bad, spec, seed=11)
    assert ok["correct"] and ok["max_rel_error"] < 1e-5
    assert not wrong["correct"] and wrong["max_rel_error"] == pytest.approx(0.05, rel=1e-3)


def test_wrong_backend_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "all_backends", lambda mode: [TorchBackend("cpu-fp32", device="cpu"), WrongBackend()])
    out = tmp_path / "r.json"
    rc = cli.main(["--json", str(out), *FAST])
    assert rc == 1
    doc = load_json(str(out))
    by = {r["backend"]: r for r in doc["results"]}
    assert by["cpu-fp32"]["correct"] and not by["cpu-wrong"]["correct"]
    assert doc["verdict"]["backend"] == "cpu-fp32"  # the verdict never uses an incorrect backend
    assert doc["verdict"]["all_correct"] is False


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    out, prof = d / "r.json", d / "trace.json"
    argv = ["--backends", "cpu-fp32,ort-cpu", "--pipeline", "both", "--json", str(out), "--profile", str(prof)]
    rc = cli.main([*argv, "--target-fps", "1", *FAST])
    return rc, out, prof


def test_result_schema_round_trips(cpu_run, tmp_path):
    rc, out, _ = cpu_run
    assert rc == 0
    doc = load_json(str(out))
    assert doc["schema_version"] == SCHEMA_VERSION
    for key in ("machine", "torch", "cpu", "batch", "source", "l4t", "nvpmodel", "jetson_clocks", "tensorrt"):
        assert key in doc["conditions"]
    assert doc["conditions"]["source"]["kind"] == "synthetic"
    names = [r["backend"] for r in doc["results"]]
    assert names == ["cpu-fp32", "ort-cpu"]
    for r in doc["results"]:
        assert r["correct"] and r["max_rel_error"] < 1e-5
        assert r["inference"]["fps"] > 0 and r["inference"]["p99_ms"] >= r["inference"]["median_ms"]
        assert r["inference"]["iterations"] >= 5
        assert set(r["end_to_end_pipelines"]) == {"optimized", "naive"}
        assert r["end_to_end"]["pipeline"] == "optimized"
        assert set(r["end_to_end"]["stages"]) == set(STAGES)
        for e2e in r["end_to_end_pipelines"].values():
            assert e2e["rel_error"] < 1e-5  # the pipeline computed the same function as the model
            assert e2e["fps"] > 0 and e2e["stages"]["inference"] > 0
    v = doc["verdict"]
    assert v["pass"] is True and v["target_fps"] == 1.0 and v["measure"] == "end_to_end"
    assert v["margin_pct"] == pytest.approx(100.0 * (v["fps"] - 1.0))
    again = tmp_path / "again.json"
    write_json(doc, str(again))
    assert json.loads(again.read_text()) == json.loads(out.read_text())


def test_profile_is_a_trace_with_stage_and_module_ranges(cpu_run):
    _, _, prof = cpu_run
    trace = json.loads(prof.read_text())
    names = {e.get("name") for e in trace["traceEvents"]}
    for stage in ("capture", "stack", "preprocess", "inference", "postprocess"):
        assert "stage." + stage in names
    for module in ("conv1", "conv2", "ip1", "ip2"):
        assert "z2color." + module in names


def test_missed_target_exits_1(tmp_path):
    out = tmp_path / "r.json"
    rc = cli.main(["--backends", "cpu-fp32", "--json", str(out), "--target-fps", "1e9", *FAST])
    assert rc == 1
    v = load_json(str(out))["verdict"]
    assert v["pass"] is False and v["margin_pct"] < -99


@pytest.mark.parametrize(
    "argv",
    [
        ["--backends", "nope"],
        ["--pipeline", "fast"],
        ["--source", "webcam"],
        ["--model", "missing.onnx"],
        ["--weights", "/nonexistent/w.pt"],
        ["--target-fps", "-3"],
        ["--json", "/nonexistent/dir/r.json"],
        ["--min-iters", "0"],
        ["--min-iters", "-4"],
        ["--warmup", "-1"],
        ["--min-duration", "-0.5"],
        ["--min-duration", "nan"],
        ["--batch", "0"],
        ["--tolerance", "0"],
        ["--profile", "/tmp/p.json", "--batch", "2"],
    ],
)
def test_bad_usage_exits_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tx2setup bench: ")


def test_list_backends_gives_a_reason_for_each_unavailable(capsys):
    assert cli.main(["--list-backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(all_backends())
    for line in lines:
        assert " available " in line or "unavailable: " in line
    trt = [line for line in lines if line.startswith("trt-")]
    if not torch.cuda.is_available():
        assert all("unavailable" in line for line in trt)


def test_user_torchscript_model_with_declared_shapes(tmp_path, capsys):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    net(torch.zeros(1, 3, 16, 16))
    path = tmp_path / "tiny.pt"
    torch.jit.trace(net.eval(), torch.zeros(2, 3, 16, 16)).save(str(path))
    out = tmp_path / "r.json"
    base = ["--model", str(path), "--input-shape", "input=2x3x16x16", "--plain", *FAST[:-1]]  # with the table
    assert cli.main([*base, "--backends", "cpu-fp32,ort-cpu"]) == 0
    assert "INFERENCE-ONLY" in capsys.readouterr().out
    assert cli.main([*base, "--backends", "cpu-fp32", "--json", str(out)]) == 0
    doc = load_json(str(out))
    r = doc["results"][0]
    assert r["correct"] and r["end_to_end"] is None  # camera pipeline is z2color-only
    assert doc["verdict"]["measure"] == "inference"
    assert cli.main(["--model", str(path)]) == 2  # shapes are required


def test_nan_backend_is_incorrect_and_the_json_has_nulls(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "all_backends", lambda mode: [TorchBackend("cpu-fp32", device="cpu"), NanBackend()])
    out = tmp_path / "r.json"
    rc = cli.main(["--json", str(out), "--pipeline", "both", "--plain", *FAST[:-1]])
    assert rc == 1  # the run fails as designed, without a traceback

    def no_constants(name):
        raise AssertionError("non-standard JSON token " + name)

    json.loads(out.read_text(), parse_constant=no_constants)  # strict JSON: no NaN/Infinity
    nan = {r["backend"]: r for r in load_json(str(out))["results"]}["cpu-nan"]
    assert nan["correct"] is False and nan["max_rel_error"] is None
    for e2e in nan["end_to_end_pipelines"].values():
        assert e2e["rel_error"] is None
    assert "not finite" in nan["pipeline_error"]
    assert "FAIL cpu-nan: output not finite or of the wrong shape" in capsys.readouterr().out


def test_profile_is_checked_before_any_work(tmp_path, monkeypatch):
    def boom(mode):
        raise AssertionError("backends were built before --profile was checked")

    monkeypatch.setattr(cli, "all_backends", boom)
    tiny = tmp_path / "tiny.pt"
    torch.jit.trace(torch.nn.Linear(3, 2).eval(), torch.zeros(1, 3)).save(str(tiny))
    argv = ["--model", str(tiny), "--input-shape", "x=1x3", "--profile", str(tmp_path / "p.json")]
    assert cli.main(argv) == 2


def test_profile_skips_incorrect_backends(tmp_path, monkeypatch):
    class FastWrong(WrongBackend):
        pass

    monkeypatch.setattr(cli, "all_backends", lambda mode: [TorchBackend("cpu-fp32", device="cpu"), FastWrong()])
    traced = []
    monkeypatch.setattr("tx2setup.bench.profiling.write_profile", lambda path, b, *rest: traced.append(b.name))
    rc = cli.main(["--profile", str(tmp_path / "p.json"), *FAST])
    assert rc == 1 and traced == ["cpu-fp32"]
    monkeypatch.setattr(cli, "all_backends", lambda mode: [FastWrong()])
    traced.clear()
    assert cli.main(["--profile", str(tmp_path / "p.json"), *FAST]) == 1
    assert traced == []  # nothing correct to trace
