"""SSH targets against a real OpenSSH server on 127.0.0.1 (tests/support/sshd.py): ``targets check``, a run
measured on an ssh target, and each way a target can be unready (closed port, refused key, no Python, no numpy,
no LiteRT) giving its reason while the local figures are still produced; no key material in the run folder."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.errors import TargetError
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import run_comparison
from optimizer.targets.base import parse_target
from optimizer.targets.ssh import SshConnection
from optimizer.variants import VariantSpec
from tests.conftest import DIGITS_DATA, DIGITS_MODEL
from tests.support.sshd import Sshd, free_port

ROOT = Path(__file__).resolve().parents[2]
LITERT = importlib.metadata.version("ai-edge-litert")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "optimizer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def _imports(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def python_without_litert() -> str:
    """This venv's base interpreter: numpy but no ai_edge_litert (checked, not assumed)."""
    base = getattr(sys, "_base_executable", None) or ""
    if not base or _imports(base, "ai_edge_litert") or not _imports(base, "numpy"):
        pytest.skip(f"no Python with numpy and without ai_edge_litert here ({base!r})")
    return base


@pytest.fixture(scope="module")
def python_without_numpy(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A bare venv: neither numpy nor LiteRT."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    python = str(venv / "bin" / "python")
    assert not _imports(python, "numpy")
    return python


def test_targets_check_prints_this_hosts_identity(sshd: Sshd):
    result = _cli("targets", "check", sshd.uri, "--ssh-key", str(sshd.key), "--target-python", sys.executable,
                  "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ready"] is True and report["problem"] is None
    identity = report["identity"]
    assert identity["hostname"] == socket.gethostname()
    assert identity["arch"] == platform.machine()
    assert identity["cores"] == os.cpu_count()
    assert identity["python"] == platform.python_version()
    assert identity["litert"] == LITERT
    assert identity["os"].startswith(platform.system()) and identity["cpu"]
    assert identity["target"] == f"root@127.0.0.1:{sshd.port}" == report["target"]
    assert len(report["loadavg"]) == 3


def test_targets_check_table_names_each_field(sshd: Sshd):
    result = _cli("targets", "check", sshd.uri, "--ssh-key", str(sshd.key), "--target-python", sys.executable)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert lines["hostname"] == socket.gethostname() and lines["cores"] == str(os.cpu_count())
    assert lines["litert"] == LITERT and "ready: yes" in result.stdout


def test_check_without_litert_shows_identity_and_the_remedy(sshd: Sshd, python_without_litert: str):
    result = _cli("targets", "check", sshd.uri, "--ssh-key", str(sshd.key), "--target-python",
                  python_without_litert, "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ready"] is False
    assert report["identity"]["hostname"] == socket.gethostname() and report["identity"]["litert"] is None
    assert report["problem"] == (f"ai-edge-litert is not installed on root@127.0.0.1:{sshd.port}: run "
                                 f"`{python_without_litert} -m pip install ai-edge-litert=={LITERT}` there, or use "
                                 "--target-setup")


@pytest.mark.parametrize(("case", "expected"), [
    ("refused key", "the key {other} was refused by root@127.0.0.1:{port}"),
    ("closed port", "cannot reach root@127.0.0.1:{closed}: connection refused"),
    ("missing key file", "the key {missing} does not exist"),
    ("no python", "`python9.99` was not found on root@127.0.0.1:{port}"),
    ("unknown host", "cannot reach root@no-such-host.invalid:22: the host name is not known"),
])
def test_unready_targets_say_why(sshd: Sshd, tmp_path: Path, case: str, expected: str):
    closed = free_port()
    key, uri, python = str(sshd.key), sshd.uri, sys.executable
    if case == "refused key":
        key = str(sshd.other_key)
    elif case == "closed port":
        uri = f"ssh://root@127.0.0.1:{closed}"
    elif case == "missing key file":
        key = str(tmp_path / "absent_key")
    elif case == "no python":
        python = "python9.99"
    else:
        uri = "ssh://root@no-such-host.invalid"
    result = _cli("targets", "check", uri, "--ssh-key", key, "--target-python", python)
    assert result.returncode == 1
    assert expected.format(other=sshd.other_key, port=sshd.port, closed=closed, missing=key) in result.stdout


def test_a_python_without_numpy_is_named(sshd: Sshd, tmp_path: Path, python_without_numpy: str):
    connection = SshConnection(parse_target(sshd.uri, str(sshd.key), python_without_numpy), tmp_path)
    try:
        with pytest.raises(TargetError, match=f"numpy is not installed for `{python_without_numpy}`"):
            connection.identity()
    finally:
        connection.close()


def test_private_folder_is_mode_700_and_removed_at_close(sshd: Sshd, tmp_path: Path):
    connection = SshConnection(parse_target(sshd.uri, str(sshd.key), sys.executable), tmp_path)
    folder = Path(str(connection.folder))  # the target is this machine: its folder can be looked at directly
    try:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert {"agent.py"} <= {p.name for p in folder.iterdir()}
        assert connection.put(DIGITS_DATA) == "digits.npz"
        assert connection.put(DIGITS_DATA) == "1-digits.npz"  # a second file of the same name does not overwrite
        assert (folder / "digits.npz").read_bytes() == DIGITS_DATA.read_bytes()
        agent = connection.start_agent()
        assert agent.request({"cmd": "hello"}, 30)["identity"]["litert"] == LITERT
    finally:
        connection.close()
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []  # nothing of the connection (no key) lands in the local work folder


def _key_material(sshd: Sshd) -> list[bytes]:
    """The base64 body lines of the private keys and the public keys' blobs: none may appear in a run folder."""
    secrets = []
    for key in (sshd.key, sshd.other_key):
        secrets += [line.strip() for line in key.read_bytes().splitlines()
                    if line.strip() and not line.startswith(b"-----")]
        secrets.append(Path(f"{key}.pub").read_bytes().split()[1])
    return secrets


@pytest.mark.slow
def test_run_measures_on_the_ssh_target_and_names_the_unreachable_one(sshd: Sshd, tmp_path: Path):
    closed = free_port()
    out = tmp_path / "run"
    result = _cli("run", str(DIGITS_MODEL), "--data", str(DIGITS_DATA), "--variants", "float32,int8",
                  "--warmup", "2", "--out", str(out), "--format", "json", "--target", sshd.uri,
                  "--target", f"ssh://root@127.0.0.1:{closed}", "--ssh-key", str(sshd.key),
                  "--target-python", sys.executable)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    good, bad = f"root@127.0.0.1:{sshd.port}", f"root@127.0.0.1:{closed}"
    assert [r["variant"] for r in rows] == ["float32", "int8"]
    for row in rows:
        assert row["status"] == "ok" and row["latency_ms_p50"] > 0  # the local figures
        remote = row["targets"][good]
        assert remote["error"] is None
        assert remote["identity"]["hostname"] == socket.gethostname() and remote["identity"]["target"] == good
        assert remote["identity"]["cores"] == os.cpu_count() and remote["identity"]["litert"] == LITERT
        assert remote["latency_ms_p50"] > 0 and remote["latency_ms_p95"] >= remote["latency_ms_p50"]
        assert remote["latency_ms_first"] > 0 and remote["memory_peak_bytes"] > 0
        assert row["targets"][bad]["error"] == f"cannot reach {bad}: connection refused"
    manifest = json.loads((out / "manifest.json").read_text())
    entries = {entry["label"]: entry for entry in manifest["targets"]}
    assert entries[good]["identity"]["arch"] == platform.machine() and entries[good]["error"] is None
    assert entries[bad]["error"] == f"cannot reach {bad}: connection refused"
    secrets = _key_material(sshd)
    for path in out.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(secret in content for secret in secrets), f"key material in {path}"
    assert str(sshd.key) in (out / "manifest.json").read_text()  # only the key's path is recorded


@pytest.mark.slow
def test_run_on_a_target_without_litert_keeps_the_local_figures(sshd: Sshd, tmp_path: Path,
                                                                  python_without_litert: str):
    options = RunOptions(warmup_runs=2, targets=[sshd.uri], ssh_key=str(sshd.key),
                         target_python=python_without_litert)
    result = run_comparison(DIGITS_MODEL, tmp_path / "run", [VariantSpec("float32")], data=DIGITS_DATA,
                            options=options)
    row = result.rows[0]
    assert row["status"] == "ok" and row["latency_ms_p50"] > 0
    label = f"root@127.0.0.1:{sshd.port}"
    assert row["targets"][label]["error"] == (f"ai-edge-litert is not installed on {label}: run "
                                              f"`{python_without_litert} -m pip install ai-edge-litert=={LITERT}` "
                                              "there, or use --target-setup")
    assert row["targets"][label].get("latency_ms_p50") is None


@pytest.mark.slow
def test_target_setup_installs_litert_in_a_venv_and_reuses_it(sshd: Sshd, tmp_path: Path,
                                                              python_without_litert: str):
    from optimizer.targets.setup import check_target, setup_target

    spec = parse_target(sshd.uri, str(sshd.key), python_without_litert)
    root = str(tmp_path / "cache")
    ready = setup_target(spec, tmp_path / "work", root=root)
    assert ready.python == f"{root}/venv-{LITERT}/bin/python"
    assert _imports(ready.python, "ai_edge_litert.interpreter")
    report = check_target(ready, tmp_path / "work")
    assert report["ready"] is True and report["identity"]["litert"] == LITERT
    marker = Path(ready.python).parent / "studio-marker"
    marker.write_text("kept")
    assert setup_target(spec, tmp_path / "work", root=root) == ready
    assert marker.read_text() == "kept"  # the venv was reused, not made again


def test_target_setup_without_an_index_says_so(sshd: Sshd, tmp_path: Path, python_without_litert: str):
    from optimizer.targets.setup import setup_target

    venv = tmp_path / "cache" / f"venv-{LITERT}"
    subprocess.run([python_without_litert, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv / "pip.conf").write_text("[global]\nno-index = true\nfind-links =\n")  # as a target offline would be
    with pytest.raises(TargetError, match=rf"installing ai-edge-litert=={LITERT} into .* on root@127.0.0.1:"
                                          rf"{sshd.port} failed: .*; the target must reach PyPI"):
        setup_target(parse_target(sshd.uri, str(sshd.key), python_without_litert), tmp_path / "work",
                     root=str(tmp_path / "cache"))


def test_a_port_that_never_speaks_ssh_times_out_with_the_reason(tmp_path: Path):
    with socket.socket() as silent:  # accepts connections (the kernel does) but never sends a banner
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        with pytest.raises(TargetError, match=rf"^timed out after 2 s waiting for the SSH banner of "
                                              rf"root@127.0.0.1:{port}: is an SSH server listening"):
            SshConnection(parse_target(f"ssh://root@127.0.0.1:{port}"), tmp_path, timeout_s=2)


def test_without_any_key_the_check_says_to_pass_one(sshd: Sshd, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"} | {"HOME": str(tmp_path)}  # no keys
    result = subprocess.run([sys.executable, "-m", "optimizer", "targets", "check", sshd.uri], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"not ready: no key to offer to root@127.0.0.1:{sshd.port}: pass --ssh-key PATH" in result.stdout
