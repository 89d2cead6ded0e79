"""Does our reported median agree with LiteRT's own benchmark tool? (goal: within +-10%)

For float32 and int8 of MobileNetV2 (224x224, weights=None) and a ResNet50 at 96x96 (weights=None), the files
a real run produced are timed, alternately, by

- **ours**: the run's benchmark step itself (:class:`optimizer.run.context.TargetBenchmark` on ``local``: one
  agent per variant, init, first invoke, W warm-up runs, interleaved rounds of 10 runs until >= N runs and the
  precision target or the time cap), 1 thread, XNNPACK on (LiteRT's default resolver), random inputs;
- **LiteRT's tool**: ``python -m ai_edge_litert.tools.benchmark_litert_model --model F --num_threads 1
  --num_runs N --warmup_runs W --result_json OUT``, which (read in the venv, ai-edge-litert 2.3.0) runs the
  same file through ``CompiledModel`` with the CPU accelerator (XNNPACK) and ``CpuOptions(num_threads=1)``,
  random inputs, one warm-up loop then N timed ``run_by_name`` calls, and reports the median rounded to
  0.01 ms.

The two use different LiteRT front ends on the same kernels (Interpreter vs CompiledModel), so a small gap is
expected; a large one would mean our protocol measures something else.

Usage: ``python benchmarks/bench_latency_agreement.py [--repeats 3] [--runs 100] [--warmup 10]
[--models mobilenetv2,resnet50_96] [--out /tmp/latency-agreement]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

from optimizer.run.context import TargetBenchmark  # noqa: E402
from optimizer.run.options import RunOptions  # noqa: E402
from optimizer.targets.base import parse_target  # noqa: E402

SHAPES = {"mobilenetv2": ((224, 224, 3), 1000), "resnet50_96": ((96, 96, 3), 10)}
VARIANTS = ("float32", "int8")


def build(out: Path, name: str) -> None:
    """Child process: the Keras model, random data, and a real run producing its float32 and int8 files."""
    import keras
    import numpy as np

    from optimizer.run.pipeline import run_comparison
    from optimizer.variants import VariantSpec

    keras.utils.set_random_seed(0)
    shape, classes = SHAPES[name]
    factory = keras.applications.MobileNetV2 if name == "mobilenetv2" else keras.applications.ResNet50
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    factory(weights=None, input_shape=shape, classes=classes).save(folder / "model.keras")
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x_calib=rng.uniform(-1, 1, (16, *shape)).astype(np.float32),
             x_eval=rng.uniform(-1, 1, (8, *shape)).astype(np.float32), y_eval=rng.integers(0, classes, 8))
    result = run_comparison(folder / "model.keras", folder / "run", [VariantSpec(v) for v in VARIANTS],
                            data=folder / "data.npz", options=RunOptions(warmup_runs=10, timed_runs=100))
    files = {row["variant"]: str(folder / "run" / row["path"]) for row in result.rows if row["status"] == "ok"}
    reported = {row["variant"]: row.get("latency_ms_p50") for row in result.rows}
    (folder / "files.json").write_text(json.dumps({"files": files, "reported_ms": reported}))


def tool_median(path: Path, runs: int, warmup: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run([sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", "--model", str(path),
                        "--num_threads", "1", "--num_runs", str(runs), "--warmup_runs", str(warmup),
                        "--result_json", str(out)], check=True, capture_output=True)
        return float(json.loads(out.read_text())["latency"]["median_ms"])


def ours(files: dict[str, Path], runs: int, warmup: int, workdir: Path) -> dict[str, dict]:
    options = RunOptions(timed_runs=runs, warmup_runs=warmup, latency_time_cap_s=30)
    measured = TargetBenchmark(parse_target("local"), workdir, options).run(files, None)
    return {name: group for name, group in measured.groups.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--models", default=",".join(SHAPES))
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "latency-agreement")
    parser.add_argument("--build", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(args.out, args.build)
        return
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    reported: dict[tuple[str, str], float] = {}
    for model in args.models.split(","):
        listing = args.out / model / "files.json"
        if not listing.exists():
            subprocess.run([sys.executable, __file__, "--out", str(args.out), "--build", model], check=True)
        built = json.loads(listing.read_text())
        files = {name: Path(path) for name, path in built["files"].items()}
        for repeat in range(args.repeats):
            theirs_first = repeat % 2 == 1  # alternate which side runs first
            if theirs_first:
                tool = {name: tool_median(path, args.runs, args.warmup) for name, path in files.items()}
            mine = ours(files, args.runs, args.warmup, args.out / model / "targets")
            if not theirs_first:
                tool = {name: tool_median(path, args.runs, args.warmup) for name, path in files.items()}
            for name in files:
                entry = results.setdefault((model, name), {"ours": [], "tool": [], "rounds": []})
                entry["ours"].append(mine[name]["latency_ms_p50"])
                entry["rounds"].append(mine[name]["latency_rounds"])
                entry["tool"].append(tool[name])
                reported[(model, name)] = built["reported_ms"].get(name)
    print(f"runs={args.runs} warmup={args.warmup} threads=1 repeats={args.repeats}; load average {os.getloadavg()}")
    print("| model | variant | run's reported p50 (ms) | ours p50 (median, ms) | LiteRT tool p50 (median, ms) "
          "| ours / tool | within +-10% | rounds |")
    print("|---|---|---|---|---|---|---|---|")
    for (model, name), entry in results.items():
        mine_ms, tool_ms = statistics.median(entry["ours"]), statistics.median(entry["tool"])
        ratio = mine_ms / tool_ms
        print(f"| {model} | {name} | {reported[(model, name)]:.2f} | {mine_ms:.2f} | {tool_ms:.2f} | {ratio:.3f} | "
              f"{'yes' if abs(ratio - 1) <= 0.10 else 'no'} | {statistics.median(entry['rounds']):.0f} |")


if __name__ == "__main__":
    main()
