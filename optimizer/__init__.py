"""TFLite Optimization Studio's UI-free core. Importing it never imports TensorFlow or Streamlit.

The chain, one subpackage per stage: ``intake`` (safe model and data intake) -> ``produce`` (conversion,
training, diagnosis, recipes) -> ``measure`` (LiteRT runtime, accuracy, latency, statistics) -> ``run`` (the
run plan, its steps, the worker processes) -> ``jobs`` (store, runner, scheduler) -> ``report`` (tables,
charts, HTML). The public API below is what the app, the command line and scripts use:

- :func:`inspect_model` (path, workdir) -> model summary dict. Raises ModelRejected for a refused file,
  WorkerFailed when the worker crashed or ran out of memory or time.
- :func:`run_comparison` (model, out_dir, specs, data=..., options=...) -> :class:`RunResult` (rows, manifest,
  files). Raises ModelRejected / DataRejected / InvalidOption before anything ran; a variant that fails later
  is a row with ``status`` and ``error``, never an exception.
- :class:`RunOptions`, :class:`VariantSpec`, :data:`KINDS` (the kind registry), :func:`parse_variant_list`.
- :func:`submit` a :class:`JobRequest` to a :class:`RunStore` (returns the run id; raises InvalidOption or
  StoreUnavailable), run by a :class:`Scheduler`.
- :func:`user_message` turns any :class:`OptimizerError` into the one sentence a user sees.

Names load on first use (PEP 562), so ``import optimizer`` stays cheap for worker processes.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "inspect_model": ("optimizer.run.pipeline", "inspect"),
    "run_comparison": ("optimizer.run.pipeline", "run_comparison"),
    "RunResult": ("optimizer.run.pipeline", "RunResult"),
    "RunOptions": ("optimizer.run.options", "RunOptions"),
    "RunPlan": ("optimizer.run.plan", "RunPlan"),
    "plan_run": ("optimizer.run.plan", "plan_run"),
    "KINDS": ("optimizer.variants", "KINDS"),
    "KindInfo": ("optimizer.variants", "KindInfo"),
    "ConverterSettings": ("optimizer.variants", "ConverterSettings"),
    "VariantKind": ("optimizer.variants", "VariantKind"),
    "VariantSpec": ("optimizer.variants", "VariantSpec"),
    "parse_variant_list": ("optimizer.variants", "parse_variant_list"),
    "register_kind": ("optimizer.variants", "register_kind"),
    "Stage": ("optimizer.records", "Stage"),
    "ProgressEvent": ("optimizer.records", "ProgressEvent"),
    "RunLayout": ("optimizer.records", "RunLayout"),
    "JobRequest": ("optimizer.jobs.runner", "JobRequest"),
    "submit": ("optimizer.jobs.runner", "submit"),
    "Scheduler": ("optimizer.jobs.scheduler", "Scheduler"),
    "RunStore": ("optimizer.jobs.store", "RunStore"),
    "OptimizerError": ("optimizer.errors", "OptimizerError"),
    "user_message": ("optimizer.errors", "user_message"),
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'optimizer' has no attribute {name!r}")
    module, attribute = _API[name]
    return getattr(importlib.import_module(module), attribute)
