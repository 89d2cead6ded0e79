"""Long-lived objects of the server process (store, scheduler) and cached look-ups, via st.cache_resource
and bounded st.cache_data. Nothing here imports TensorFlow: models are inspected in worker processes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import streamlit as st

from optimizer.data import prepare_data
from optimizer.isolation import WorkerLimits
from optimizer.jobs import Scheduler
from optimizer.pipeline import inspect
from optimizer.store import RunStore

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Checked again after Streamlit's own server.maxUploadSize (.streamlit/config.toml).
MAX_UPLOAD_BYTES = int(os.environ.get("STUDIO_MAX_UPLOAD_MB", "200")) * 1024**2


def runs_dir() -> Path:
    """Where runs.db and every run's artifacts live: $STUDIO_RUNS_DIR, default ./runs."""
    return Path(os.environ.get("STUDIO_RUNS_DIR", PROJECT_ROOT / "runs")).resolve()


@st.cache_resource
def get_store(root: str) -> RunStore:
    return RunStore(Path(root))


@st.cache_resource
def get_scheduler(root: str) -> Scheduler:
    """One scheduler per server. STUDIO_WARM=1 (the default) keeps a standby runner with TensorFlow loaded
    while no job runs (about 1.5 GB resident), so a run starts without the ~5 s import; 0 turns it off."""
    return Scheduler(get_store(root), max_running=int(os.environ.get("STUDIO_MAX_JOBS", "1")),
                     warm=os.environ.get("STUDIO_WARM", "1") != "0")


def scheduler() -> Scheduler:
    return get_scheduler(str(runs_dir()))


def store() -> RunStore:
    """The run store, with its scheduler started (once per server process)."""
    root = str(runs_dir())
    get_scheduler(root)
    return get_store(root)


@st.cache_data(max_entries=32, show_spinner="Inspecting the model in a worker process...")
def inspect_model(path: str, sha256: str) -> dict[str, Any]:
    """Model summary from a worker, cached by content hash (sha256 is the cache key)."""
    scratch = runs_dir() / "uploads" / "inspect" / sha256[:16]
    return inspect(Path(path), scratch, WorkerLimits(timeout_s=300))


@st.cache_data(max_entries=32, show_spinner="Checking the data...")
def check_data(model_summary_key: str, input_shape: list[Any], output_shape: list[Any],
               paths: dict[str, str | None], scratch: str) -> dict[str, Any]:
    """The data report (shapes, labels, split) for the given files, as the run will see them."""
    return prepare_data(Path(scratch), input_shape, output_shape,
                        **{k: Path(v) if v else None for k, v in paths.items()})


def save_upload(upload: Any, folder: Path) -> Path:
    """Write one uploaded file into this session's folder under its own base name, after a size check."""
    from optimizer.errors import InputRejected

    name = Path(upload.name).name
    if not name or name.startswith("."):
        raise InputRejected(f"upload: expected a plain file name; found {upload.name!r}")
    size = upload.size
    if size > MAX_UPLOAD_BYTES:
        raise InputRejected(f"{name}: at most {MAX_UPLOAD_BYTES // 1024**2} MB allowed; found {size / 1024**2:.1f} MB")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    target.write_bytes(upload.getvalue())
    return target
