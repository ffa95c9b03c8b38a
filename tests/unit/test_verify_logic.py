"""verify's pieces that need no board: the checks harness (run for real against this
host through testinfra's local backend), JUnit parsing, the verdict, status parsing."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest

from tx2setup import board, fleet, plan, verify
from tx2setup.connection import SshTarget
from tx2setup.results import History
from tx2setup.status import PROBE, fleet_status, parse_probe, parse_tegrastats, probe_board

REPO = Path(__file__).resolve().parents[2]


def tx2_plan() -> plan.BoardPlan:
    inv = fleet.load(REPO / "inventory/sample/lab.ini", limit="car-tx2-01")
    return plan.resolve(inv)[0]


def test_checks_run_against_this_host_and_fail_for_the_right_reasons(tmp_path: Path) -> None:
    p = tx2_plan()
    plan_file = tmp_path / "plans.json"
    plan_file.write_text(json.dumps({"local": {**p.to_dict(), "settings": {"verify_min_disk_free_gb": 0.001}}}))
    checks = verify.run_checks("local://", "local", plan_file, tmp_path / "local.xml", timeout=300)
    results = {c.name: c for c in checks}
    assert any(c.outcome == "failed" for c in checks)
    assert results["test_l4t_matches_plan"].outcome == "failed"
    assert "/etc/nv_tegra_release is missing" in results["test_l4t_matches_plan"].message
    assert results["test_disk_free"].outcome == "passed"  # this host does have 1 MB free
    # a real TX2's swap minimum defaults to the role's 4096 MB swap file, not to 0
    swap_mb = int(Path("/proc/meminfo").read_text().split("SwapTotal:")[1].split()[0]) / 1024
    if swap_mb < 4096:
        assert results["test_swap"].outcome == "failed"
        assert "at least 4096 MB needed" in results["test_swap"].message
    assert "test_gstreamer_element_present[appsink]" in results
    assert "test_jetpack_packages_match_plan" in results and "test_ros_is_sourced_and_roscore_answers" in results


@pytest.mark.parametrize("size_mb, outcome", [(64, "passed"), (1, "failed")])
def test_emulated_board_swap_is_the_role_swap_file(tmp_path: Path, size_mb: int, outcome: str) -> None:
    """A container cannot swapon: on an emulated board the check looks at the swap file
    (the role's 64 MB by default) and its result says so."""
    p = plan.BoardPlan(**{**tx2_plan().to_dict(), "emulated": True})
    swap_file = tmp_path / "swapfile"
    with swap_file.open("wb") as fh:
        fh.truncate(size_mb * 1048576)  # sparse: its size is what counts
    settings = {**verify.check_settings(p.name, {}, True), "jetson_base_swap_file": str(swap_file)}
    assert settings["verify_min_swap_mb"] == 64
    (tmp_path / "plans.json").write_text(json.dumps({"local": {**p.to_dict(), "settings": settings}}))
    junit = tmp_path / "swap.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-k", "test_swap"]
    cmd += ["--rootdir", str(verify.CHECKS_DIR), "--hosts=local://", f"--tx2setup-plan={tmp_path / 'plans.json'}"]
    subprocess.run([*cmd, f"--junitxml={junit}", str(verify.CHECKS_DIR)], capture_output=True, check=False)
    (check,) = verify.parse_junit(junit.read_text(), "local")
    assert check.outcome == outcome
    if outcome == "passed":
        assert check.message == f"emulated board: swap file {swap_file} is 64 MB (containers cannot swapon)"
    else:
        assert "is 1 MB, at least 64 needed" in check.message


def test_swap_minimum_follows_the_inventory() -> None:
    assert verify.check_settings("b", {}, False)["verify_min_swap_mb"] == 4096
    assert verify.check_settings("b", {"jetson_base_swap_size_mb": 2048}, False)["verify_min_swap_mb"] == 2048
    both = {"jetson_base_swap_size_mb": 2048, "verify_min_swap_mb": "512"}
    assert verify.check_settings("b", both, False)["verify_min_swap_mb"] == 512
    with pytest.raises(
        verify.UserError, match=re.escape("host b: jetson_base_swap_size_mb: '{{ x }}' is not a number")
    ):
        verify.check_settings("b", {"jetson_base_swap_size_mb": "{{ x }}"}, False)


