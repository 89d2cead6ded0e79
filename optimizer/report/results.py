"""Results as tidy rows (unit-suffixed columns, a ``status`` and an ``error`` per variant) plus a manifest.

Saved side by side as ``results.csv``, ``results.json`` and ``manifest.json`` in the run folder. A stored run
is read back through :class:`StoredRun`, a typed read-only view of its variants and files, which the app's
pages draw from.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import math
import platform
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from optimizer.errors import InvalidOption

if TYPE_CHECKING:  # only the type: the report modules stay out of the runner processes that save results
    from optimizer.report.recommend import Budget

COLUMNS = [
    "variant", "kind", "label", "status", "error",
    "size_bytes", "gzip_bytes", "size_ratio", "conversion_s",
    "latency_ms_p50", "latency_ms_p95", "latency_ms_min", "latency_ms_mean", "latency_ms_std",
    "latency_ms_init", "latency_ms_first", "latency_runs", "memory_peak_bytes", "memory_model_bytes",
    "latency_ms_p50_ci_low", "latency_ms_p50_ci_high", "latency_verdict",
    "latency_rounds", "latency_half_width_pct", "latency_round_cv", "latency_resolution_pct",
    "metric", "accuracy", "mae", "accuracy_delta", "accuracy_delta_ci_low", "accuracy_delta_ci_high",
    "mcnemar_p", "accuracy_verdict", "flips",
    "fidelity_top1_agreement", "fidelity_rmse", "fidelity_snr_db", "fidelity_inputs",
    "weights_zero_fraction", "weights_max_unique", "training_s", "epochs", "float_layers", "search_met_budget",
    "integer_only", "expected_integer_only", "float_compute_ops", "input_dtypes", "output_dtypes", "op_counts",
    "runtime", "runtime_version", "threads", "cpu", "path", "recipe_path", "warnings",
]
# Kept in JSON only: long lists that do not belong in a flat table.
JSON_ONLY = {"timings_ms", "per_class_accuracy", "audit", "weight_stats", "training", "flips_by_class",
             "flip_indices", "analysis", "per_output", "options", "targets", "op_profile", "round_medians_ms",
             "identity"}
LIST_COLUMNS = {"float_compute_ops", "input_dtypes", "output_dtypes", "warnings"}
# A model with several outputs gets a column group per output: "<output>: <figure>".
PER_OUTPUT_FIGURES = ["accuracy", "top5_accuracy", "exact_match", "mae", "rmse", "accuracy_delta", "mae_delta",
                      "mcnemar_p", "accuracy_verdict", "flips", "fidelity_top1_agreement", "fidelity_rmse",
                      "fidelity_snr_db"]


def per_output_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """``{"<output>: <figure>": one value per row}`` for models with several outputs (empty for one output)."""
    outputs: list[str] = []
    for row in rows:
        for name in row.get("per_output") or {}:
            if name not in outputs:
                outputs.append(name)
    if len(outputs) < 2:
        return {}
    columns: dict[str, list[Any]] = {}
    for output in outputs:
        for figure in PER_OUTPUT_FIGURES:
            values = [((row.get("per_output") or {}).get(output) or {}).get(figure) for row in rows]
            if any(v is not None for v in values):
                columns[f"{output}: {figure}"] = values
    return columns
# Every target beyond local gets a column group too: "<user@host:port>: <figure>" (local's are the main columns).
PER_TARGET_FIGURES = {"latency_ms_p50": "p50 ms", "latency_ms_p95": "p95 ms", "latency_ms_p50_ci_low": "p50 ci low ms",
                      "latency_ms_p50_ci_high": "p50 ci high ms", "latency_verdict": "latency verdict",
                      "latency_resolution_pct": "resolution %", "latency_rounds": "rounds",
                      "latency_ms_first": "first invoke ms", "memory_peak_bytes": "peak memory bytes",
                      "memory_model_bytes": "model memory bytes", "error": "error"}


def per_target_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """``{"<target>: <figure>": one value per row}`` for every target other than local (empty without any)."""
    labels: list[str] = []
    for row in rows:
        for label in row.get("targets") or {}:
            if label != "local" and label not in labels:
                labels.append(label)
    columns: dict[str, list[Any]] = {}
    for label in labels:
        for figure, title in PER_TARGET_FIGURES.items():
            values = [((row.get("targets") or {}).get(label) or {}).get(figure) for row in rows]
            if any(v is not None for v in values):
                columns[f"{label}: {title}"] = values
    return columns


TRACKED_PACKAGES = ["tensorflow", "tf-keras", "keras", "tensorflow-model-optimization", "ai-edge-litert",
                    "ai-edge-quantizer", "numpy", "pandas", "streamlit", "plotly"]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> DataFrame with the known columns first; lists shown as comma-joined text, dicts as JSON."""
    frame = pd.DataFrame([{k: v for k, v in row.items() if k not in JSON_ONLY} for row in rows])
    for column, values in {**per_output_columns(rows), **per_target_columns(rows)}.items():
        frame[column] = values
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    for column in LIST_COLUMNS & set(frame.columns):
        frame[column] = frame[column].map(lambda v: ", ".join(v) if isinstance(v, list) else v)
    if "op_counts" in frame.columns:
        frame["op_counts"] = frame["op_counts"].map(
            lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v)
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[COLUMNS + extra]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def save_results(rows: list[dict[str, Any]], manifest: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "results.csv", "json": out_dir / "results.json",
             "manifest": out_dir / "manifest.json"}
    to_frame(rows).to_csv(paths["csv"], index=False)
    paths["json"].write_text(json.dumps(_json_safe({"manifest": manifest, "rows": rows}), indent=2, default=str))
    paths["manifest"].write_text(json.dumps(_json_safe(manifest), indent=2, default=str))
    return paths


