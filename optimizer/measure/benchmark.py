"""Size and latency measurements. The benchmark runs in a worker that imports LiteRT but never TensorFlow.

Latency: interpreter init, first invoke (XNNPACK packs weights then), warm-up, then timed runs reported as
percentiles with the runtime, its version, the thread count and the CPU beside every figure. The steps are
:class:`optimizer.targets.agent.Bench`'s, the same code every target runs; this module keeps the worker task
(the selective search's curve points) and the file sizes.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.errors import ModelRejected
from optimizer.records import BenchmarkPayload

# The protocol itself lives in the standalone agent (it runs on remote targets without this package).
from optimizer.targets.agent import (
    AgentError,
    Bench,
    cpu_name,
    current_rss_bytes,
    latency_stats,
    peak_rss_bytes,
    percentile,
    random_sample,
)

# Re-exported: the names callers have always imported from here.
__all__ = ["benchmark", "benchmark_task", "cpu_name", "current_rss_bytes", "file_sizes", "latency_stats",
           "percentile", "random_sample"]


def file_sizes(path: Path) -> dict[str, int]:
    """Bytes on disk and gzip -9 bytes: pruning and clustering only show in the compressed size."""
    data = path.read_bytes()
    return {"size_bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}


def benchmark(path: Path, samples: Mapping[str, np.ndarray] | None, input_names: list[str] | None = None,
              threads: int = 1, warmup_runs: int = 10, timed_runs: int = 50) -> dict[str, Any]:
    """Time one model in this process with the agent's protocol; call it only in a fresh process so memory
    figures are its own. ``samples`` holds one sample per input, by the model's input names (None: random)."""
    try:
        bench = Bench.load(path, samples, input_names, threads, warmup_runs)
        timings = bench.time(timed_runs)
    except AgentError as exc:
        raise ModelRejected(str(exc)) from None
    return {
        **bench.loaded,
        **latency_stats(timings),
        "latency_runs": timed_runs,
        "timings_ms": timings,
        "memory_peak_bytes": peak_rss_bytes(),
        "cpu": cpu_name(),
        "tensorflow_loaded": "tensorflow" in sys.modules,  # must stay False: TF would distort time and memory
    }


def benchmark_task(payload: dict[str, Any], report: Any) -> dict[str, Any]:
    """Worker task: latency and memory of one variant (see :class:`optimizer.records.BenchmarkPayload`)."""
    job = BenchmarkPayload.from_dict(payload)
    samples = {name: np.load(path, allow_pickle=False, mmap_mode="r")[:1] for name, path in job.samples.items()}
    return benchmark(Path(job.model_path), samples or None, job.input_names, job.threads, job.warmup_runs,
                     job.timed_runs)
