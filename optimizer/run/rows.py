"""One variant's result while a run fills it in.

Several threads write a run's rows (the evaluator threads, the benchmark step, the handler of an unexpected
error), so a row is never a bare dict: each step records what it found through one named method, under the
row's lock, and a failure cannot be overwritten by a later success. Once every thread is done,
:meth:`VariantRow.to_dict` gives the plain row that finalize completes and the store keeps (read back typed
as :class:`optimizer.report.results.VariantResult`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from optimizer.variants import VariantSpec

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


class VariantRow:
    """The row of one variant: name, kind and label from its spec; status and error; then the figures each
    step records (conversion, evaluation, benchmark) and the sentences it warns with."""

    def __init__(self, spec: VariantSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {"variant": spec.name, "kind": str(spec.kind), "label": spec.info.label,
                                      "status": OK, "error": None, "options": dict(spec.options),
                                      "expected_integer_only": spec.info.expect_integer_only}

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def status(self) -> str:
        return str(self._data["status"])

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def path(self) -> str | None:
        """The variant's .tflite, relative to the run folder, once converted."""
        return self._data.get("path")

    @property
    def analysis(self) -> dict[str, Any]:
        return self._data.get("analysis") or {}

    def refuse(self, status: str, reason: str) -> None:
        """Not produced at all: skipped (not applicable) or failed (the inputs do not allow it)."""
        with self._lock:
            self._data.update(status=status, error=reason)

    def fail(self, reason: str) -> None:
        """This variant failed at some step (the first failure's reason is kept)."""
        with self._lock:
            if self._data["status"] == OK:
                self._data.update(status=FAILED, error=reason[:1000])

    def note(self, sentence: str) -> None:
        """A fact that qualifies an ok row (e.g. a false integer-only claim): the status stays, ``error`` says it."""
        with self._lock:
            previous = self._data.get("error")
            self._data["error"] = f"{previous}; {sentence}" if previous else sentence

    def warn(self, sentence: str) -> None:
        with self._lock:
            self._data.setdefault("warnings", []).append(sentence)

    def record_conversion(self, path: str, conversion_s: float | None, sizes: dict[str, int],
                          extra: dict[str, Any], recipe_path: str | None) -> None:
        """What producing it gave: the file, its sizes, the producer's facts (training, analysis) and its recipe."""
        with self._lock:
            self._data.update(path=path, conversion_s=conversion_s, **sizes, **extra, recipe_path=recipe_path)

    def record_evaluation(self, figures: dict[str, Any]) -> None:
        """Accuracy, fidelity, the op audit and weight facts (see RunContext.evaluate)."""
        with self._lock:
            self._data.update(figures)

    def record_benchmark(self, measured: dict[str, Any]) -> None:
        """Latency and memory, with the runtime, its version, the threads and the CPU they were measured on."""
        with self._lock:
            self._data.update(measured)

    def restore(self, figures: dict[str, Any]) -> None:
        """A variant taken from the variant store: its stored figures (file, sizes, evaluation, perhaps latency)."""
        with self._lock:
            self._data.update(figures)

    def to_dict(self) -> dict[str, Any]:
        """The plain row (a copy), for finalize and the store."""
        with self._lock:
            return dict(self._data)

    def file(self, root: Path) -> Path:
        assert self.path is not None, f"variant {self.name} has no file"
        return root / self.path
