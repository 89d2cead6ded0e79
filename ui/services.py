"""Long-lived objects of the server process (store, scheduler) and cached look-ups, via st.cache_resource
and bounded st.cache_data. Nothing here imports TensorFlow: models are inspected in worker processes."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from optimizer import paths
from optimizer.errors import InputRejected, OptimizerError, StoreUnavailable, user_message
from optimizer.intake.data import prepare_data
from optimizer.intake.model import file_sha256
from optimizer.jobs.runner import JobRequest, submit
from optimizer.jobs.scheduler import Scheduler
from optimizer.jobs.store import Retention, RunStore
from optimizer.records import TensorInfo
from optimizer.run.isolation import WorkerLimits
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import inspect
from optimizer.variants import VariantSpec
from ui import state

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Checked again after Streamlit's own server.maxUploadSize (.streamlit/config.toml).
MAX_UPLOAD_BYTES = int(os.environ.get("STUDIO_MAX_UPLOAD_MB", "200")) * 1024**2


def runs_dir() -> Path:
    return paths.runs_dir()


@st.cache_resource
def get_store(root: str) -> RunStore:
    return RunStore(Path(root))


@st.cache_resource
def get_scheduler(root: str) -> Scheduler:
    """One scheduler per server. STUDIO_WARM=1 (the default) keeps a standby runner with TensorFlow loaded
    while no job runs (about 1.5 GB resident), so a run starts without the ~5 s import; 0 turns it off.
    It also applies the retention policy (STUDIO_KEEP_DAYS, STUDIO_MAX_RUNS_GB) and removes idle uploads."""
    return Scheduler(get_store(root), max_running=int(os.environ.get("STUDIO_MAX_JOBS", "1")),
                     warm=os.environ.get("STUDIO_WARM", "1") != "0", retention=Retention.from_environment())


def scheduler() -> Scheduler:
    return get_scheduler(str(runs_dir()))


def store() -> RunStore:
    """The run store, with its scheduler started (once per server process); marks this session's uploads as
    in use. A runs folder that cannot be written stops the page with one sentence."""
    root = str(runs_dir())
    try:
        get_scheduler(root)
        runs = get_store(root)
    except StoreUnavailable as exc:
        st.error(user_message(exc))
        st.stop()
    runs.touch_session(state.session_id())
    return runs


def job_request(choice: state.Selection, specs: list[VariantSpec] | None = None, **options: Any) -> JobRequest:
    """The request for a run of this selection: its files, the variants, and RunOptions (as the CLI builds)."""
    return JobRequest(**choice.request_inputs(), variants=[s.to_dict() for s in specs or []],
                      options=RunOptions(label_column=choice.label_column, **options))


def start_run(request: JobRequest) -> str:
    """The one door through which the pages queue a run: submit, wake the scheduler, follow the run."""
    run_id = submit(store(), request, session=state.session_id())
    scheduler().wake()
    state.set_current_run(run_id)
    return run_id


def uploads_dir() -> Path:
    """This browser session's upload folder (its files are removed a day after the session was last used)."""
    return store().uploads_dir(state.session_id())


def _discard_uploads(paths: list[Path]) -> None:
    """Delete refused uploads (only files inside the uploads folder): a refused model at once, refused data
    once the user chooses other inputs (until then a changed option, e.g. the CSV label column, may fix it)."""
    root = runs_dir() / "uploads"
    for path in paths:
        if path.resolve().is_relative_to(root):
            path.unlink(missing_ok=True)


def choose(choice: state.Selection) -> None:
    """Make ``choice`` the next run's inputs; the refused uploads it replaces are deleted."""
    previous = state.selection()
    verdict = previous.refused or state.input_check(previous)
    if previous.uploaded and verdict is not None and verdict.refusal:
        keep = {choice.model, *choice.data_files()}
        _discard_uploads([p for p in (previous.model, *previous.data_files()) if p not in keep])
    state.set_selection(choice)


@st.cache_data(max_entries=32, show_spinner="Inspecting the model in a worker process...")
def inspect_model(path: str, sha256: str) -> dict[str, Any]:
    """Model summary from a worker, cached by content hash (sha256 is the cache key)."""
    scratch = runs_dir() / "uploads" / "inspect" / sha256[:16]
    return inspect(Path(path), scratch, WorkerLimits(timeout_s=300))


@st.cache_data(max_entries=32, show_spinner="Checking the data...")
def check_data(model_summary_key: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
               paths: dict[str, str | None], label_column: str, stamp: str, scratch: str) -> dict[str, Any]:
    """The data report (shapes, labels, split, per tensor) for the given files, as the run will see them;
    ``stamp`` (the selection's fingerprint) only keys the cache, so a new upload under the same name is
    checked again."""
    return prepare_data(Path(scratch), [TensorInfo.from_dict(t) for t in inputs],
                        [TensorInfo.from_dict(t) for t in outputs], label_column=label_column,
                        **{k: Path(v) if v else None for k, v in paths.items()})


def check_inputs(choice: state.Selection) -> state.InputCheck:
    """Inspect the model and check the data of a selection, once per session and selection: the verdict is kept
    in the session (a refused input stays refused on every page) and computed through the cached look-ups."""
    known = state.input_check(choice)
    if known is not None:
        return known
    summary = report = None
    try:
        if not choice.model.is_file():
            raise InputRejected(f"{choice.model.name}: the file is no longer on the server; choose it again")
        summary = inspect_model(str(choice.model), file_sha256(choice.model))
        scratch = uploads_dir() / "check"
        report = check_data(summary["sha256"], summary["inputs"], summary["outputs"],
                            choice.data_paths(), choice.label_column, choice.fingerprint(), str(scratch))
        check = state.InputCheck(summary, report)
    except OptimizerError as exc:
        check = state.InputCheck(summary, report, user_message(exc))
        if choice.uploaded and summary is None:  # the model itself is refused: nothing can make it pass
            _discard_uploads([choice.model, *choice.data_files()])
            state.set_selection(replace(choice, refused=check))
            return check
    state.set_input_check(choice, check)
    return check


def selection_from_uploads(uploads: dict[str, Any], run_without_data: bool, folder: Path) -> state.Selection:
    """Save the arrived uploads (model, data, labels, calib, eval_data) as the next selection. A missing data
    file is never taken for "no data": running on synthetic inputs needs ``run_without_data``."""
    if uploads.get("model") is None:
        raise InputRejected("no model file has arrived yet: choose one and wait until its upload finishes")
    data_files = [name for name in ("data", "calib", "eval_data") if uploads.get(name) is not None]
    if run_without_data and (data_files or uploads.get("labels") is not None):
        raise InputRejected("'run without data' is ticked, but data files were given: untick it to use them, or "
                            "remove them")
    if not data_files and not run_without_data:  # a labels file alone would be ignored: no data either
        raise InputRejected("no data file has arrived yet: wait until its upload finishes, or tick 'run without "
                            "data'")
    if (uploads.get("calib") is None) != (uploads.get("eval_data") is None):
        raise InputRejected("separate data needs both a calibration file and an evaluation file")
    saved = {name: save_upload(upload, folder) if upload is not None else None for name, upload in uploads.items()}
    return state.Selection(saved["model"], saved.get("data"), saved.get("labels"), saved.get("calib"),
                           saved.get("eval_data"), label="uploaded")


def save_upload(upload: Any, folder: Path) -> Path:
    """Write one uploaded file into this session's folder under its own base name, after a size check."""
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