# --- A typed, read-only view of one stored run (what the Compare and History pages draw from) -------------

# The results table of the app: these columns, in this order, when at least one variant has a value
# (``error`` always, so a failed variant shows why).
TABLE_COLUMNS = ["variant", "status", "size_bytes", "gzip_bytes", "size_ratio", "latency_ms_p50", "latency_ms_p95",
                 "latency_verdict", "memory_model_bytes", "memory_peak_bytes", "accuracy", "mae", "accuracy_delta",
                 "accuracy_delta_ci_low", "accuracy_delta_ci_high", "mcnemar_p", "accuracy_verdict", "flips",
                 "fidelity_top1_agreement", "fidelity_snr_db", "integer_only", "weights_zero_fraction",
                 "weights_max_unique", "conversion_s", "training_s", "warnings", "error"]
ALWAYS_SHOWN = {"error"}
# "Is the difference real?": each variant against float32 on the same samples.
SIGNIFICANCE_COLUMNS = ["variant", "accuracy_delta", "accuracy_delta_ci_low", "accuracy_delta_ci_high", "mcnemar_p",
                        "accuracy_verdict", "flips", "latency_ms_p50", "latency_ms_p50_ci_low",
                        "latency_ms_p50_ci_high", "latency_verdict"]
NO_REASON = "no reason recorded"
REFERENCE_KIND = "float32"


