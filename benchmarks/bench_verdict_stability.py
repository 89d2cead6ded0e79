"""Are the latency verdicts stable, and does the resolution say when they cannot be? With and without a
CPU-burning neighbour (``python -c "while True: pass"``), several repeats of the run's benchmark step.

The files come from one real run (the sample CNN's six post-training variants by default; ``--model
mobilenetv2`` uses MobileNetV2's float32/float16/dynamic-range/int8, built once). Each repeat runs the
benchmark step itself (:class:`optimizer.run.context.TargetBenchmark` on ``local``: interleaved rounds until
every median is within +-5% and 5% differences can be resolved, or the time cap) and the verdicts against
float32 exactly as finalize computes them (:func:`optimizer.measure.stats.compare_latency` with the rounds'
intervals and the target's resolution). A stable setup gives the same verdicts every repeat; with the
neighbour, a verdict may turn "unresolved", but should never flip between "faster" and "slower".

Usage: ``python benchmarks/bench_verdict_stability.py [--repeats 3] [--model cnn|mobilenetv2] [--cap 60]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

from optimizer.measure.stats import compare_latency  # noqa: E402
from optimizer.run.context import TargetBenchmark  # noqa: E402
from optimizer.run.options import RunOptions  # noqa: E402
from optimizer.targets.base import parse_target  # noqa: E402

SETS = {"cnn": ["float32", "float16", "dynamic_range", "int8", "int8_io", "int16x8"],
        "mobilenetv2": ["float32", "float16", "dynamic_range", "int8"]}


def build(out: Path, model: str) -> None:
    """Child process: one real run that produces the files (TensorFlow stays out of the measuring process)."""
    from optimizer.run.pipeline import run_comparison
    from optimizer.variants import VariantSpec

    if model == "cnn":
        source, data = ROOT / "sample_models" / "digits_cnn.keras", ROOT / "sample_models" / "digits.npz"
    else:
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_mobilenet.py"), str(out)], check=True)
        source, data = out / "mobilenetv2.keras", out / "mobilenetv2.npz"
    result = run_comparison(source, out / "run", [VariantSpec(v) for v in SETS[model]], data=data,
                            options=RunOptions(warmup_runs=2))
    files = {row["variant"]: str(out / "run" / row["path"]) for row in result.rows if row["status"] == "ok"}
    (out / "files.json").write_text(json.dumps(files))


@contextlib.contextmanager
def neighbour(burn: bool) -> Iterator[None]:
    if not burn:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(2)  # let the load average notice it
        yield
    finally:
        process.kill()
        process.wait()


def verdicts(groups: dict[str, dict]) -> dict[str, str | None]:
    reference = groups.get("float32") or {}
    found: dict[str, str | None] = {}
    for name, group in groups.items():
        if name == "float32" or group.get("error") or not reference.get("timings_ms"):
            continue
        found[name] = compare_latency(
            reference["timings_ms"], group["timings_ms"],
            reference_interval=(reference["latency_ms_p50_ci_low"], reference["latency_ms_p50_ci_high"]),
            variant_interval=(group["latency_ms_p50_ci_low"], group["latency_ms_p50_ci_high"]),
            resolution_pct=group["latency_resolution_pct"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=sorted(SETS), default="cnn")
    parser.add_argument("--cap", type=float, default=60.0, help="latency_time_cap_s per repeat")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = args.out or Path(tempfile.gettempdir()) / f"verdict-stability-{args.model}"
    if args.build:
        build(out, args.model)
        return
    if not (out / "files.json").exists():
        subprocess.run([sys.executable, __file__, "--model", args.model, "--out", str(out), "--build"], check=True)
    files = {name: Path(path) for name, path in json.loads((out / "files.json").read_text()).items()}
    options = RunOptions(timed_runs=50, warmup_runs=10, latency_time_cap_s=args.cap)
    names = [n for n in files if n != "float32"]
    print(f"model={args.model} cap={args.cap:.0f}s repeats={args.repeats}")
    print("| neighbour | repeat | load before | rounds | s | precision met | resolution % | "
          + " | ".join(names) + " |")
    print("|---|---|---|---|---|---|---|" + "---|" * len(names))
    for burn in (False, True):
        for repeat in range(args.repeats):
            with neighbour(burn):
                started = time.monotonic()
                measured = TargetBenchmark(parse_target("local"), out / "targets", options).run(files, None)
                seconds = time.monotonic() - started
            entry, found = measured.entry, verdicts(measured.groups)
            resolution = entry.get("resolution_pct")
            print(f"| {'burner' if burn else 'none'} | {repeat + 1} | {(entry.get('loadavg_before') or ['?'])[0]} | "
                  f"{entry.get('rounds')} | {seconds:.1f} | {entry.get('precision_met')} | "
                  f"{resolution:.1f} | " + " | ".join(str(found.get(n)) for n in names) + " |", flush=True)


if __name__ == "__main__":
    main()
