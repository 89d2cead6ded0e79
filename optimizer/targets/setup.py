"""``targets check`` and ``--target-setup``: is a target ready to measure, and making it so.

Setting up creates a virtual environment on the target, ``~/.cache/tflite-studio/venv-<LiteRT version>``, and
installs the ai-edge-litert this host runs (and numpy) there with pip: the target needs to reach PyPI or an index
of its own (pip.conf, PIP_INDEX_URL). Done once per target and LiteRT version; later runs reuse it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from optimizer.errors import TargetError
from optimizer.targets.base import TargetSpec, connect

VENV_ROOT = "~/.cache/tflite-studio"
IDENTITY_FIELDS = ("hostname", "os", "arch", "cpu", "cores", "python", "litert", "numpy")


def venv_python(version: str, root: str = VENV_ROOT) -> str:
    """The Python of the set-up environment on a target (``~`` is the target's home)."""
    return f"{root}/venv-{version}/bin/python"


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def setup_target(spec: TargetSpec, workdir: Path, timeout_s: float = 20, install_timeout_s: float = 900,
                 root: str = VENV_ROOT) -> TargetSpec:
    """Make sure the target has a venv with this host's ai-edge-litert and numpy; returns the spec whose python
    is that venv's. Nothing is installed when the venv already imports both."""
    from optimizer.targets.ssh import SshConnection, our_litert_version, remote_word

    if spec.is_local:
        return spec
    version = our_litert_version()
    venv = f"{root}/venv-{version}"
    python = venv_python(version, root)
    connection = SshConnection(spec, workdir, timeout_s)  # the base Python must exist
    try:
        status, _ = connection.run(f"{remote_word(python)} -c 'import numpy, ai_edge_litert.interpreter'")
        if status == 0:
            return replace(spec, python=python)
        status, output = connection.run(f"mkdir -p {remote_word(root)}")
        if status != 0:
            raise TargetError(f"cannot create {root} on {spec.label}: {_last_line(output)}")
        status, output = connection.run(f"{remote_word(connection.python)} -m venv {remote_word(venv)}", 120)
        if status != 0:
            raise TargetError(f"`{spec.python} -m venv` failed on {spec.label}: {_last_line(output)}; install "
                              "Python's venv module there (Debian, Raspberry Pi OS: `sudo apt install python3-venv`)")
        status, output = connection.run(f"{remote_word(python)} -m pip install --no-input --quiet "
                                        f"--disable-pip-version-check ai-edge-litert=={version} numpy",
                                        install_timeout_s)
        if status != 0:
            raise TargetError(f"installing ai-edge-litert=={version} into {venv} on {spec.label} failed: "
                              f"{_last_line(output)}; the target must reach PyPI (or an index named in its "
                              "pip.conf or PIP_INDEX_URL)")
    finally:
        connection.close()
    return replace(spec, python=python)


def check_target(spec: TargetSpec, workdir: Path, timeout_s: float = 20, setup: bool = False) -> dict[str, Any]:
    """What ``targets check`` prints: the target's identity and load average, whether it can measure
    (``ready``), and otherwise the one sentence saying what is missing (``problem``)."""
    report: dict[str, Any] = {"target": spec.label, "uri": spec.uri, "python": spec.python,
                              "ssh_key": spec.ssh_key, "ready": False, "identity": None, "loadavg": None,
                              "problem": None}
    try:
        if setup:
            spec = setup_target(spec, workdir, timeout_s)
            report["python"] = spec.python
        connection = connect(spec, workdir, timeout_s)
        try:
            say_hello = getattr(connection, "say_hello", None)
            if say_hello is not None:  # an SSH target shows what it has even when LiteRT is missing
                report["identity"] = dict(say_hello().get("identity") or {})
            report["identity"] = connection.identity()
            report["ready"] = True
        finally:
            report["loadavg"] = getattr(connection, "loadavg", None)
            connection.close()
    except TargetError as exc:
        report["problem"] = str(exc)
    return report
