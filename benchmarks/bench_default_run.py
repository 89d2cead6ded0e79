"""Wall time of the tool's default run against the plain way, side by side on this machine.

For each model (the sample CNN, and a Keras MobileNetV2 built with ``weights=None``) it alternates, in
fresh processes, ``python -m optimizer run MODEL --data DATA`` (all post-training variants converted,
audited, evaluated and benchmarked) with ``benchmarks/baseline_plain.py MODEL DATA`` (one
``from_keras_model`` per variant, a timing loop in the same process), and prints the ratio of medians.
Both are timed end to end, imports included: what a user waits for.

Usage: ``python benchmarks/bench_default_run.py [--repeats N] [--only cnn|mobilenet]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.measure import cpu_name  # noqa: E402


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def compare(name: str, model: Path, data: Path, repeats: int, scratch: Path) -> tuple[float, float]:
    ours, plain = [], []
    for index in range(repeats):
        out = scratch / f"{name}-{index}"
        ours.append(_timed([sys.executable, "-m", "optimizer", "run", str(model), "--data", str(data),
                            "--out", str(out), "--format", "csv"]))
        plain.append(_timed([sys.executable, str(ROOT / "benchmarks" / "baseline_plain.py"), str(model), str(data)]))
        print(f"  {name} run {index + 1}: tool {ours[-1]:6.1f} s   plain {plain[-1]:6.1f} s", flush=True)
    return statistics.median(ours), statistics.median(plain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["cnn", "mobilenet"])
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; python {sys.version.split()[0]}; repeats {args.repeats}")
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        cases = []
        if args.only in (None, "cnn"):
            cases.append(("sample CNN", ROOT / "sample_models" / "digits_cnn.keras",
                          ROOT / "sample_models" / "digits.npz"))
        if args.only in (None, "mobilenet"):
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_mobilenet.py"), str(scratch)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cases.append(("MobileNetV2", scratch / "mobilenetv2.keras", scratch / "mobilenetv2.npz"))
        results = [(name, *compare(name, model, data, args.repeats, scratch)) for name, model, data in cases]
    print("\n| model | tool (median s) | plain way (median s) | ratio |")
    print("|---|---|---|---|")
    for name, ours, plain in results:
        print(f"| {name} | {ours:.1f} | {plain:.1f} | {ours / plain:.2f}x |")


if __name__ == "__main__":
    main()
