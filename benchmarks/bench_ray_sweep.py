"""Sweep wall time here against a two-node local Ray cluster (issue 13).

The same sweep (the small CNN, ``int8:calibration_samples=50,100,200,400`` plus float32: five points) runs with an
empty variant store each time, first on this machine (one point after another inside one run: two conversion
workers), then with ``--ray`` on a cluster this script starts on 127.0.0.1 (`ray start --head` plus one worker
node, one CPU each; see tests/support/ray_cluster.py), whose tasks each produce one point; latency is timed here
in both cases. Both are fresh CLI processes, timed end to end. On one 2-core machine the two "nodes" share the
same two cores, so this measures Ray's overhead, not a speed-up; on real separate machines the production part
divides by the node count.

Usage: ``python benchmarks/bench_ray_sweep.py [--repeats N]``
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

from optimizer.measure.benchmark import cpu_name  # noqa: E402
from optimizer.paths import DIGITS_DATA, DIGITS_MODEL  # noqa: E402
from tests.support.ray_cluster import LocalRayCluster  # noqa: E402

GRID = "int8:calibration_samples=50,100,200,400"


def _timed(extra: list[str], scratch: Path) -> float:
    command = [sys.executable, "-m", "optimizer", "sweep", str(DIGITS_MODEL), "--data", str(DIGITS_DATA), "--grid",
               GRID, "--out", str(scratch / "out"), "--cache-dir", str(scratch / "store"), *extra]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    local, on_ray = [], []
    cluster = LocalRayCluster.start()
    try:
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as scratch:
                local.append(_timed([], Path(scratch)))
            with tempfile.TemporaryDirectory() as scratch:
                on_ray.append(_timed(["--ray", cluster.address], Path(scratch)))
    finally:
        cluster.stop()
    median = statistics.median
    print(f"machine: {cpu_name()}; 5 points; {args.repeats} repeats (medians); all: local {local}, ray {on_ray}")
    print(f"local sweep               {median(local):7.1f} s")
    print(f"2-node local Ray cluster  {median(on_ray):7.1f} s  = {median(on_ray) / median(local):.2f}x the local time")


if __name__ == "__main__":
    main()
