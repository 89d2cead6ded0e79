"""The target picker of Variants & run: saved SSH targets (``targets.json`` in the runs folder: URI, key path and
Python only, never a key), a Check button that runs ``python -m optimizer targets check`` in a subprocess (LiteRT
and TensorFlow never load in the server), and the chosen targets as RunOptions fields."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import streamlit as st

from optimizer.errors import InvalidOption, OptimizerError, user_message
from optimizer.targets.base import TargetSpec, parse_target

TARGETS_FILE = "targets.json"
CHECKS = "target_checks"  # session state: the last `targets check` report of each URI
SAVE_ERROR = "target_save_error"  # session state: why the last Save was refused
CHOICE = "target_choice"  # the multiselect of targets to measure on
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHECK_TIMEOUT_S = 120


def saved_targets(root: Path) -> list[TargetSpec]:
    """The saved targets, oldest first; a missing or unreadable file is no targets."""
    try:
        entries = json.loads((root / TARGETS_FILE).read_text())
        return [TargetSpec.from_dict(entry) for entry in entries]
    except (OSError, ValueError, TypeError, KeyError, OptimizerError):
        return []


def _write(root: Path, specs: list[TargetSpec]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{TARGETS_FILE}.tmp"
    partial.write_text(json.dumps([s.to_dict() for s in specs], indent=2))
    partial.chmod(0o600)
    os.replace(partial, root / TARGETS_FILE)


def save_target(root: Path, uri: str, ssh_key: str | None, python: str) -> TargetSpec:
    """Validate and save a target (replacing one of the same URI); a key must be a file on this server."""
    key = str(Path(ssh_key.strip()).expanduser()) if ssh_key and ssh_key.strip() else None
    spec = parse_target(uri, key, python.strip() or "python3")
    if spec.is_local:
        raise InvalidOption("target: local is always measured; save ssh://USER@HOST[:PORT] targets")
    if key is not None and not Path(key).is_file():
        raise InvalidOption(f"ssh key: expected a private key file on this server; found nothing at {key}")
    _write(root, [s for s in saved_targets(root) if s.uri != spec.uri] + [spec])
    return spec


def remove_target(root: Path, uri: str) -> None:
    _write(root, [s for s in saved_targets(root) if s.uri != uri])


def check_target(spec: TargetSpec) -> dict[str, Any]:
    """``targets check`` in a subprocess: its JSON report, or a report whose problem says why it gave none."""
    command = [sys.executable, "-m", "optimizer", "targets", "check", spec.uri, "--target-python", spec.python,
               "--format", "json", *(["--ssh-key", spec.ssh_key] if spec.ssh_key else [])]
    try:
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
        return dict(json.loads(done.stdout))
    except subprocess.TimeoutExpired:
        problem = f"the check of {spec.label} took longer than {CHECK_TIMEOUT_S} s"
    except ValueError:
        problem = f"the check of {spec.label} printed no report: {(done.stderr or '').strip()[-300:]}"
    return {"target": spec.label, "ready": False, "identity": None, "problem": problem}


def run_fields(chosen: list[TargetSpec]) -> tuple[dict[str, Any], str | None]:
    """RunOptions fields for the chosen targets, and why a run cannot take them (a run has one key and one
    Python for all its ssh targets)."""
    if not chosen:
        return {}, None
    if len({s.ssh_key for s in chosen}) > 1 or len({s.python for s in chosen}) > 1:
        return {}, ("The chosen targets use different keys or Pythons, and a run takes one of each: choose "
                    "targets that share them.")
    return {"targets": [s.uri for s in chosen], "ssh_key": chosen[0].ssh_key, "target_python": chosen[0].python}, None


def _slug(uri: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", uri.removeprefix("ssh://"))


def _on_save(root: Path) -> None:
    """Save from the form's fields (a callback: it may still choose the new target in the multiselect)."""
    try:
        spec = save_target(root, st.session_state.get("target_uri", ""), st.session_state.get("target_key"),
                           st.session_state.get("target_python", "python3"))
    except OptimizerError as exc:
        st.session_state[SAVE_ERROR] = user_message(exc)
        return
    st.session_state.pop(SAVE_ERROR, None)
    st.session_state[CHOICE] = [*st.session_state.get(CHOICE, []), spec.uri]


def _show_check(report: dict[str, Any]) -> None:
    identity = report.get("identity") or {}
    if identity:
        st.caption(f"{identity.get('hostname')}: {identity.get('os')}, {identity.get('arch')}, "
                   f"{identity.get('cpu')} ({identity.get('cores')} cores), Python {identity.get('python')}, "
                   f"LiteRT {identity.get('litert')}")
    if report.get("ready"):
        st.success(f"{report['target']} is ready to measure.", icon=":material/check:")
    else:
        st.error(f"{report['target']}: {report.get('problem')}")


def _saved_list(root: Path, saved: list[TargetSpec]) -> None:
    checks: dict[str, Any] = st.session_state.setdefault(CHECKS, {})
    for spec in saved:
        left, middle, right = st.columns([4, 1, 1], vertical_alignment="center")
        left.markdown(f"**{spec.label}** · key {spec.ssh_key or 'ssh-agent / ~/.ssh'} · `{spec.python}`")
        if middle.button("Check", key=f"target_check_{_slug(spec.uri)}"):
            with st.spinner(f"Checking {spec.label}..."):
                checks[spec.uri] = check_target(spec)
        if right.button("Remove", key=f"target_remove_{_slug(spec.uri)}"):
            remove_target(root, spec.uri)
            checks.pop(spec.uri, None)
            st.rerun()
        if spec.uri in checks:
            _show_check(checks[spec.uri])


def picker(root: Path) -> tuple[dict[str, Any], str | None]:
    """The Targets expander; returns the RunOptions fields of the chosen targets and a reason the run is off."""
    saved = saved_targets(root)
    uris = [s.uri for s in saved]
    if CHOICE in st.session_state:  # a removed target leaves the choice
        st.session_state[CHOICE] = [u for u in st.session_state[CHOICE] if u in uris]
    with st.expander("Targets: measure on other machines too", expanded=bool(saved)):
        st.caption("Latency and memory are always measured on this host (local). An ssh target (a Raspberry Pi, "
                   "a Jetson) is measured too, with the same protocol, one column group each; it needs Python 3 "
                   "with numpy and ai-edge-litert there (Check says what is missing). Only the key's path is "
                   "saved, in the runs folder.")
        chosen_uris = st.multiselect("Also measure on", uris, key=CHOICE,
                                     format_func=lambda u: u.removeprefix("ssh://"))
        _saved_list(root, saved)
        cols = st.columns([3, 3, 2])
        cols[0].text_input("Target", key="target_uri", placeholder="ssh://pi@192.168.1.20:22")
        cols[1].text_input("SSH key (path on this server)", key="target_key", placeholder="~/.ssh/id_ed25519",
                           help="Blank: the server's ssh-agent and default keys.")
        cols[2].text_input("Python there", value="python3", key="target_python")
        st.button("Save target", key="target_save", on_click=_on_save, args=(root,))
        if st.session_state.get(SAVE_ERROR):
            st.error(st.session_state[SAVE_ERROR])
    return run_fields([s for s in saved if s.uri in chosen_uris])
