"""The one door to st.session_state: every key the pages share, with typed getters and setters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from optimizer.paths import DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_SAMPLE

SESSION_ID = "session_id"
CURRENT_RUN = "current_run"
SELECTION_LABEL = "selection_label"
INPUT_CHECKS = "input_checks"
_KEPT_CHECKS = 16


@dataclass(frozen=True)
class Selection:
    """The model and data the next run will use, and how to read the data (the CSV label column)."""

    model: Path
    data: Path | None = None
    labels: Path | None = None
    calib: Path | None = None
    eval_data: Path | None = None
    label: str = DEFAULT_SAMPLE
    label_column: str = "label"
    refused: InputCheck | None = None  # uploads refused and already deleted: the verdict stays

    @property
    def uploaded(self) -> bool:
        return self.label == "uploaded"

    def data_paths(self) -> dict[str, str | None]:
        return {"data": _s(self.data), "labels": _s(self.labels), "calib": _s(self.calib),
                "eval_data": _s(self.eval_data)}

    def request_inputs(self) -> dict[str, Any]:
        """The JobRequest fields this selection fills: the files (the label column is a run option)."""
        return {"model": str(self.model), **self.data_paths()}

    def data_files(self) -> list[Path]:
        return [p for p in (self.data, self.labels, self.calib, self.eval_data) if p]

    def reads_csv(self) -> bool:
        return any(p.suffix.lower() == ".csv" for p in (self.data, self.calib, self.eval_data) if p)

    def fingerprint(self) -> str:
        """Names, sizes and modification times of the files plus the label column: changes when any input
        does (a new upload under the same name included), without hashing the files."""
        parts = []
        for path in (self.model, self.data, self.labels, self.calib, self.eval_data):
            try:
                stat = path.stat() if path else None
                parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}" if stat else "-")
            except OSError:
                parts.append(f"{path}:missing")
        return "|".join([*parts, self.label_column])


@dataclass(frozen=True)
class InputCheck:
    """The verdict on one selection: the model summary and the data report, or the sentence that refused it
    (``summary`` set with a refusal means the model passed and the data did not)."""

    summary: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    refusal: str | None = None


def _s(path: Path | None) -> str | None:
    return str(path) if path else None


def session_id() -> str:
    if SESSION_ID not in st.session_state:
        st.session_state[SESSION_ID] = uuid.uuid4().hex
    return str(st.session_state[SESSION_ID])


def selection() -> Selection:
    """The chosen model and data; the demo sample and its data until the user picks something else."""
    return st.session_state.get(SELECTION_LABEL) or Selection(DEFAULT_MODEL, DEFAULT_DATA)


def set_selection(choice: Selection) -> None:
    """Choose new inputs; earlier verdicts are dropped, so choosing the same files again re-checks them."""
    st.session_state[SELECTION_LABEL] = choice
    st.session_state.pop(INPUT_CHECKS, None)


def input_check(choice: Selection) -> InputCheck | None:
    """The last verdict on exactly these inputs in this session, if they were checked."""
    if choice.refused is not None:
        return choice.refused
    return st.session_state.get(INPUT_CHECKS, {}).get(choice.fingerprint())


def set_input_check(choice: Selection, check: InputCheck) -> None:
    checks = dict(st.session_state.get(INPUT_CHECKS, {}))
    checks[choice.fingerprint()] = check
    st.session_state[INPUT_CHECKS] = dict(list(checks.items())[-_KEPT_CHECKS:])


def current_run() -> str | None:
    """The run this tab follows: the ?run= query parameter (survives reloads), else this session's last."""
    return st.query_params.get("run") or st.session_state.get(CURRENT_RUN)


def set_current_run(run_id: str) -> None:
    st.session_state[CURRENT_RUN] = run_id
    st.query_params["run"] = run_id
