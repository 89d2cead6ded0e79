"""The command line: a thin Typer layer over :mod:`optimizer.run.pipeline`.

Exit codes: 0 when the run completed (failed variants included, each a row with its reason); 2 with a
one-line reason on stderr when the model, data or options are refused and nothing ran.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from optimizer.distributed import cluster_address, run_points
from optimizer.errors import InvalidOption, OptimizerError, user_message
from optimizer.intake.data import check_data_files
from optimizer.intake.model import model_format, source_of
from optimizer.paths import DEFAULT_MODEL, SAMPLE_DATA, default_cache_dir
from optimizer.records import ProgressEvent, Stage
from optimizer.report.recommend import Budget, Priority, Recommendation, recommend_variant
from optimizer.report.results import VariantResult
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import RunInputs, RunResult, inspect, run_comparison
from optimizer.variants import VariantSpec, parse_variant_list

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
TargetOpt = Annotated[list[str] | None, typer.Option(
    "--target", help="Also measure latency and memory on ssh://USER@HOST[:PORT] (repeatable); local always is.")]
SshKeyOpt = Annotated[str | None, typer.Option(help="Private key for the ssh targets (default: ssh-agent and "
                                                    "~/.ssh/id_*); only its path is recorded.")]
TargetPythonOpt = Annotated[str, typer.Option(help="The Python that runs the agent on the ssh targets.")]
TargetSetupOpt = Annotated[bool, typer.Option(
    help="Create a venv on each ssh target (~/.cache/tflite-studio) with this host's ai-edge-litert and numpy, "
         "and measure with it (the target must reach PyPI or its own index).")]
SignatureOpt = Annotated[str | None, typer.Option(help="Signature of a SavedModel or .tflite to use (default: "
                                                       "serving_default, or the only one); inspect lists them.")]
PriorityOpt = Annotated[Priority, typer.Option(help="What the recommendation prefers first (then the others).")]
MaxSizeOpt = Annotated[float | None, typer.Option(help="Budget: largest file size allowed (KB = 1024 bytes).")]
MaxP95Opt = Annotated[float | None, typer.Option(help="Budget: largest p95 latency allowed (ms).")]
MaxDropOpt = Annotated[float | None, typer.Option(help="Budget: largest accuracy drop against float32 (points).")]


CacheDirOpt = Annotated[Path | None, typer.Option(
    help="The variant store: a variant produced before from the same model, data, spec, seed and library versions "
         "is taken from it (default: runs/cache, or $STUDIO_RUNS_DIR/cache; $STUDIO_CACHE=0 turns it off).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Produce every variant anew; store nothing.")]
RemeasureOpt = Annotated[bool, typer.Option(help="Time variants taken from the store again (default: reuse "
                                                 "their stored latency when measured the same way here).")]


RayOpt = Annotated[str | None, typer.Option(
    "--ray", help="Produce the points as tasks on this Ray cluster (ADDRESS, or $STUDIO_RAY_ADDRESS); latency is "
                  "then measured here, for every point alike.")]


def cache_dir_of(cache_dir: Path | None, no_cache: bool) -> str | None:
    if no_cache:
        return None
    chosen = cache_dir or default_cache_dir()
    return str(chosen) if chosen is not None else None


def _default_data(model: Path, *given: Path | None) -> Path | None:
    """A sample model comes with its data: use it when no data was named."""
    if not model.is_file():
        raise FileNotFoundError(model)
    return None if any(given) else SAMPLE_DATA.get(model.resolve())


def _run_data(model: Path, data: Path | None, labels: Path | None, calib: Path | None, eval_data: Path | None,
              no_data: bool) -> Path | None:
    """The data file of a run (the sample's own for the sample model), its headers checked before any worker."""
    sample_data = _default_data(model, calib, eval_data)
    data = None if no_data else data or sample_data
    check_data_files(data, calib, eval_data, labels=labels)  # headers only, before any worker starts
    return data


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
    latency_cap_s: Annotated[float, typer.Option(help="Most seconds of timing rounds per target past the minimum, "
                                                      "while the medians' intervals are wider than +-5%.")] = 20.0,
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
    target: TargetOpt = None, ssh_key: SshKeyOpt = None,
    target_python: TargetPythonOpt = "python3", target_setup: TargetSetupOpt = False,
    priority: PriorityOpt = Priority.SIZE, max_size_kb: MaxSizeOpt = None, max_p95_ms: MaxP95Opt = None,
    max_accuracy_drop: MaxDropOpt = None,
    cache_dir: CacheDirOpt = None, no_cache: NoCacheOpt = False, remeasure: RemeasureOpt = False,
) -> None:
    """Produce every requested variant, measure it, and write the .tflite files and results to --out; then
    recommend the variant to ship within the budget, as the Compare page does."""
    with _refusals_exit_2():
        data = _run_data(model, data, labels, calib, eval_data, no_data)
        training_options = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                            "sparsity": sparsity, "clusters": clusters}
        specs = parse_variant_list(variants, source_of(model_format(model)), training_options)
        options = RunOptions(threads=threads, timed_runs=runs, warmup_runs=warmup, task=task, label_column=label_column,
                             seed=seed, signature=signature, accuracy_output=accuracy_output, targets=target or [],
                             ssh_key=ssh_key, target_python=target_python,
                             cache_dir=cache_dir_of(cache_dir, no_cache), remeasure=remeasure,
                             latency_time_cap_s=latency_cap_s)
        options = _set_up_targets(options, out / "work") if target_setup else options
        result = run_comparison(model, out, specs, data=data, labels=labels, calib=calib, eval_data=eval_data,
                                options=options, on_progress=_print_progress)
        budget = Budget.of(max_size_kb, max_p95_ms, max_accuracy_drop)
    if report:
        from optimizer.report.html import html_report

        (result.out_dir / "report.html").write_text(html_report(result.rows, result.manifest))
    recommendation = recommend_variant([VariantResult.from_row(row) for row in result.rows], budget, priority)
    _print_run(result, output_format, recommendation, budget)


