"""A content-addressed store of produced variants, so an identical variant is never produced twice.

A variant's key is the SHA-256 of everything that decides its bytes and its figures: the model file's hash, the
prepared data's hash (calibration, evaluation and label arrays), the spec (kind, name, options), the seed, the
options that change evaluation (task, accuracy output, signature, label column) and the versions of every
library that converts or runs it. An entry holds the ``.tflite``, its recipe, its outputs on the evaluation
inputs and its row; the latency figures in it are reused only when they were measured with the same benchmark
settings on the same machine (else they are measured again). Entries are written to a temporary folder and
renamed into place, so a crash never leaves half an entry, and a corrupt entry is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optimizer.records import RunLayout
    from optimizer.run.options import RunOptions
    from optimizer.run.rows import VariantRow
    from optimizer.variants import VariantSpec

CACHE_FORMAT = 1
# Row fields that a cached row does not carry over: where this run keeps its files, and what finalize
# recomputes against this run's float32.
_RUN_FIELDS = {"path", "recipe_path", "from_cache", "cache_key"}
BENCHMARK_FIELDS_PREFIXES = ("latency_", "memory_", "timings_ms", "round_medians_ms", "targets", "op_profile")


def variant_key(*, model_sha256: str, dataset_sha256: str | None, spec: dict[str, Any], seed: int,
                evaluation: dict[str, Any], versions: dict[str, str]) -> str:
    """The content address of one variant (see the module's docstring for what goes in)."""
    material = {"format": CACHE_FORMAT, "model": model_sha256, "data": dataset_sha256, "spec": spec, "seed": seed,
                "evaluation": evaluation, "versions": versions}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def benchmark_key(settings: dict[str, Any], machine: dict[str, Any]) -> str:
    """What latency figures depend on beyond the file: threads, runs, targets, and the machine they ran on."""
    return hashlib.sha256(json.dumps([settings, machine], sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CachedVariant:
    """One entry: its folder, the stored row and the benchmark settings its latency figures were measured with."""

    folder: Path
    row: dict[str, Any]

    @property
    def tflite(self) -> Path:
        return self.folder / "variant.tflite"

    @property
    def recipe(self) -> Path | None:
        path = self.folder / "recipe.py"
        return path if path.is_file() else None

    @property
    def outputs(self) -> Path | None:
        path = self.folder / "outputs.npz"
        return path if path.is_file() else None

    def conversion_row(self) -> dict[str, Any]:
        """The stored row without the figures that belong to one measurement of latency or to one run."""
        return {k: v for k, v in self.row.items()
                if k not in _RUN_FIELDS and not k.startswith(BENCHMARK_FIELDS_PREFIXES) and k != "benchmark_key"}

    def benchmark_figures(self, wanted_key: str) -> dict[str, Any] | None:
        """The stored latency figures when they were measured with ``wanted_key``'s settings, else None."""
        if self.row.get("benchmark_key") != wanted_key:
            return None
        return {k: v for k, v in self.row.items() if k.startswith(BENCHMARK_FIELDS_PREFIXES)}


class VariantCache:
    """``root/<key[:2]>/<key>/`` per entry; safe for several runs at once (atomic renames, first writer wins)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"cache key: expected 64 hex digits; found {key!r}")
        return self.root / key[:2] / key

    def get(self, key: str) -> CachedVariant | None:
        folder = self._folder(key)
        try:
            row = json.loads((folder / "row.json").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(row, dict) or not (folder / "variant.tflite").is_file():
            return None
        return CachedVariant(folder, row)

    def put(self, key: str, row: dict[str, Any], tflite: Path, recipe: Path | None, outputs: Path | None) -> bool:
        """Store one produced variant; False when another run stored it first (its entry is kept) or the disk
        refused (a cache is an optimisation: a full disk must not fail the run)."""
        folder = self._folder(key)
        if folder.exists():
            return False
        staging: Path | None = None
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-", dir=folder.parent))
            shutil.copyfile(tflite, staging / "variant.tflite")
            for source, name in ((recipe, "recipe.py"), (outputs, "outputs.npz")):
                if source is not None and source.is_file():
                    shutil.copyfile(source, staging / name)
            (staging / "row.json").write_text(json.dumps(row, default=str))
            os.rename(staging, folder)
            return True
        except OSError:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            return False

    def entries(self) -> int:
        return sum(1 for _ in self.root.glob("??/" + "?" * 64)) if self.root.is_dir() else 0


class RunCache:
    """The variant store as one run uses it: the run's keys, restoring hits into the run folder, storing what the
    run produced. Diagnosis kinds are never stored (their analysis points at candidate files of their own run)."""

    def __init__(self, root: Path, model_sha256: str, options: RunOptions) -> None:
        from optimizer.report.results import package_versions

        self.store, self.model_sha256, self.options = VariantCache(root), model_sha256, options
        self.versions = package_versions()
        self.dataset_sha256: str | None = None
        self.hits: dict[str, bool] = {}
        self.latency_reused: list[str] = []

    def _material(self) -> str:
        return hashlib.sha256(json.dumps([CACHE_FORMAT, self.model_sha256, self.options.signature, self.versions],
                                         sort_keys=True).encode()).hexdigest()

    def summary(self) -> dict[str, Any] | None:
        """The model's inspection from an earlier run of the same file (and signature, and versions)."""
        try:
            found = json.loads((self.store.root / "summaries" / f"{self._material()}.json").read_text())
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def put_summary(self, found: dict[str, Any]) -> None:
        folder = self.store.root / "summaries"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            staging = folder / f".{self._material()}.{os.getpid()}"
            staging.write_text(json.dumps(found))
            os.replace(staging, folder / f"{self._material()}.json")
        except OSError:
            pass  # a store that cannot be written only costs speed

    def key(self, spec: VariantSpec) -> str:
        options = self.options
        return variant_key(model_sha256=self.model_sha256, dataset_sha256=self.dataset_sha256, spec=spec.to_dict(),
                           seed=options.seed, versions=self.versions,
                           evaluation={"task": options.task, "accuracy_output": options.accuracy_output,
                                       "signature": options.signature, "label_column": options.label_column,
                                       "eval_fraction": options.eval_fraction})

    def benchmark_key(self) -> str:
        from optimizer.measure.benchmark import cpu_name

        options = self.options
        settings = {"threads": options.threads, "warmup": options.warmup_runs, "runs": options.timed_runs,
                    "precision": options.latency_precision, "cap": options.latency_time_cap_s,
                    "targets": sorted(options.targets), "target_python": options.target_python}
        return benchmark_key(settings, {"cpu": cpu_name(), "host": platform.node(),
                                        "litert": self.versions.get("ai-edge-litert")})

    def restore(self, spec: VariantSpec, row: VariantRow, layout: RunLayout) -> bool:
        """Take ``spec`` from the store into the run folder and its row; False on a miss."""
        key = self.key(spec)
        entry = None if spec.info.worker_task == "diagnose" else self.store.get(key)
        self.hits[spec.name] = entry is not None
        if entry is None:
            return False
        layout.variants_dir.mkdir(parents=True, exist_ok=True)
        tflite = layout.variants_dir / f"{spec.name}.tflite"
        shutil.copyfile(entry.tflite, tflite)
        figures = {**entry.conversion_row(), "path": layout.relative(tflite), "from_cache": True, "cache_key": key,
                   "recipe_path": None}
        if entry.recipe is not None:
            shutil.copyfile(entry.recipe, tflite.with_suffix(".py"))
            figures["recipe_path"] = layout.relative(tflite.with_suffix(".py"))
        if entry.outputs is not None:
            layout.outputs_of(spec.name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(entry.outputs, layout.outputs_of(spec.name))
        latency = None if self.options.remeasure else entry.benchmark_figures(self.benchmark_key())
        if latency:
            figures.update(latency)
            self.latency_reused.append(spec.name)
        row.restore(figures)
        return True

    def store_rows(self, rows: list[dict[str, Any]], specs: dict[str, VariantSpec], layout: RunLayout) -> None:
        """Put every ok variant this run produced into the store (with its key in its row)."""
        measured_with = self.benchmark_key() if self.options.measure_latency else None
        for row in rows:
            spec = specs.get(str(row.get("variant")))
            if spec is None or row.get("status") != "ok" or not row.get("path") or row.get("from_cache") \
                    or spec.info.worker_task == "diagnose":
                continue
            row["cache_key"] = self.key(spec)
            recipe = row.get("recipe_path")
            self.store.put(row["cache_key"], {**row, "benchmark_key": measured_with}, layout.root / row["path"],
                           layout.root / recipe if recipe else None, layout.outputs_of(spec.name))

    def manifest(self) -> dict[str, Any]:
        return {"dir": str(self.store.root), "hits": dict(self.hits), "latency_from_cache": list(self.latency_reused),
                "remeasure": self.options.remeasure}
