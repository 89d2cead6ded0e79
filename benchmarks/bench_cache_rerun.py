"""An identical re-run against the first run, with the variant store (issue 13: <= 5% of the first run's time).

For each repeat: a fresh, empty store; ``python -m optimizer run MODEL --data DATA --cache-dir STORE`` (the
first run: every variant produced, evaluated and timed), then the same command again (every variant from the
store, latency included, as the default says: ``--remeasure`` measures it again), then once more with
``--remeasure``. Each is a fresh process, imports included: what a user waits for. Prints the medians and the
ratios, and checks from the second run's manifest that every row came from the store.

Usage: ``python benchmarks/bench_cache_rerun.py [--repeats N] [--model M --data D]`` (default: the demo sample).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_default_run import _timed  # noqa: E402  (one way to time a CLI run: a fresh process, end to end)

from optimizer.measure.benchmark import cpu_name  # noqa: E402
from optimizer.paths import DEFAULT_DATA, DEFAULT_MODEL  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    first, again, remeasured = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as scratch:
            store, out = Path(scratch) / "store", Path(scratch) / "out"
            command = [sys.executable, "-m", "optimizer", "run", str(args.model), "--data", str(args.data),
                       "--out", str(out), "--cache-dir", str(store)]
            first.append(_timed(command))
            again.append(_timed(command))
            manifest = json.loads((out / "manifest.json").read_text())
            assert all(manifest["cache"]["hits"].values()), manifest["cache"]
            remeasured.append(_timed([*command, "--remeasure"]))
    median = statistics.median
    print(f"machine: {cpu_name()}; model {args.model.name}; {args.repeats} repeats (medians)")
    print(f"first run           {median(first):7.2f} s")
    print(f"identical re-run    {median(again):7.2f} s  = {median(again) / median(first):.1%} of the first")
    print(f"re-run, remeasured  {median(remeasured):7.2f} s  = {median(remeasured) / median(first):.1%} of the first")


if __name__ == "__main__":
    main()