def _print_run(result: RunResult, output_format: OutputFormat, recommendation: Recommendation,
               budget: Budget) -> None:
    """The results in the chosen format: JSON with a ``recommendation`` object, CSV as the bare table, a table
    followed by the recommendation and what was left out."""
    table = result.table()
    if output_format is OutputFormat.JSON:
        saved = json.loads(result.files["json"].read_text())
        typer.echo(json.dumps({**saved, "recommendation": recommendation_json(recommendation, budget)}, indent=2))
    elif output_format is OutputFormat.CSV:
        typer.echo(table.to_csv(index=False), nl=False)
    else:
        groups = [c for c in table.columns if c.endswith((": accuracy", ": mae", ": fidelity_snr_db"))]  # per output
        shown = table[[c for c in SHOWN_COLUMNS + groups if table[c].notna().any() or c in ("variant", "status")]]
        typer.echo(shown.to_string(index=False))
        typer.echo(f"\nWrote {len(table)} rows and the .tflite files to {result.out_dir}")
        typer.echo(f"\nRecommended ({recommendation.priority.value} first): {recommendation.reason}"
                   if recommendation.variant is not None else f"\nNo recommendation. {recommendation.reason}")
        measured = {str(row["variant"]) for row in result.rows if VariantResult.from_row(row).measured}
        left_out = [f"{name}: {why}" for name, why in recommendation.excluded if name in measured]
        if recommendation.variant is not None and left_out:
            typer.echo("Not considered: " + "; ".join(left_out) + ".")


def recommendation_json(recommendation: Recommendation, budget: Budget) -> dict[str, Any]:
    """The recommendation as JSON: the variant (null when none qualifies), the sentence, the priority and
    budget it was chosen by, what was left out and why, and the headline cards."""
    return {"variant": recommendation.name, "reason": recommendation.reason,
            "priority": recommendation.priority.value,
            "budget": {"max_size_bytes": budget.max_size_bytes, "max_latency_ms_p95": budget.max_latency_ms_p95,
                       "max_accuracy_drop": budget.max_accuracy_drop},
            "excluded": [{"variant": name, "why": why} for name, why in recommendation.excluded],
            "cards": [{"label": c.label, "value": c.value, "delta": c.delta, "tone": c.tone}
                      for c in recommendation.cards]}


def _print_progress(event: ProgressEvent) -> None:
    stage = event.stage
    if stage in (Stage.CONVERTING, Stage.EVALUATING, Stage.BENCHMARKING):
        typer.echo(f"  {stage} {event.variant}", err=True)
    elif stage is Stage.TRAINING:
        typer.echo(f"  training {event.variant}: epoch {event.epoch}/{event.epochs}", err=True)
    elif stage in (Stage.INSPECTING, Stage.CHECKING_DATA, Stage.EXPORTING):
        typer.echo(f"  {stage}", err=True)


SWEEP_COLUMNS = ["model", "variant", "status", "size_bytes", "gzip_bytes", "latency_ms_p50", "accuracy", "mae",
                 "accuracy_delta", "accuracy_verdict", "fidelity_snr_db", "weights_zero_fraction",
                 "weights_max_unique", "error"]


