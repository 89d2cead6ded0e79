"""The benchmark step on targets, on the sample CNN (named explicitly: the default model may change): local
figures from interleaved rounds with the host's identity, the per-op profile, and an unreachable target that
fails only its own column group; the local agent's failure paths (a bad model, a path, a timeout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optimizer.errors import TargetError
from optimizer.paths import PROJECT_ROOT
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import RunResult, run_comparison
from optimizer.targets.base import TargetSpec, connect, parse_target
from optimizer.variants import VariantSpec
from tests.conftest import rows_by_name

pytestmark = pytest.mark.slow

CNN = PROJECT_ROOT / "sample_models" / "digits_cnn.keras"
DIGITS = PROJECT_ROOT / "sample_models" / "digits.npz"
UNREACHABLE = "ssh://nobody@127.0.0.1:1"  # nothing listens on port 1
IDENTITY = {"hostname", "os", "arch", "cpu", "cores", "python", "litert", "numpy", "target"}


@pytest.fixture(scope="module")
def targets_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("targets") / "run"
    return run_comparison(CNN, out, [VariantSpec("float32"), VariantSpec("int8")], data=DIGITS,
                          options=RunOptions(warmup_runs=2, targets=[UNREACHABLE], latency_time_cap_s=20))


def test_local_rows_carry_identity_rounds_and_intervals(targets_run):
    for row in rows_by_name(targets_run).values():
        assert row["status"] == "ok", row["error"]
        local = row["targets"]["local"]
        assert set(local["identity"]) >= IDENTITY and local["identity"]["target"] == "local"
        assert local["identity"]["cores"] >= 1 and local["identity"]["litert"] and local["error"] is None
        assert row["identity"] == local["identity"]
        assert row["latency_rounds"] >= 6 and row["latency_runs"] >= 50
        assert len(row["timings_ms"]) == row["latency_runs"] == 10 * row["latency_rounds"]
        assert len(row["round_medians_ms"]) == row["latency_rounds"]
        assert row["latency_ms_p50_ci_low"] <= row["latency_ms_p50"] <= row["latency_ms_p50_ci_high"]
        assert row["latency_half_width_pct"] >= 0 and row["latency_round_cv"] >= 0
        assert row["latency_resolution_pct"] >= 0 and row["latency_ms_p50"] == local["latency_ms_p50"]
        assert row["memory_peak_bytes"] > 10 * 1024**2 and row["latency_ms_first"] > 0
        assert row["tensorflow_loaded"] is False and row["runtime"] == "ai_edge_litert"
        assert "timings_ms" not in local  # kept once, in the row


def test_local_rows_carry_the_op_profile(targets_run):
    for row in rows_by_name(targets_run).values():
        profile = row["op_profile"]
        assert isinstance(profile, dict) and "error" not in profile, profile


def test_manifest_records_each_target_and_the_unreachable_one_fails_alone(targets_run):
    local, remote = targets_run.manifest["targets"]
    assert local["label"] == "local" and local["error"] is None and set(local["identity"]) >= IDENTITY
    assert local["rounds"] >= 6 and isinstance(local["precision_met"], bool) and local["resolution_pct"] >= 0
    assert len(local["loadavg_before"]) == 3 and len(local["loadavg_after"]) == 3
    assert remote["uri"] == "ssh://nobody@127.0.0.1:1" and remote["identity"] is None
    assert "cannot reach nobody@127.0.0.1:1" in remote["error"]
    rows = rows_by_name(targets_run)
    for row in rows.values():
        assert "cannot reach" in row["targets"]["nobody@127.0.0.1:1"]["error"]
    assert rows["int8"]["latency_verdict"] in ("faster", "slower", "same", "unresolved")
    assert targets_run.manifest["options"]["targets"] == [UNREACHABLE]
    table = targets_run.table()
    assert "nobody@127.0.0.1:1: error" in table.columns
    assert table["nobody@127.0.0.1:1: error"].str.contains("cannot reach").all()
    saved = json.loads(targets_run.files["json"].read_text())
    assert saved["manifest"]["targets"][1]["error"] == remote["error"]


def test_the_private_folders_are_removed(targets_run):
    assert not list((targets_run.out_dir / "work" / "targets").glob("target-local-*"))


def test_old_run_options_without_targets_still_load():
    stored = RunOptions().to_dict()
    for key in ("targets", "ssh_key", "target_python", "latency_precision", "latency_time_cap_s"):
        stored.pop(key)
    options = RunOptions.from_dict(stored)
    assert options.targets == [] and [s.uri for s in options.target_specs()] == ["local"]


def _float_file(targets_run) -> Path:
    return targets_run.out_dir / rows_by_name(targets_run)["float32"]["path"]


def test_local_agent_refuses_a_bad_model_and_a_path(targets_run, tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 20)
    connection = connect(parse_target("local"), tmp_path)
    try:
        session = connection.start_agent()
        with pytest.raises(TargetError, match="LiteRT cannot load junk.tflite"):
            session.request({"cmd": "load", "model": connection.put(junk), "inputs": None, "threads": 1,
                             "warmup_runs": 0}, 60)
        with pytest.raises(TargetError, match="plain file name"):
            session.request({"cmd": "load", "model": "../" + _float_file(targets_run).name, "inputs": None,
                             "threads": 1, "warmup_runs": 0}, 60)
        name = connection.put(_float_file(targets_run))
        assert session.request({"cmd": "load", "model": name, "inputs": None, "threads": 1,
                                "warmup_runs": 0}, 60)["latency_ms_init"] > 0  # a refusal leaves it usable
    finally:
        connection.close()
    assert not connection.folder.exists()


def test_local_agent_that_times_out_is_killed(targets_run, tmp_path):
    sample = tmp_path / "x.npy"
    np.save(sample, np.load(DIGITS)["x_eval"][:1].astype(np.float32))
    connection = connect(parse_target("local"), tmp_path)
    try:
        session = connection.start_agent()
        session.request({"cmd": "load", "model": connection.put(_float_file(targets_run)),
                         "inputs": {"x": connection.put(sample)}, "threads": 1, "warmup_runs": 0}, 60)
        with pytest.raises(TargetError, match="timed out after 0 s waiting for time on local"):
            session.request({"cmd": "time", "runs": 10_000_000}, 0.2)
        process = connection._sessions[-1][0]  # noqa: SLF001 - the agent's process
        assert process.wait(timeout=10) < 0  # killed, not left running
        with pytest.raises(TargetError, match="closed"):
            session.request({"cmd": "memory"}, 5)
    finally:
        connection.close()


def test_connect_refuses_an_unknown_scheme(tmp_path):
    with pytest.raises(TargetError, match="expected 'local' or an ssh:// target"):
        connect(TargetSpec("ftp://somewhere"), tmp_path)
