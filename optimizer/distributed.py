"""Sweeps and searches on a Ray cluster: each point is produced and evaluated as a Ray task on whichever node
has a free CPU, in the same isolated worker processes with the same limits as a local run; the results come
back into the driver's variant store, and latency is then measured on one machine (this one, or the run's
targets) by an ordinary local run, so every latency of a sweep is comparable. Rows record the Ray node that
produced them (``produced_on``).

A task lost with its node is retried by Ray (``RETRIES`` times) on another node; a point that still fails is a
failed row with the reason, and every completed point is kept (it is in the variant store). Ray is imported
only here, only when an address is given: the app and a local run never load it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from optimizer.errors import InvalidOption, OptimizerError
from optimizer.run.cache import VariantCache
from optimizer.run.context import ProgressCallback
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import RunInputs, RunResult, run_comparison
from optimizer.variants import VariantKind, VariantSpec

RAY_ADDRESS_VARIABLE = "STUDIO_RAY_ADDRESS"
RETRIES = 2  # Ray re-runs a task whose worker or node died this many times, on any live node


def _files(inputs: RunInputs) -> dict[str, Path]:
    """The run's files by role (model, data, labels, calib, eval_data), those given."""
    return {role: path for role, path in vars(inputs).items() if path is not None}


@dataclass
class ClusterOutcome:
    """Which points the cluster produced (by variant name: the Ray node id) and which failed, with why."""

    produced_on: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def connect(address: str) -> Any:
    """``ray.init`` on an existing cluster; the project's code goes with every task (``py_modules``)."""
    try:
        import ray
    except ImportError:
        raise InvalidOption("--ray: Ray is not installed in this environment; run `pip install ray==2.60.0` "
                            "(it is in requirements.txt)") from None
    import optimizer

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, ignore_reinit_error=True,
                 runtime_env={"py_modules": [str(Path(optimizer.__file__).parent)]})
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InvalidOption(f"--ray {address}: cannot connect to a Ray cluster there: {exc}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str) -> Iterator[Any]:
    """Ray connected for the duration, its messages kept off stdout (a raylet's death is printed by Ray's
    threads and its core writes to fd 1: either would corrupt the CSV or JSON a command prints afterwards)."""
    sys.stdout.flush()
    saved_fd, saved_stream = os.dup(1), sys.stdout
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        ray = connect(address)
        try:
            yield ray
        finally:
            ray.shutdown()
    finally:
        sys.stderr.flush()
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        sys.stdout = saved_stream


def _produce_point(files: dict[str, Any], names: dict[str, str], spec: dict[str, Any],
                   options: dict[str, Any]) -> dict[str, Any]:
    """A Ray task: produce and evaluate one variant (float32 beside it as the reference) in a scratch folder on
    this node, store it in a scratch variant store, and return that entry's files and the node id."""
    import ray

    from optimizer.run.pipeline import run_comparison

    with tempfile.TemporaryDirectory(prefix="studio-ray-") as scratch:
        folder = Path(scratch)
        paths = {}
        for role, content in files.items():  # object refs inside a dict are not resolved by Ray: get them here
            paths[role] = folder / "input" / names[role]
            paths[role].parent.mkdir(parents=True, exist_ok=True)
            paths[role].write_bytes(ray.get(content) if isinstance(content, ray.ObjectRef) else content)
        run_options = replace(RunOptions.from_dict(options), cache_dir=str(folder / "cache"), measure_latency=False)
        wanted = VariantSpec.from_dict(spec)
        specs = [wanted] if wanted.kind is VariantKind.FLOAT32 else [VariantSpec(VariantKind.FLOAT32), wanted]
        result = run_comparison(paths["model"], folder / "run", specs, data=paths.get("data"),
                                labels=paths.get("labels"), calib=paths.get("calib"), eval_data=paths.get("eval_data"),
                                options=run_options)
        row = next(r for r in result.rows if r["variant"] == wanted.name)
        entry = {"row": row, "node": ray.get_runtime_context().get_node_id()}
        cached = VariantCache(folder / "cache").get(str(row.get("cache_key") or "0" * 64))
        if row.get("status") == "ok" and cached is not None:
            entry["files"] = {p.name: p.read_bytes() for p in cached.folder.iterdir() if p.is_file()}
        return entry


def produce_on_cluster(address: str, inputs: RunInputs, specs: Sequence[VariantSpec], options: RunOptions,
                       cache: VariantCache, on_point: Callable[[str, str], None] = lambda name, node: None,
                       ) -> ClusterOutcome:
    """Produce every spec as one Ray task and put each result in ``cache``; float32 too (the reference every
    point's fidelity was measured against, produced on each node the same way: its key is the same)."""
    with ray_session(address) as ray:
        return _produce_all(ray, inputs, specs, options, cache, on_point)


def _produce_all(ray: Any, inputs: RunInputs, specs: Sequence[VariantSpec], options: RunOptions, cache: VariantCache,
                 on_point: Callable[[str, str], None]) -> ClusterOutcome:
    task = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(_produce_point)
    files = {role: ray.put(path.read_bytes()) for role, path in _files(inputs).items()}
    names = {role: path.name for role, path in _files(inputs).items()}
    pending = {task.remote(files, names, spec.to_dict(), options.to_dict()): spec.name for spec in specs}
    outcome = ClusterOutcome()
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        name = pending.pop(done[0])
        try:
            entry = ray.get(done[0])
        except Exception as exc:  # noqa: BLE001 - a lost node, a dead worker, an error in the task: this point only
            outcome.failed[name] = _why(exc)
            continue
        row = entry["row"]
        if row.get("status") != "ok" or "files" not in entry:
            outcome.failed[name] = str(row.get("error") or "not produced")
            continue
        _store(cache, row, entry["files"], entry["node"])
        outcome.produced_on[name] = entry["node"]
        on_point(name, entry["node"])
    return outcome


def _store(cache: VariantCache, row: dict[str, Any], files: dict[str, bytes], node: str) -> None:
    """One entry from a node into the driver's store, with the node that produced it in its row."""
    with tempfile.TemporaryDirectory(prefix="studio-entry-") as scratch:
        folder = Path(scratch)
        for name, content in files.items():
            (folder / name).write_bytes(content)
        stored = {**row, "produced_on": node}
        cache.put(str(row["cache_key"]), stored, folder / "variant.tflite",
                  folder / "recipe.py" if "recipe.py" in files else None,
                  folder / "outputs.npz" if "outputs.npz" in files else None)


def _why(exc: BaseException) -> str:
    """A Ray failure in one line: the error inside the task (RayTaskError's cause), or which kind of loss (node
    died, worker crashed) after the retries; no terminal colour codes."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, OptimizerError):
        return str(cause)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"[:500]
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    first = next((line for line in lines if line), "")
    return f"{type(exc).__name__} after {RETRIES} retries: {first}"[:500]


def run_on_cluster(address: str, inputs: RunInputs, specs: Sequence[VariantSpec], options: RunOptions, folder: Path,
                   on_point: Callable[[str, str], None] = lambda name, node: None,
                   on_progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> RunResult:
    """A sweep's or a search's points: produced on the cluster, then one local run that takes each from the
    store and times them all here, interleaved; a point the cluster could not produce is a failed row."""
    if options.cache_dir is None:
        raise InvalidOption("Ray: the points come back through the variant store, which is off (--no-cache or "
                            "STUDIO_CACHE=0); turn it on")
    outcome = produce_on_cluster(address, inputs, specs, options, VariantCache(Path(options.cache_dir)), on_point)
    kept = [spec for spec in specs if spec.name not in outcome.failed]
    result = run_comparison(inputs.model, folder, kept, data=inputs.data, labels=inputs.labels, calib=inputs.calib,
                            eval_data=inputs.eval_data, options=options, on_progress=on_progress,
                            cancel=cancel) if kept else RunResult([], {}, folder)
    failed = [{"variant": spec.name, "kind": str(spec.kind), "label": spec.info.label, "status": "failed",
               "error": f"on the Ray cluster: {outcome.failed[spec.name]}", "options": dict(spec.options)}
              for spec in specs if spec.name in outcome.failed]
    return replace(result, rows=result.rows + failed, manifest={**result.manifest, "ray": {
        "address": address, "produced_on": outcome.produced_on, "failed": outcome.failed}})


def run_points(inputs: RunInputs, options: RunOptions, address: str | None, specs: list[VariantSpec], folder: Path,
               on_progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
               on_point: Callable[[str, str], None] = lambda name, node: None) -> RunResult:
    """Some points of a sweep or search (or an app run): on the Ray cluster at ``address`` (latency timed here),
    or all here when there is no address."""
    if address is not None:
        return run_on_cluster(address, inputs, specs, options, folder, on_point, on_progress, cancel)
    return run_comparison(inputs.model, folder, specs, data=inputs.data, labels=inputs.labels, calib=inputs.calib,
                          eval_data=inputs.eval_data, options=options, on_progress=on_progress, cancel=cancel)


def cluster_address(given: str | None) -> str | None:
    """The --ray address, else $STUDIO_RAY_ADDRESS, else None (everything runs here)."""
    return given or os.environ.get(RAY_ADDRESS_VARIABLE) or None
