"""Child-process entry point: ``python -m optimizer.run.worker TASK EVENT_FD MEMORY_BYTES``.

Sets its own resource limits first, reads the JSON payload from stdin, runs the task and writes JSON lines
(progress, then one result or error) to the event pipe. Tasks are imported lazily, so a benchmark child
never imports TensorFlow.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import traceback
from typing import Any

TASKS: dict[str, str] = {
    "inspect": "optimizer.intake.model:inspect_task",
    "prepare": "optimizer.produce.convert:prepare_task",
    "convert": "optimizer.produce.convert:convert_task",
    "convert_tflite": "optimizer.produce.convert:convert_task",  # float .tflite uploads: no TensorFlow preloaded
    "train": "optimizer.produce.training:train_task",
    "diagnose": "optimizer.produce.diagnose:diagnose_task",
    "evaluate": "optimizer.measure.evaluate:evaluate_task",
    "benchmark": "optimizer.measure.benchmark:benchmark_task",
}
# Imported before the payload is read, so a worker started early is ready when its job arrives.
PRELOAD: dict[str, list[str]] = {
    "prepare": ["tensorflow", "keras"],
    "convert": ["tensorflow", "keras"],
    "train": ["tensorflow", "keras", "tf_keras", "tensorflow_model_optimization"],
    "diagnose": ["tensorflow", "keras"],
    "evaluate": ["optimizer.measure.runtime"],  # LiteRT only; never TensorFlow
    "benchmark": ["optimizer.measure.runtime"],
}


# How an allocation refused by RLIMIT_AS surfaces when it is not a clean MemoryError.
MEMORY_MARKERS = ("failed to map segment", "Cannot allocate memory", "bad_alloc", "MemoryError")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return (f"{type(exc).__name__}: {first}" if first else type(exc).__name__)[:600]


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the process that started us dies, so no orphan keeps computing."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    task, event_fd, memory_bytes = argv[0], int(argv[1]), int(argv[2])
    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    events = open(event_fd, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the process

    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps(event, default=str) + "\n")
        events.flush()

    def report(progress: dict[str, Any]) -> None:
        emit({"type": "progress", "pid": os.getpid(), **progress})

    from optimizer.errors import OptimizerError

    try:
        if task not in TASKS:
            raise OptimizerError(f"unknown worker task {task!r}; expected one of {', '.join(TASKS)}")
        module_name, function_name = TASKS[task].split(":")
        function = getattr(importlib.import_module(module_name), function_name)
        for name in PRELOAD.get(task, []):
            importlib.import_module(name)
        emit({"type": "ready"})  # imports done: a worker started ahead of its job now waits on stdin
        payload = json.loads(sys.stdin.readline() or "{}")
        result = function(payload, report)
        emit({"type": "result", "value": result})
        return 0
    except OptimizerError as exc:
        emit({"type": "error", "error_class": type(exc).__name__, "message": str(exc)})
        return 0
    except Exception as exc:  # noqa: BLE001 - any runtime failure becomes the job's error, never a crash
        traceback.print_exc()
        message = _short(exc)
        if isinstance(exc, MemoryError) or any(marker in str(exc) for marker in MEMORY_MARKERS):
            message = f"the {task} worker ran out of memory (limit {memory_bytes / 1024**3:.1f} GiB)"
        emit({"type": "error", "error_class": "WorkerFailed", "message": message})
        return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Everything is written and reported by now; TensorFlow's interpreter teardown takes about 1 s, which
    # the caller would wait for (it reads the event pipe to its end), so leave without it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