def test_check_settings_follow_the_role_defaults_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The role's defaults are read from roles/jetson_base/defaults/main.yml, templated as
    Ansible would: a changed default changes what the checks expect, with no Python edit."""
    for role in ("jetson_base", "acceptance"):
        (tmp_path / "roles" / role / "defaults").mkdir(parents=True)
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "site.yml").write_text("[]\n")
    (tmp_path / "roles" / "jetson_base" / "defaults" / "main.yml").write_text(
        "jetson_base_swap_file: /var/swap2\n"
        'jetson_base_swap_size_mb: "{{ 32 if (plan_emulated | default(false) | bool) else 1024 }}"\n'
        "jetson_base_clocks_on_boot: true\n"
    )
    (tmp_path / "roles" / "acceptance" / "defaults" / "main.yml").write_text("acceptance_dir: /srv/bench\n")
    monkeypatch.setenv("TX2SETUP_PLAYBOOK_DIR", str(tmp_path))
    real = verify.check_settings("b", {}, False)
    assert (real["jetson_base_swap_file"], real["verify_min_swap_mb"], real["jetson_base_clocks_on_boot"]) == (
        "/var/swap2",
        1024.0,
        True,
    )
    assert verify.check_settings("b", {}, True)["verify_min_swap_mb"] == 32.0
    assert verify.check_settings("b", {"jetson_base_swap_file": "/x"}, True)["jetson_base_swap_file"] == "/x"
    (tmp_path / "lab.ini").write_text("[b]\nb1 ansible_host=127.0.0.1 jetson_module=tx2 jetpack=4.6.4\n")
    (b,) = board.load(tmp_path / "lab.ini", plans=False).boards
    assert verify.bench_dir(b) == "/srv/bench"


def bench_doc(e2e: float, inf: float, correct: bool = True) -> dict[str, object]:
    return {
        "schema_version": 1,
        "verdict": {"backend": "torch-fp32", "fps": e2e},
        "results": [
            {
                "backend": "torch-fp32",
                "correct": correct,
                "inference": {"fps": inf},
                "end_to_end": {"fps": e2e, "p99_ms": 70.0},
            }
        ],
    }


def test_verdicts() -> None:
    p = tx2_plan()
    ok = [verify.CheckResult("test_a", "passed")]
    d = verify.decide(p, 15.0, ok, bench_doc(18.0, 40.0), "")
    assert (d.verdict, d.inference_fps, d.e2e_fps, d.p99_ms, d.reason) == ("PASS", 40.0, 18.0, 70.0, "")
    assert d.margin_pct == pytest.approx(20.0)
    d = verify.decide(p, 20.0, ok, bench_doc(18.0, 40.0), "")
    assert d.verdict == "FAIL" and d.margin_pct == pytest.approx(-10.0) and "below the target 20" in d.reason
    bad = [*ok, verify.CheckResult("test_torch", "failed", "x")]
    d = verify.decide(p, 15.0, bad, bench_doc(30.0, 40.0), "")
    assert d.verdict == "FAIL" and "test_torch" in d.reason
    d = verify.decide(p, 15.0, ok, bench_doc(30.0, 40.0, correct=False), "")
    assert d.verdict == "FAIL" and "incorrect output" in d.reason
    d = verify.decide(p, 15.0, ok, None, "unreachable: timed out")
    assert d == verify.Verdict("ERROR", None, None, None, None, "unreachable: timed out")


def test_z2color_needs_an_end_to_end_figure_to_pass() -> None:
    p = tx2_plan()
    ok = [verify.CheckResult("test_a", "passed")]
    doc = bench_doc(18.0, 40.0)
    doc["verdict"] = {"backend": "torch-fp32", "fps": 40.0, "measure": "inference"}
    doc["results"][0]["end_to_end"] = None  # type: ignore[index]
    d = verify.decide(p, 15.0, ok, doc, "")
    assert (d.verdict, d.inference_fps, d.e2e_fps, d.margin_pct) == ("FAIL", 40.0, None, None)
    assert d.reason.startswith("no end-to-end figure")
    # a user's own model may be judged on inference alone, labelled as such
    d = verify.decide(p, 15.0, ok, doc, "", model="mynet.onnx")
    assert d.verdict == "PASS" and d.margin_pct == pytest.approx(166.67, abs=0.01)
    assert d.reason.startswith("inference-only figure")


def test_measured_l4t_and_power_mode_show_and_a_difference_fails() -> None:
    p = tx2_plan()
    ok = [verify.CheckResult("test_a", "passed")]
    doc = bench_doc(18.0, 40.0)
    assert verify.measured_identity(p, doc) == (p.l4t, f"{p.power_mode_id} {p.power_mode_name}", [])
    doc["conditions"] = {"l4t": "32.7.1", "nvpmodel": {"name": "MAXN", "id": 0}}
    l4t, mode, notes = verify.measured_identity(p, doc)
    assert notes[0] == f"measured L4T 32.7.1, the plan says {p.l4t}"
    assert (l4t, mode) == ("32.7.1", "0 MAXN")
    d = verify.decide(p, 15.0, ok, doc, "")
    assert d.verdict == "FAIL" and f"measured L4T 32.7.1, the plan says {p.l4t}" in d.reason
    if p.power_mode_id != 0:
        assert "measured power mode 0 MAXN" in d.reason


def test_an_emulated_benchmark_runs_with_no_checks_at_the_same_time() -> None:
    lock = verify.SharedOrAlone()
    seen: list[str] = []

    def bench() -> None:
        with lock.alone():
            seen.append(f"bench with {lock._shared} checks running")

    def checks() -> None:
        with lock.shared():
            seen.append("checks")

    with lock.shared(), lock.shared():  # two boards' checks at once
        worker = threading.Thread(target=bench)
        worker.start()
        with lock._cond:  # the benchmark waits for them
            assert lock._cond.wait_for(lambda: lock._waiting_alone == 1, timeout=60)
        late = threading.Thread(target=checks)  # new checks queue behind the waiting benchmark
        late.start()
    worker.join(60)
    late.join(60)
    assert seen == ["bench with 0 checks running", "checks"]


def test_interrupt_stops_queued_boards_and_marks_the_run(tmp_path: Path) -> None:
    hosts = "".join(
        f"b{i} ansible_host=127.0.0.{i} ansible_port=9 jetson_module=tx2 jetpack=4.6.4\n" for i in (1, 2, 3)
    )
    (tmp_path / "lab.ini").write_text(f"[b]\n{hosts}")
    notes: list[tuple[str, str]] = []

    def ctrl_c(board: str, what: str) -> None:  # Ctrl-C while the first board starts
        notes.append((board, what))
        raise KeyboardInterrupt

    opts = verify.VerifyOptions(str(tmp_path / "lab.ini"), db=str(tmp_path / "h.db"), forks=1)
    with pytest.raises(KeyboardInterrupt):
        verify.verify(opts, ctrl_c)
    assert notes == [("b1", "connecting")]  # b2 and b3 never started
    with History(tmp_path / "h.db") as h:
        assert [r.status for r in h.runs()] == ["interrupted"]
        assert h.board_results() == []


def test_probe_parses_this_hosts_output() -> None:
    out = subprocess.run(["sh", "-s"], input=PROBE, capture_output=True, text=True, check=True).stdout
    data = parse_probe(out)
    assert data["uptime_s"] > 0 and data["disk_free_gb"] > 0 and data["mem_free_mb"] > 0
    assert "l4t" not in data and "power_mode" not in data  # not a Jetson


def test_tegrastats_lines_of_jetpack_4_and_6() -> None:
    jp4 = (
        "RAM 2012/7851MB (lfb 2x4MB) SWAP 0/3925MB (cached 0MB) CPU [12%@2035,off,off,10%@2035,9%@2034,8%@2035] "
        "EMC_FREQ 3%@1866 GR3D_FREQ 45%@1300 APE 150 PLL@39C MCPU@39C PMIC@100C Tboard@35C GPU@38.5C BCPU@39C"
    )
    assert parse_tegrastats(jp4) == {"gpu_load_pct": 45.0, "gpu_temp_c": 38.5}
    jp6 = "RAM 3012/62841MB CPU [1%@729,0%@729] GR3D_FREQ 0% cpu@45.25C gpu@43.5C VDD_GPU_SOC 3976mW/3976mW"
    assert parse_tegrastats(jp6) == {"gpu_load_pct": 0.0, "gpu_temp_c": 43.5}


def test_unreachable_board_returns_within_its_timeout(tmp_path: Path) -> None:
    target = SshTarget("gone", "127.0.0.1", 9, "root", None, str(tmp_path / "kh"), True, False)
    (tmp_path / "kh").write_text("")
    t0 = time.monotonic()
    st = probe_board(target, timeout=2.0)
    assert not st.reachable and st.error
    assert time.monotonic() - t0 < 3.0


def test_a_missing_known_hosts_file_is_the_boards_reason_not_a_crash(tmp_path: Path) -> None:
    target = SshTarget("b1", "127.0.0.1", 9, "root", None, "~/no-such-dir-tx2setup/known_hosts", True, False)
    st = probe_board(target, timeout=2.0)
    assert not st.reachable
    # ~ was expanded: the message names the real file
    assert st.error.startswith(f"known_hosts file {Path.home()}/no-such-dir-tx2setup/known_hosts is missing")


def test_a_board_that_accepts_and_never_speaks_ssh_is_cut_at_the_deadline(tmp_path: Path) -> None:
    (tmp_path / "kh").write_text("")
    with socket.create_server(("127.0.0.1", 0)) as srv:  # the kernel accepts; nobody speaks
        target = SshTarget("mute", "127.0.0.1", srv.getsockname()[1], "root", None, str(tmp_path / "kh"), True, False)
        st = probe_board(target, timeout=1.0)
    assert not st.reachable
    assert st.error in ("no answer within 1 s", "Error reading SSH protocol banner")


class DrippingBoard(paramiko.ServerInterface):
    """Stand-in SSH server: accepts the key, runs no command, and answers the probe one
    byte every 0.2 s for ever. Each byte restarts paramiko's per-read channel timeout,
    so without one overall deadline `status` waited for this board until it stopped."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        def drip() -> None:
            while not self.stop.wait(0.2):  # the board's own pace, not synchronisation
                try:
                    channel.send(b"x")
                except (OSError, EOFError):
                    return

        threading.Thread(target=drip, daemon=True).start()
        return True


