"""The command line: a thin Typer layer over :mod:`optimizer.run.pipeline`.

Exit codes: 0 when the run completed (failed variants included, each a row with its reason); 2 with a
one-line reason on stderr when the model, data or options are refused and nothing ran.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from optimizer.errors import OptimizerError, user_message
from optimizer.intake.data import check_data_files
from optimizer.intake.model import model_format, source_of
from optimizer.paths import DEFAULT_DATA, DEFAULT_MODEL
from optimizer.records import ProgressEvent, Stage
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import inspect, run_comparison
from optimizer.variants import parse_variant_list

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="TFLite Optimization Studio: produce and compare TensorFlow Lite variants.")

SHOWN_COLUMNS = ["variant", "status", "size_bytes", "gzip_bytes", "latency_ms_p50", "latency_ms_p95",
                 "accuracy", "mae", "fidelity_top1_agreement", "fidelity_snr_db", "integer_only",
                 "weights_zero_fraction", "weights_max_unique", "training_s", "error"]


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


ModelArg = Annotated[Path, typer.Argument(help="Model: .keras, .h5, SavedModel .zip or float .tflite.")]
DataOpt = Annotated[Path | None, typer.Option(help=".npz, .npy, .csv or image .zip; split deterministically.")]
LabelsOpt = Annotated[Path | None, typer.Option(help="Labels .npy when --data is an inputs .npy.")]
CalibOpt = Annotated[Path | None, typer.Option(help="Separate calibration data (with --eval).")]
EvalOpt = Annotated[Path | None, typer.Option("--eval", help="Separate evaluation data (with --calib).")]
ThreadsOpt = Annotated[int, typer.Option(help="LiteRT threads for latency and evaluation.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the data split and of fine-tuning.")]
SignatureOpt = Annotated[str | None, typer.Option(help="Signature of a SavedModel or .tflite to use (default: "
                                                       "serving_default, or the only one); inspect lists them.")]


def _default_data(model: Path, *given: Path | None) -> Path | None:
    """The sample model comes with its data: use it when no data was named."""
    if not model.is_file():
        raise FileNotFoundError(model)
    return DEFAULT_DATA if model == DEFAULT_MODEL and not any(given) else None


@contextlib.contextmanager
def _refusals_exit_2() -> Iterator[None]:
    """A refused model, data or option (or a missing file): one line on stderr, exit code 2, no traceback."""
    try:
        yield
    except OptimizerError as exc:
        typer.echo(user_message(exc), err=True)
        raise typer.Exit(code=2) from None
    except FileNotFoundError as exc:
        typer.echo(f"Input refused: expected a file; found nothing at {exc.args[0]}", err=True)
        raise typer.Exit(code=2) from None


@app.command()
def run(
    model: ModelArg = DEFAULT_MODEL,
    data: DataOpt = None,
    labels: LabelsOpt = None,
    calib: CalibOpt = None,
    eval_data: EvalOpt = None,
    no_data: Annotated[bool, typer.Option("--no-data", help="Run without data (synthetic fidelity inputs).")] = False,
    variants: Annotated[str, typer.Option(help="Comma-separated kinds or aliases (qat, prune50, prune_2x4, "
                                                "cluster16, pqat, cqat, ...), or 'all' post-training kinds.")] = "all",
    threads: ThreadsOpt = 1,
    runs: Annotated[int, typer.Option(help="Timed runs per variant (at least 50).")] = 50,
    warmup: Annotated[int, typer.Option(help="Warm-up runs before timing.")] = 10,
    task: Annotated[str | None, typer.Option(
        help="Override the inferred task: classification, regression or multilabel for every labelled output, "
             "or per output, e.g. 'digit=classification,ink=regression'.")] = None,
    accuracy_output: Annotated[str | None, typer.Option(
        help="The labelled output whose metric is the run's accuracy (default: the first classification one).")]
    = None,
    label_column: Annotated[str, typer.Option(help="CSV label column.")] = "label",
    seed: SeedOpt = 0,
    signature: SignatureOpt = None,
    epochs: Annotated[int | None, typer.Option(help="Fine-tune epochs of training variants (default 4).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Fine-tune batch size (default 32).")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Fine-tune learning rate (default 5e-4).")] = None,
    sparsity: Annotated[float | None, typer.Option(help="Target sparsity of pruning variants (default 0.5).")] = None,
    clusters: Annotated[int | None, typer.Option(help="Clusters per kernel for clustering (default 16).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder for .tflite files and results.")] = Path("out"),
    output_format: Annotated[OutputFormat, typer.Option("--format", help="How to print results.")] = OutputFormat.TABLE,
    report: Annotated[bool, typer.Option(help="Also write report.html (the dashboard's charts, self-contained).")]
    = False,
) -> None:
    """Produce every requested variant, measure it, and write the .tflite files and results to --out."""
    with _refusals_exit_2():
        sample_data = _default_data(model, calib, eval_data)
        data = None if no_data else data or sample_data
        check_data_files(data, calib, eval_data, labels=labels)  # headers only, before any worker starts
        training_options = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                            "sparsity": sparsity, "clusters": clusters}
        specs = parse_variant_list(variants, source_of(model_format(model)), training_options)
        options = RunOptions(threads=threads, timed_runs=runs, warmup_runs=warmup, task=task,
                             label_column=label_column, seed=seed, signature=signature,
                             accuracy_output=accuracy_output)
        result = run_comparison(model, out, specs, data=data, labels=labels, calib=calib, eval_data=eval_data,
                                options=options, on_progress=_print_progress)
    table = result.table()
    if report:
        from optimizer.report.html import html_report

        (result.out_dir / "report.html").write_text(html_report(result.rows, result.manifest))
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps(json.loads(result.files["json"].read_text()), indent=2))
    elif output_format is OutputFormat.CSV:
        typer.echo(table.to_csv(index=False), nl=False)
    else:
        groups = [c for c in table.columns if c.endswith((": accuracy", ": mae", ": fidelity_snr_db"))]  # per output
        shown = table[[c for c in SHOWN_COLUMNS + groups if table[c].notna().any() or c in ("variant", "status")]]
        typer.echo(shown.to_string(index=False))
        typer.echo(f"\nWrote {len(table)} rows and the .tflite files to {result.out_dir}")


def _print_progress(event: ProgressEvent) -> None:
    stage = event.stage
    if stage in (Stage.CONVERTING, Stage.EVALUATING, Stage.BENCHMARKING):
        typer.echo(f"  {stage} {event.variant}", err=True)
    elif stage is Stage.TRAINING:
        typer.echo(f"  training {event.variant}: epoch {event.epoch}/{event.epochs}", err=True)
    elif stage in (Stage.INSPECTING, Stage.CHECKING_DATA, Stage.EXPORTING):
        typer.echo(f"  {stage}", err=True)


STATS_COLUMNS = ["variant", "accuracy", "accuracy_delta", "accuracy_delta_ci_low", "accuracy_delta_ci_high",
                 "mcnemar_p", "accuracy_verdict", "flips", "latency_ms_p50", "latency_ms_p50_ci_low",
                 "latency_ms_p50_ci_high", "latency_verdict"]


@app.command()
def analyze(
    model: ModelArg = DEFAULT_MODEL,
    data: DataOpt = None,
    labels: LabelsOpt = None,
    calib: CalibOpt = None,
    eval_data: EvalOpt = None,
    budget: Annotated[float, typer.Option(help="Accepted accuracy drop against float32, in points.")] = 1.0,
    max_float_layers: Annotated[int, typer.Option(help="Most layers the search may keep float.")] = 8,
    calibration_study: Annotated[bool, typer.Option(help="Also measure int8 accuracy by calibration size.")] = True,
    threads: ThreadsOpt = 1,
    seed: SeedOpt = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out-analysis"),
    output_format: Annotated[OutputFormat, typer.Option("--format", help="table or json.")] = OutputFormat.TABLE,
) -> None:
    """Where int8 loses accuracy (per layer), a selective-int8 variant within --budget, whether each change
    is real (McNemar, bootstrap, latency intervals, flips), and how much calibration data is enough."""
    from optimizer.variants import VariantKind, VariantSpec

    with _refusals_exit_2():
        data = data or _default_data(model, calib, eval_data)
        check_data_files(data, calib, eval_data, labels=labels)
        specs = [VariantSpec(VariantKind.FLOAT32), VariantSpec(VariantKind.INT8),
                 VariantSpec(VariantKind.MIXED_INT8, {"accuracy_budget": budget, "max_float_layers": max_float_layers,
                                                      "calibration_study": calibration_study})]
        result = run_comparison(model, out, specs, data=data, labels=labels, calib=calib, eval_data=eval_data,
                                options=RunOptions(threads=threads, seed=seed), on_progress=_print_progress)
    mixed = next(r for r in result.rows if r["kind"] == VariantKind.MIXED_INT8.value)
    analysis = mixed.get("analysis") or {}
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps({"rows": [{k: v for k, v in r.items() if k != "analysis"} for r in result.rows],
                               "analysis": analysis, "error": mixed.get("error")}, indent=2, default=str))
        return
    import pandas as pd

    table = result.table()
    typer.echo("Accuracy and latency against float32 (is the difference real?)")
    typer.echo(table[[c for c in STATS_COLUMNS if c in table.columns]].to_string(index=False))
    if mixed["status"] != "ok":
        typer.echo(f"\nDiagnosis failed: {mixed.get('error')}")
        return
    layers = pd.DataFrame(analysis["layers"]).sort_values("sensitivity_rank")
    typer.echo("\nPer-layer int8 error, most sensitive first")
    typer.echo(layers[["sensitivity_rank", "graph_order", "op_name", "rmse", "rmse_per_scale", "mean_error",
                       "range", "flagged"]].to_string(index=False))
    curve = pd.DataFrame(analysis["search"]["curve"])
    typer.echo("\nSelective quantization search")
    typer.echo(curve[[c for c in ("float_layers", "accuracy", "accuracy_drop", "size_bytes", "latency_ms_p50")
                      if c in curve.columns]].to_string(index=False))
    chosen = analysis["search"].get("chosen")
    typer.echo(f"Chosen: {len(chosen['layers'])} float layer(s) {chosen['layers']}" if chosen
               else f"Budget not met: {analysis['search'].get('reason')}")
    if analysis.get("calibration_study"):
        typer.echo("\nint8 accuracy by calibration set size")
        study = pd.DataFrame(analysis["calibration_study"])
        typer.echo(study.pivot_table(index="calibration_samples", values="accuracy",
                                     aggfunc=["mean", "min", "max", "count"]).to_string())
    typer.echo(f"\nWrote the variants, results and analysis to {result.out_dir}")


@app.command(name="inspect")
def inspect_command(
    model: Annotated[Path, typer.Argument(help="Model file to summarise.")] = DEFAULT_MODEL,
    out: Annotated[Path, typer.Option(help="Job folder for the worker's scratch files.")] = Path("out"),
    signature: SignatureOpt = None,
) -> None:
    """Print the model summary (inputs, outputs, parameters, layers or ops, its signatures and the one
    summarised) as JSON."""
    with _refusals_exit_2():
        if not model.is_file():
            raise FileNotFoundError(model)
        summary = inspect(model, out / "work", signature=signature)
    typer.echo(json.dumps(summary, indent=2))


def main() -> None:
    app(prog_name="python -m optimizer")
    sys.exit(0)