@app.command()
def sweep(
    models: Annotated[list[Path] | None, typer.Argument(help="One or more models (or --models a,b).")] = None,
    models_list: Annotated[str | None, typer.Option("--models", help="Comma-separated models.")] = None,
    grid: Annotated[list[str] | None, typer.Option(
        help="KIND:OPTION=V1,V2[:OPTION=...], repeatable: prune:sparsity=0.3,0.5 cluster:clusters=8,16 "
             "qat:epochs=1,2.")] = None,
    variants: Annotated[str, typer.Option(help="Fixed kinds measured beside the grid (float32 always is).")] = "",
    data: DataOpt = None,
    labels: LabelsOpt = None,
    calib: CalibOpt = None,
    eval_data: EvalOpt = None,
    threads: ThreadsOpt = 1,
    runs: Annotated[int, typer.Option(help="Timed runs per variant (at least 50).")] = 50,
    task: Annotated[str | None, typer.Option(help="Override the inferred task (see run --task).")] = None,
    seed: SeedOpt = 0,
    out: Annotated[Path, typer.Option(help="Output folder: one sub-folder per model, plus sweep.csv.")]
    = Path("out-sweep"),
    output_format: Annotated[OutputFormat, typer.Option("--format", help="How to print results.")] = OutputFormat.TABLE,
    cache_dir: CacheDirOpt = None, no_cache: NoCacheOpt = False,
    ray: RayOpt = None,
) -> None:
    """Every point of every --grid (each a variant measured like any other, its parameters in its row) on each
    model; one table with a model column and a column per swept parameter, also written to --out/sweep.csv."""
    from optimizer.sweep import grid_specs, run_sweep, sweep_table, swept_parameters

    with _refusals_exit_2():
        chosen = [*(models or []), *(Path(m.strip()) for m in (models_list or "").split(",") if m.strip())]
        if not chosen or not grid:
            raise InvalidOption("sweep: expected at least one model and one --grid (e.g. --grid "
                                f"prune:sparsity=0.3,0.5); found {len(chosen)} model(s), {len(grid or [])} grid(s)")
        options = RunOptions(threads=threads, timed_runs=runs, task=task, seed=seed,
                             cache_dir=cache_dir_of(cache_dir, no_cache))
        per_model = {}
        for model in chosen:
            fixed = parse_variant_list(variants, source_of(model_format(model))) if variants else []
            per_model[model] = grid_specs(grid, source_of(model_format(model)), fixed)
        model_data = {m: data or _default_data(m, calib, eval_data) for m in chosen}
        for model in chosen:
            check_data_files(model_data[model], calib, eval_data, labels=labels)

        address = cluster_address(ray)

        def run_one(model: Path, folder: Path) -> list[dict[str, Any]]:
            typer.echo(f"{model}: {len(per_model[model])} variant(s) into {folder}", err=True)
            return run_points(RunInputs(model, model_data[model], labels, calib, eval_data), options, address,
                              per_model[model], folder, _print_progress, on_point=_print_point).rows

        table = sweep_table(run_sweep(chosen, out, run_one), swept_parameters(grid))
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "sweep.csv", index=False)
    if output_format is OutputFormat.JSON:
        typer.echo(table.to_json(orient="records", indent=2))
    elif output_format is OutputFormat.CSV:
        typer.echo(table.to_csv(index=False), nl=False)
    else:
        params = [c for c in table.columns if c.startswith("param: ")]
        shown = [c for c in SWEEP_COLUMNS[:2] + params + SWEEP_COLUMNS[2:]
                 if c in table.columns and (table[c].notna().any() or c in ("model", "variant", "status"))]
        typer.echo(table[shown].to_string(index=False))
        typer.echo(f"\nWrote {len(table)} rows to {out / 'sweep.csv'} and each model's files under {out}")