def test_a_board_that_answers_forever_is_cut_at_the_overall_deadline(tmp_path: Path) -> None:
    host_key = paramiko.RSAKey.generate(1024)
    client_key = paramiko.RSAKey.generate(1024)
    client_key.write_private_key_file(str(tmp_path / "id_rsa"))
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        (tmp_path / "kh").write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
        transports: list[paramiko.Transport] = []

        def serve() -> None:
            conn, _ = srv.accept()
            t = paramiko.Transport(conn)
            transports.append(t)
            t.add_server_key(host_key)
            t.start_server(server=DrippingBoard(stop))

        threading.Thread(target=serve, daemon=True).start()
        target = SshTarget(
            "drip", "127.0.0.1", port, "root", str(tmp_path / "id_rsa"), str(tmp_path / "kh"), True, False
        )
        try:
            st = probe_board(target, timeout=1.0)
        finally:
            stop.set()
            for t in transports:
                t.close()
    assert not st.reachable
    assert st.error == "no answer within 1 s"


def test_fleet_status_shows_every_board_when_one_has_no_known_hosts_file(tmp_path: Path) -> None:
    (tmp_path / "lab.ini").write_text(
        "[b]\n"
        "b1 ansible_host=127.0.0.1 ansible_port=9 jetson_module=tx2 jetpack=4.6.4"
        f" ansible_ssh_common_args='-o UserKnownHostsFile={tmp_path}/missing'\n"
        "b2 ansible_host=127.0.0.2 ansible_port=9 jetson_module=tx2 jetpack=4.6.4"
        f" ansible_ssh_common_args='-o UserKnownHostsFile={tmp_path}/kh'\n"
    )
    (tmp_path / "kh").write_text("")
    rows = {s.name: s for s in fleet_status(str(tmp_path / "lab.ini"), timeout=2.0, db=str(tmp_path / "h.db"))}
    assert set(rows) == {"b1", "b2"} and not any(s.reachable for s in rows.values())
    assert "missing is missing" in rows["b1"].error
    assert "known_hosts" not in rows["b2"].error


def test_ssh_target_follows_ansible_connection_vars(tmp_path: Path) -> None:
    (tmp_path / "lab.ini").write_text(
        "[b]\nb1 ansible_host=127.0.1.11 jetson_module=tx2 jetpack=4.6.4 ansible_user=root ansible_port=2222"
        " ansible_ssh_private_key_file=/k/id"
        " ansible_ssh_common_args='-o UserKnownHostsFile=/k/known -o StrictHostKeyChecking=yes'\n"
    )
    (board,) = fleet.load(tmp_path / "lab.ini").boards
    t = SshTarget.from_board(board)
    assert (t.host, t.port, t.user, t.key_file, t.known_hosts, t.strict) == (
        "127.0.1.11",
        2222,
        "root",
        "/k/id",
        "/k/known",
        True,
    )
    cfg = t.ssh_config(tmp_path)
    assert "UserKnownHostsFile /k/known" in cfg and "StrictHostKeyChecking yes" in cfg and "IdentityFile /k/id" in cfg
