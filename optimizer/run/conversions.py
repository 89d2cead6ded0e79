"""Conversions across workers: which variants are converted, by which worker, and what a crashed worker
leaves undone (retried in fresh workers, one at a time)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from optimizer.errors import OptimizerError, WorkerFailed
from optimizer.records import ProducePayload
from optimizer.run.context import RunContext
from optimizer.run.isolation import Worker
from optimizer.variants import VariantSpec


class Conversions:
    """Tracks which variants are converted across workers; a worker that crashes fails only the variant
    it was on, and whatever it left undone is retried in fresh workers."""

    def __init__(self, context: RunContext, payload: ProducePayload, task: str,
                 on_converted: Callable[[VariantSpec, dict[str, Any]], None]) -> None:
        self.context = context
        self.payload = payload
        self.task = task
        self.on_converted = on_converted
        self.specs: dict[str, VariantSpec] = {}
        self.done: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.workers: list[Worker] = []  # every worker a share ran on, so an aborted run can stop them all

    def _finish(self, spec: VariantSpec, outcome: dict[str, Any]) -> None:
        with self._lock:
            if spec.name in self.done:
                return
            self.done.add(spec.name)
        self.on_converted(spec, outcome)

    def track(self, event: dict[str, Any], current: dict[str, str]) -> None:
        """Handle a worker's converting/converted events (``current`` remembers what it is on)."""
        if event.get("stage") == "converting":
            current["name"] = event["variant"]
        elif event.get("stage") == "converted":
            outcome = event["outcome"]
            self._finish(self.specs[outcome["name"]], outcome)

    def fail_unfinished(self, share: list[VariantSpec], error: OptimizerError, current: dict[str, str]) -> None:
        cancelled = self.context.cancel is not None and self.context.cancel.is_set()
        culprits = [s for s in share if s.name not in self.done]
        if isinstance(error, WorkerFailed) and not cancelled:  # a crash: only the variant it died on
            culprits = [s for s in culprits if s.name == current.get("name")] or culprits[:1]
        for spec in culprits:
            self._finish(spec, {"name": spec.name, "status": "failed",
                                "error": "cancelled" if cancelled else str(error)})

    def run_share(self, worker: Worker, share: list[VariantSpec], export_dir: str | None) -> None:
        self.workers.append(worker)
        self.specs.update({s.name: s for s in share})
        current: dict[str, str] = {}
        worker.send(self.payload.share(share, export_dir).to_dict())

        def on_event(event: dict[str, Any]) -> None:
            self.track(event, current)
            self.context.report(event)

        try:
            worker.wait(on_event)
        except OptimizerError as exc:
            self.fail_unfinished(share, exc, current)

    def abort(self) -> None:
        """Stop every worker a share ran on (a no-op for those that finished)."""
        for worker in list(self.workers):
            worker.abort()

    def start_share(self, worker: Worker, share: list[VariantSpec], export_dir: str | None) -> None:
        if not share:
            worker.abort()
            return
        thread = threading.Thread(target=self.run_share, args=(worker, share, export_dir), name="convert")
        thread.start()
        self._threads.append(thread)

    def finish(self, specs: list[VariantSpec], export_dir: str | None) -> None:
        """Wait for the running shares, then convert what is left in fresh workers, one at a time."""
        self.specs.update({s.name: s for s in specs})
        while True:
            for thread in self._threads:
                thread.join()
            self._threads.clear()
            remaining = [s for s in specs if s.name not in self.done]
            if not remaining:
                return
            kind_task = remaining[0].info.worker_task
            task = self.task if kind_task == "convert" else kind_task
            batch = [s for s in remaining if s.info.worker_task == kind_task]
            worker = Worker(task, workdir=self.context.layout.work_dir, limits=self.context.options.limits,
                            cancel=self.context.cancel)
            self.run_share(worker, batch, export_dir)


