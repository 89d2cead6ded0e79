"""The one door to st.session_state: every key the pages share, with typed getters and setters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from optimizer.paths import DEFAULT_DATA, DEFAULT_MODEL

SESSION_ID = "session_id"
CURRENT_RUN = "current_run"
SELECTION_LABEL = "selection_label"


@dataclass(frozen=True)
class Selection:
    """The model and data the next run will use."""

    model: Path
    data: Path | None = None
    labels: Path | None = None
    calib: Path | None = None
    eval_data: Path | None = None
    label: str = "Digits CNN (sample)"

    def data_paths(self) -> dict[str, str | None]:
        return {"data": _s(self.data), "labels": _s(self.labels), "calib": _s(self.calib),
                "eval_data": _s(self.eval_data)}


def _s(path: Path | None) -> str | None:
    return str(path) if path else None


def session_id() -> str:
    if SESSION_ID not in st.session_state:
        st.session_state[SESSION_ID] = uuid.uuid4().hex
    return str(st.session_state[SESSION_ID])


def selection() -> Selection:
    """The chosen model and data; the sample CNN and its data until the user picks something else."""
    return st.session_state.get(SELECTION_LABEL) or Selection(DEFAULT_MODEL, DEFAULT_DATA)


def set_selection(choice: Selection) -> None:
    st.session_state[SELECTION_LABEL] = choice


def current_run() -> str | None:
    """The run this tab follows: the ?run= query parameter (survives reloads), else this session's last."""
    return st.query_params.get("run") or st.session_state.get(CURRENT_RUN)


def set_current_run(run_id: str) -> None:
    st.session_state[CURRENT_RUN] = run_id
    st.query_params["run"] = run_id