def _float(value: Any) -> float | None:
    """A stored number as a float (inf kept, NaN and non-numbers as None); JSON may hold 'inf' as text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None and math.isfinite(number) and number == int(number) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class VariantResult:
    """One variant's row of a stored run, with the fields the pages use typed (missing or NaN values are None).
    ``raw`` is the row exactly as stored (every column, the JSON-only ones included)."""

    name: str
    kind: str
    label: str
    status: str
    error: str
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    size_ratio: float | None = None
    conversion_s: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    latency_ms_p50_ci_low: float | None = None  # 95% interval of the median (order statistics)
    latency_ms_p50_ci_high: float | None = None
    latency_verdict: str | None = None  # against float32: "faster", "slower" or "same"
    memory_peak_bytes: int | None = None
    memory_model_bytes: int | None = None
    metric: str | None = None
    accuracy: float | None = None
    mae: float | None = None
    accuracy_delta: float | None = None
    accuracy_delta_ci_low: float | None = None  # paired bootstrap 95% interval of accuracy_delta
    accuracy_delta_ci_high: float | None = None
    accuracy_verdict: str | None = None  # against float32: "within noise" or "significant" (McNemar)
    mcnemar_p: float | None = None
    flips: int | None = None
    fidelity_top1_agreement: float | None = None
    fidelity_snr_db: float | None = None
    integer_only: bool | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    threads: int | None = None
    path: str | None = None
    recipe_path: str | None = None
    flip_indices: tuple[int, ...] = ()
    flips_by_class: dict[str, Any] | None = None
    per_class_accuracy: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    analysis: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    per_output: dict[str, Any] | None = None  # each output's figures, by output name
    headline_output: str | None = None  # the output whose figures are this row's accuracy, mae, fidelity
    warnings: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> VariantResult:
        """The typed view of one result row (as written by the pipeline and kept in the run store)."""
        if not isinstance(row, dict) or not row.get("variant"):
            raise InvalidOption(f"result row: expected a dict with a 'variant' name; found {row!r:.80}")
        integer_only = row.get("integer_only")
        return cls(
            name=str(row["variant"]), kind=str(row.get("kind") or ""), label=str(row.get("label") or ""),
            status=str(row.get("status") or ""), error=str(row.get("error") or ""),
            size_bytes=_int(row.get("size_bytes")), gzip_bytes=_int(row.get("gzip_bytes")),
            size_ratio=_float(row.get("size_ratio")), conversion_s=_float(row.get("conversion_s")),
            latency_ms_p50=_float(row.get("latency_ms_p50")), latency_ms_p95=_float(row.get("latency_ms_p95")),
            latency_ms_p50_ci_low=_float(row.get("latency_ms_p50_ci_low")),
            latency_ms_p50_ci_high=_float(row.get("latency_ms_p50_ci_high")),
            latency_verdict=_text(row.get("latency_verdict")),
            memory_peak_bytes=_int(row.get("memory_peak_bytes")),
            memory_model_bytes=_int(row.get("memory_model_bytes")),
            metric=_text(row.get("metric")), accuracy=_float(row.get("accuracy")), mae=_float(row.get("mae")),
            accuracy_delta=_float(row.get("accuracy_delta")), accuracy_verdict=_text(row.get("accuracy_verdict")),
            accuracy_delta_ci_low=_float(row.get("accuracy_delta_ci_low")),
            accuracy_delta_ci_high=_float(row.get("accuracy_delta_ci_high")),
            mcnemar_p=_float(row.get("mcnemar_p")), flips=_int(row.get("flips")),
            fidelity_top1_agreement=_float(row.get("fidelity_top1_agreement")),
            fidelity_snr_db=_float(row.get("fidelity_snr_db")),
            integer_only=integer_only if isinstance(integer_only, bool) else None,
            runtime=_text(row.get("runtime")), runtime_version=_text(row.get("runtime_version")),
            threads=_int(row.get("threads")), path=_text(row.get("path")), recipe_path=_text(row.get("recipe_path")),
            flip_indices=tuple(int(i) for i in row.get("flip_indices") or ()),
            flips_by_class=_dict(row.get("flips_by_class")), per_class_accuracy=_dict(row.get("per_class_accuracy")),
            audit=_dict(row.get("audit")), analysis=_dict(row.get("analysis")), training=_dict(row.get("training")),
            per_output=_dict(row.get("per_output")), headline_output=_text(row.get("headline_output")),
            warnings=tuple(str(w) for w in row.get("warnings") or () if isinstance(row.get("warnings"), list)),
            raw=dict(row))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def measured(self) -> bool:
        """Produced and benchmarked: status ok with a latency (what the trade-off charts plot)."""
        return self.ok and self.latency_ms_p50 is not None

    @property
    def failed_reason(self) -> str | None:
        """Why this variant did not come out (None when it did)."""
        return None if self.ok else self.error or NO_REASON


def reference_of(variants: Sequence[VariantResult]) -> VariantResult | None:
    """The float32 variant every other is compared with, when it came out ok."""
    return next((v for v in variants if v.kind == REFERENCE_KIND and v.ok), None)


@dataclass(frozen=True)
class Failure:
    """A variant that did not come out, and why: from a result row, or from the live progress of a run that
    ended before it wrote any rows."""

    variant: str
    status: str
    error: str

    @property
    def reason(self) -> str:
        return self.error or NO_REASON


@dataclass(frozen=True)
class RunEnvironment:
    """Where the latencies of a run were measured, recorded beside them, and what data it used."""

    runtime: str
    runtime_version: str
    threads: int
    cpu: str
    data_source: str

    def describe(self) -> str:
        """'cpu · runtime version · N thread(s) · data: source', the line shown above the results."""
        runtime = f"{self.runtime} {self.runtime_version}" if self.runtime else ""
        return f"{self.cpu} · {runtime} · {self.threads} thread(s) · data: {self.data_source}"


def _inside(job_dir: Path, stored: str | None) -> Path | None:
    """The file a row names, when it exists inside the run folder (a path outside it, by '..', an absolute
    path or a symlink, is refused: None)."""
    if not stored:
        return None
    root = job_dir.resolve()
    try:
        path = (root / stored).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return path if path.is_relative_to(root) and path.is_file() else None


def _progress_failures(progress: dict[str, Any] | None) -> tuple[Failure, ...]:
    variants = (progress or {}).get("variants") or {}
    return tuple(Failure(str(name), str(entry.get("stage") or ""), str(entry.get("error") or ""))
                 for name, entry in variants.items()
                 if isinstance(entry, dict) and (entry.get("error") or entry.get("stage") == "failed"))


def has_results(record: dict[str, Any]) -> bool:
    """At least one variant of a stored run was produced and measured (what the comparison needs), checked
    on the rows alone: no files are read (History asks this of every stored run)."""
    return any(isinstance(row, dict) and row.get("variant") and VariantResult.from_row(row).measured
               for row in record.get("rows") or [])


@dataclass(frozen=True)
class StoredRun:
    """A read-only view of one stored run (a record of ``RunStore.get``) and its folder: typed variants, the
    float32 reference, the frame the charts use (built once), the results table, and the run's files."""

    id: str
    status: str
    error: str
    model_name: str
    job_dir: Path
    manifest: dict[str, Any]
    variants: tuple[VariantResult, ...]
    failures: tuple[Failure, ...] = ()
    inputs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    updated_at: float | None = None
    tflite_files: dict[str, Path] = field(default_factory=dict, repr=False)
    recipe_files: dict[str, Path] = field(default_factory=dict, repr=False)
    _frame: pd.DataFrame = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_frame", to_frame(self.rows))

    @classmethod
    def from_record(cls, record: dict[str, Any], job_dir: Path) -> StoredRun:
        """The view of ``record`` (a run store record: id, status, error, model_name, rows, manifest, ...)
        whose files are in ``job_dir``; only files inside ``job_dir`` are ever named."""
        if not isinstance(record, dict) or not record.get("id"):
            raise InvalidOption(f"run record: expected a dict with an 'id'; found {record!r:.80}")
        variants = tuple(VariantResult.from_row(row) for row in record.get("rows") or [])
        failures = tuple(Failure(v.name, v.status, v.error) for v in variants if not v.ok) if variants \
            else _progress_failures(record.get("progress"))
        tflite_files = {v.name: p for v in variants if (p := _inside(job_dir, v.path)) is not None}
        recipe_files = {v.name: p for v in variants if (p := _inside(job_dir, v.recipe_path)) is not None}
        return cls(id=str(record["id"]), status=str(record.get("status") or ""), error=str(record.get("error") or ""),
                   model_name=str(record.get("model_name") or ""), job_dir=job_dir,
                   manifest=dict(record.get("manifest") or {}), variants=variants, failures=failures,
                   inputs=dict(record.get("inputs") or {}), options=dict(record.get("options") or {}),
                   updated_at=_float(record.get("updated_at")), tflite_files=tflite_files, recipe_files=recipe_files)

    # The variants, by what the pages ask of them.
    @property
    def rows(self) -> list[dict[str, Any]]:
        """The result rows as stored (for the chart builders, the HTML report and the JSON download)."""
        return [v.raw for v in self.variants]

    def variant(self, name: str) -> VariantResult:
        for result in self.variants:
            if result.name == name:
                return result
        raise InvalidOption(f"variant: run {self.id} has no variant {name!r}")

    @property
    def reference(self) -> VariantResult | None:
        """The float32 variant every other is compared with, when it came out ok."""
        return reference_of(self.variants)

    @property
    def measured(self) -> tuple[VariantResult, ...]:
        return tuple(v for v in self.variants if v.measured)

    @property
    def has_results(self) -> bool:
        return bool(self.measured)

    @property
    def failed(self) -> tuple[VariantResult, ...]:
        return tuple(v for v in self.variants if not v.ok)

    @property
    def finished(self) -> bool:
        return self.status == "done"

    @property
    def produced(self) -> tuple[VariantResult, ...]:
        """Variants whose .tflite file is in the run folder (what can be downloaded)."""
        return tuple(v for v in self.variants if v.name in self.tflite_files)

    @property
    def with_recipe(self) -> tuple[VariantResult, ...]:
        return tuple(v for v in self.variants if v.name in self.recipe_files)

    def tflite_path(self, variant: VariantResult | str) -> Path | None:
        """The variant's .tflite inside the run folder; None when it is absent or named outside the folder."""
        return self.tflite_files.get(variant if isinstance(variant, str) else variant.name)

    def recipe_path(self, variant: VariantResult | str) -> Path | None:
        """The variant's recipe (``variants/<name>.py``) inside the run folder, or None."""
        return self.recipe_files.get(variant if isinstance(variant, str) else variant.name)

    # What the run was measured on.
    @property
    def environment(self) -> RunEnvironment:
        with_runtime = next((v for v in self.variants if v.runtime), None)
        return RunEnvironment(
            runtime=(with_runtime.runtime or "") if with_runtime else "",
            runtime_version=(with_runtime.runtime_version or "") if with_runtime else "",
            threads=_int(self.manifest.get("threads")) or 1, cpu=str(self.manifest.get("cpu") or ""),
            data_source=str((self.manifest.get("data") or {}).get("source") or ""))

    @property
    def class_names(self) -> list[str] | None:
        names = (self.manifest.get("data") or {}).get("class_names")
        return [str(n) for n in names] if isinstance(names, list) else None

    @property
    def versions(self) -> dict[str, Any] | None:
        return self.manifest.get("versions")

    # Tables.
    def frame(self) -> pd.DataFrame:
        """Every row as a DataFrame (``to_frame``), built once: the charts' input. Do not modify it."""
        return self._frame

    def table(self, budget: Budget | None = None) -> pd.DataFrame:
        """The results table: TABLE_COLUMNS that hold a value (``error`` always); with a budget, a
        ``within_budget`` column second (a variant that did not come out is never within budget)."""
        frame = self._frame
        groups = [c for c in frame.columns if ": " in c and c.split(": ", 1)[1] in PER_OUTPUT_FIGURES]
        known = TABLE_COLUMNS[:TABLE_COLUMNS.index("integer_only")] + groups + TABLE_COLUMNS[
            TABLE_COLUMNS.index("integer_only"):]
        columns = [c for c in known if c in frame.columns and (c in ALWAYS_SHOWN or frame[c].notna().any())]
        table = frame[columns].copy()
        if budget is not None:
            table.insert(1, "within_budget", budget.passes(frame).where(frame["status"] == "ok", False).values)
        return table

    def human_table(self, budget: Budget | None = None, extra: Sequence[str] = ()) -> pd.DataFrame:
        """The results table for people (``optimizer.report.tables.human_table``): units in the titles, the
        quality figure next to the variant, failures with their reason, ``extra`` columns as asked."""
        from optimizer.report.tables import human_table

        return human_table(self.rows, budget, extra)

    def extra_columns(self) -> dict[str, str]:
        """The columns a user can add to :meth:`human_table`, key -> title."""
        from optimizer.report.tables import extra_columns

        return extra_columns(self.rows)

    def significance_table(self) -> pd.DataFrame:
        """'Is the difference real?': accuracy and latency of each variant against float32, with intervals."""
        return self._frame[[c for c in SIGNIFICANCE_COLUMNS if c in self._frame.columns]].copy()

    def csv_text(self) -> str:
        return str(self._frame.to_csv(index=False))

    def json_text(self) -> str:
        """The run as results.json holds it: manifest plus rows."""
        return json.dumps(_json_safe({"manifest": self.manifest, "rows": self.rows}), indent=2, default=str)

    def manifest_text(self) -> str:
        """The run's manifest as manifest.json holds it."""
        return json.dumps(_json_safe(self.manifest), indent=2, default=str)

    def bundle(self, report_html: str | None = None) -> bytes:
        """Everything a run produced, as one zip built in memory, under a folder named after the run: each
        variant's ``.tflite`` and recipe, ``results.csv``, ``results.json``, ``manifest.json`` and ``report.html``.
        Only files inside the run folder are read; a results file the folder lacks is written from this view,
        and ``report_html`` (the HTML report as the page draws it) replaces the folder's ``report.html``."""
        root = self.job_dir.resolve()
        generated = {"results.csv": self.csv_text, "results.json": self.json_text, "manifest.json": self.manifest_text}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in dict.fromkeys([*self.tflite_files.values(), *self.recipe_files.values()]):
                archive.write(path, f"{self.id}/{path.relative_to(root).as_posix()}")
            for name, text in generated.items():
                stored = _inside(self.job_dir, name)
                archive.writestr(f"{self.id}/{name}", stored.read_bytes() if stored else text())
            stored_report = _inside(self.job_dir, "report.html")
            if report_html is not None:
                archive.writestr(f"{self.id}/report.html", report_html)
            elif stored_report is not None:
                archive.writestr(f"{self.id}/report.html", stored_report.read_bytes())
        return buffer.getvalue()


def combined_frame(runs: dict[str, StoredRun]) -> pd.DataFrame:
    """The frames of several runs in one, each variant named '<prefix>:<variant>' (History's side-by-side chart)."""
    if not runs:
        raise InvalidOption("runs: expected at least one run to combine")
    return pd.concat([run.frame().assign(variant=prefix + ":" + run.frame()["variant"].astype(str))
                      for prefix, run in runs.items()], ignore_index=True)
