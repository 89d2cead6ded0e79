"""Peak memory of a whole run on a ResNet50-size model (keras.applications.ResNet50, weights=None, 25.6 M
parameters): every post-training kind, with calibration and evaluation data, measured as the largest sum of
resident memory over the run's whole process tree (this process and every worker), sampled every 0.2 s.

    .venv/bin/python benchmarks/bench_big_model.py [--samples 32] [--size 224]

Prints one JSON line: peak_rss_bytes (the tree's), each variant's status and size, and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants, now."""
    tree, total, pending = _children(), 0, [root]
    while pending:
        pid = pending.pop()
        pending.extend(tree.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class PeakSampler:
    def __init__(self, interval_s: float = 0.2) -> None:
        self.peak, self.interval_s = 0, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(os.getpid()))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=32, help="calibration + evaluation samples in all")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--kinds", default="float32,float16,dynamic_range,int8,int8_io,int16x8")
    args = parser.parse_args()
    import keras

    from optimizer.run.options import RunOptions
    from optimizer.run.pipeline import run_comparison
    from optimizer.variants import VariantSpec

    folder = Path(tempfile.mkdtemp(prefix="bench_big_"))
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None, input_shape=(args.size, args.size, 3), classes=1000)
    parameters = model.count_params()
    model.save(folder / "resnet50.keras")
    del model
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.uniform(0, 255, (args.samples, args.size, args.size, 3)).astype(np.float32),
             y=rng.integers(0, 1000, args.samples))
    started = time.perf_counter()
    with PeakSampler() as sampler:
        result = run_comparison(folder / "resnet50.keras", folder / "run",
                                [VariantSpec(k) for k in args.kinds.split(",")], data=folder / "data.npz",
                                options=RunOptions(warmup_runs=2))
    print(json.dumps({"model": "ResNet50(weights=None)", "parameters": parameters, "input": args.size,
                      "samples": args.samples, "peak_rss_bytes": sampler.peak,
                      "peak_rss_gib": round(sampler.peak / 1024**3, 2),
                      "wall_s": round(time.perf_counter() - started, 1),
                      "variants": {r["variant"]: {"status": r["status"], "size_bytes": r.get("size_bytes"),
                                                  "latency_ms_p50": r.get("latency_ms_p50"),
                                                  "error": (r.get("error") or "")[:160] or None}
                                   for r in result.rows}}))


if __name__ == "__main__":
    main()