@app.command()
def search(
    model: ModelArg = DEFAULT_MODEL,
    data: DataOpt = None,
    labels: LabelsOpt = None,
    calib: CalibOpt = None,
    eval_data: EvalOpt = None,
    max_size_kb: Annotated[float | None, typer.Option(help="Largest file size allowed (KB = 1024 bytes).")] = None,
    max_p95_ms: Annotated[float | None, typer.Option(help="Largest p95 latency allowed (ms).")] = None,
    max_accuracy_drop: Annotated[float | None, typer.Option(help="Largest accuracy drop allowed (points).")] = None,
    trials: Annotated[int, typer.Option(help="Trials in all (earlier ones in --out count: resuming).")] = 30,
    batch: Annotated[int, typer.Option(help="Proposals measured per run.")] = 4,
    kinds: Annotated[str, typer.Option(help="Comma-separated kinds to search among (default: every one).")] = "",
    training: Annotated[bool, typer.Option(help="Also fine-tuning kinds (QAT, pruning, clustering).")] = False,
    priority: Annotated[str, typer.Option(help="What decides among variants within budget: size, latency or "
                                                "accuracy.")] = "size",
    threads: ThreadsOpt = 1,
    seed: SeedOpt = 0,
    out: Annotated[Path, typer.Option(help="Folder of the study (search.db) and of every batch's files.")]
    = Path("out-search"),
    output_format: Annotated[OutputFormat, typer.Option("--format", help="table or json.")] = OutputFormat.TABLE,
    cache_dir: CacheDirOpt = None, no_cache: NoCacheOpt = False, ray: RayOpt = None,
) -> None:
    """A multi-objective search (Optuna) over kinds and their options for the smallest, fastest, most accurate
    variants within the limits; ends with the Pareto set and the variant to ship, or how close it came."""
    from optimizer.search import SearchRequest, run_search

    with _refusals_exit_2():
        data = data or _default_data(model, calib, eval_data)
        check_data_files(data, calib, eval_data, labels=labels)
        request = SearchRequest(Budget.of(max_size_kb, max_p95_ms, max_accuracy_drop), trials=trials, batch=batch,
                                training=training, seed=seed, priority=priority_of(priority),
                                kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()))
        options = RunOptions(threads=threads, seed=seed, cache_dir=cache_dir_of(cache_dir, no_cache))

        inputs, address = RunInputs(model, data, labels, calib, eval_data), cluster_address(ray)

        def run_batch(specs: list[VariantSpec], folder: Path) -> list[dict[str, Any]]:
            return run_points(inputs, options, address, specs, folder, on_point=_print_point).rows

        result = run_search(request, source_of(model_format(model)), out, run_batch, on_trial=_print_trial)
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps({"trials": result.trials, "pareto": result.pareto,
                               "pareto_within_budget": result.pareto_within_budget,
                               "recommendation": result.recommendation.name,
                               "reason": result.recommendation.reason, "shortfall": result.shortfall},
                              indent=2, default=str))
        return
    import pandas as pd

    typer.echo(pd.DataFrame(result.trials).to_string(index=False))
    within = "within budget" if result.pareto_within_budget else "none within budget; of all measured"
    typer.echo(f"\nPareto set ({within}): {', '.join(result.pareto) or 'none (no trial was measured)'}")
    chosen = result.recommendation.name
    typer.echo(f"Recommended: {chosen}. {result.recommendation.reason}" if chosen
               else f"No variant meets the budget. {result.recommendation.reason}")
    for line in result.shortfall:
        typer.echo(f"  {line}")
    typer.echo(f"The study is stored in {out / 'search.db'}: the same command resumes it.")


def priority_of(text: str) -> Priority:
    try:
        return Priority(text)
    except ValueError:
        raise InvalidOption(f"--priority: expected size, latency or accuracy; found {text!r}") from None


def _print_point(variant: str, node: str) -> None:
    typer.echo(f"  produced {variant} on Ray node {node}", err=True)


def _print_trial(event: dict[str, Any]) -> None:
    from optimizer.search import describe_trial

    typer.echo(f"  {describe_trial(event)}", err=True)


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


def _set_up_targets(options: RunOptions, workdir: Path) -> RunOptions:
    """--target-setup for a run: the venv's Python on every ssh target; one that cannot be set up is named on
    stderr and fails in the run with its reason, as any unready target does."""
    from optimizer.errors import TargetError
    from optimizer.targets.setup import setup_target

    python = options.target_python
    for spec in options.target_specs()[1:]:
        typer.echo(f"  setting up {spec.label}", err=True)
        try:
            python = setup_target(spec, workdir).python
        except TargetError as exc:
            typer.echo(f"  {user_message(exc)}", err=True)
    return replace(options, target_python=python)


targets_app = typer.Typer(no_args_is_help=True, help="Measuring targets: check that one is ready.")
app.add_typer(targets_app, name="targets")


@targets_app.command("check")
def targets_check(
    uri: Annotated[str, typer.Argument(help="ssh://USER@HOST[:PORT], or local.")],
    ssh_key: SshKeyOpt = None,
    target_python: TargetPythonOpt = "python3",
    target_setup: TargetSetupOpt = False,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="table or json.")] = OutputFormat.TABLE,
) -> None:
    """Connect to a target and print what it is (hostname, OS, architecture, CPU, cores, Python, LiteRT) or
    exactly what is missing. Exit code 0 when it can measure, 1 when it cannot."""
    import tempfile

    from optimizer.targets.base import parse_target
    from optimizer.targets.setup import IDENTITY_FIELDS, check_target

    with _refusals_exit_2():
        spec = parse_target(uri, ssh_key, target_python)
    with tempfile.TemporaryDirectory(prefix="targets-check-") as scratch:
        report = check_target(spec, Path(scratch), setup=target_setup)
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"target: {report['target']}")
        for name in IDENTITY_FIELDS:
            if report["identity"] is not None:
                typer.echo(f"{name}: {report['identity'].get(name)}")
        if report["loadavg"]:
            typer.echo(f"loadavg: {' '.join(str(v) for v in report['loadavg'])}")
        typer.echo("ready: yes" if report["ready"] else f"not ready: {report['problem']}")
    raise typer.Exit(code=0 if report["ready"] else 1)


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
