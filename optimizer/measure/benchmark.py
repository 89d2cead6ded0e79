"""Size and latency measurements. The benchmark runs in a worker that imports LiteRT but never TensorFlow.

Latency: interpreter init, first invoke (XNNPACK packs weights then), warm-up, then timed runs reported as
percentiles with the runtime, its version, the thread count and the CPU beside every figure.
"""

from __future__ import annotations

import gzip
import platform
import resource
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.records import BenchmarkPayload
from optimizer.tensors import bind


def file_sizes(path: Path) -> dict[str, int]:
    """Bytes on disk and gzip -9 bytes: pruning and clustering only show in the compressed size."""
    data = path.read_bytes()
    return {"size_bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def latency_stats(timings_ms: list[float]) -> dict[str, float]:
    return {
        "latency_ms_p50": statistics.median(timings_ms),
        "latency_ms_p95": percentile(timings_ms, 95),
        "latency_ms_min": min(timings_ms),
        "latency_ms_mean": statistics.fmean(timings_ms),
        "latency_ms_std": statistics.pstdev(timings_ms),
    }


def current_rss_bytes() -> int:
    """Resident memory now (not the peak): the difference around loading a model is what the model costs."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def random_sample(detail: dict[str, Any], shape: list[int], rng: np.random.Generator) -> np.ndarray:
    """A stand-in input when there is no data: uniform [0, 1) floats (quantized inputs take real values), 0/1 for
    integer ids (valid for any vocabulary), any byte value for uint8."""
    dtype = np.dtype(detail["dtype"])
    scale = (detail.get("quantization") or (0.0, 0))[0]
    if dtype.kind == "f" or scale:
        return rng.uniform(0, 1, size=shape).astype(np.float32)
    high = 256 if dtype == np.uint8 else 2
    return rng.integers(0, high, size=shape).astype(dtype)


def _set_inputs(interpreter: Any, samples: Mapping[str, np.ndarray] | None, input_names: list[str]) -> None:
    """Set every input once (by name): the first evaluation sample of each, or random values without data."""
    from optimizer.measure.runtime import ModelIO, quantize_input

    model_io = ModelIO.open(interpreter)
    by_index = {d["index"]: d for d in interpreter.get_input_details()}
    names = input_names or list(model_io.inputs)
    bound = bind(names, list(model_io.inputs), "inputs")
    rng = np.random.default_rng(0)
    for name in names:
        detail = by_index[model_io.inputs[bound[name]]["index"]]  # the main graph's tensor (subgraph 0)
        shape = [int(d) for d in detail["shape"]]
        sample = samples[name].reshape(shape) if samples else random_sample(detail, shape, rng)
        interpreter.set_tensor(detail["index"], quantize_input(sample, detail))


def benchmark(path: Path, samples: Mapping[str, np.ndarray] | None, input_names: list[str] | None = None,
              threads: int = 1, warmup_runs: int = 10, timed_runs: int = 50) -> dict[str, Any]:
    """Time one model in this process; call it only in a fresh process so memory figures are its own.
    ``samples`` holds one sample per input, by the model's input names (None: random inputs)."""
    from optimizer.measure.runtime import RUNTIME_NAME, load_interpreter, runtime_version

    rss_before = current_rss_bytes()
    started = time.perf_counter()
    interpreter = load_interpreter(path, threads)
    init_ms = (time.perf_counter() - started) * 1e3
    _set_inputs(interpreter, samples, input_names or [])
    started = time.perf_counter()
    interpreter.invoke()
    first_ms = (time.perf_counter() - started) * 1e3
    for _ in range(warmup_runs):
        interpreter.invoke()
    timings = []
    for _ in range(timed_runs):
        started = time.perf_counter_ns()
        interpreter.invoke()
        timings.append((time.perf_counter_ns() - started) / 1e6)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_after = current_rss_bytes()
    return {
        "latency_ms_init": init_ms,
        "latency_ms_first": first_ms,
        **latency_stats(timings),
        "latency_runs": timed_runs,
        "warmup_runs": warmup_runs,
        "timings_ms": timings,
        "memory_peak_bytes": peak_kib * 1024,
        "memory_model_bytes": max(0, rss_after - rss_before),
        "runtime": RUNTIME_NAME,
        "runtime_version": runtime_version(),
        "threads": threads,
        "xnnpack": True,
        "cpu": cpu_name(),
        "tensorflow_loaded": "tensorflow" in sys.modules,  # must stay False: TF would distort time and memory
    }


def benchmark_task(payload: dict[str, Any], report: Any) -> dict[str, Any]:
    """Worker task: latency and memory of one variant (see :class:`optimizer.records.BenchmarkPayload`)."""
    job = BenchmarkPayload.from_dict(payload)
    samples = {name: np.load(path, allow_pickle=False, mmap_mode="r")[:1] for name, path in job.samples.items()}
    return benchmark(Path(job.model_path), samples or None, job.input_names, job.threads, job.warmup_runs,
                     job.timed_runs)
