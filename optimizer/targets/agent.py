"""The benchmark agent: a standalone script copied to a target and run there as ``PYTHON -u agent.py``.

It imports only the standard library, numpy and (lazily) ``ai_edge_litert``, never ``optimizer`` or TensorFlow,
so the same file measures on this host and on a board over SSH. It speaks JSON lines: one request per line on
stdin, one reply per line on stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": "<one sentence>"}``);
stderr is free text. One agent process holds one model, so its peak memory is that variant's own.

The measuring protocol (init, first invoke, warm-up, timed runs, peak and model RSS) lives here once:
``optimizer.measure.benchmark`` imports it for the in-process benchmark of the worker task.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import socket
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np

RUNTIME_NAME = "ai_edge_litert"
_SIGNATURE_PREFIX = "serving_default_"


class AgentError(Exception):
    """A request the agent could not serve; its text is the reply's one sentence."""


# -- facts about this host --------------------------------------------------------------------------------
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model", "Hardware")):  # x86; ARM boards name it Model/Hardware
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def current_rss_bytes() -> int:
    """Resident memory now (not the peak): the difference around loading a model is what the model costs."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def litert_version() -> tuple[str | None, str | None]:
    """(version, None) when ai_edge_litert imports, else (None, why not)."""
    try:
        import ai_edge_litert
        from ai_edge_litert import interpreter  # noqa: F401 - the part the agent needs
    except Exception as exc:  # noqa: BLE001 - any import failure means "no runtime here"
        return None, f"{type(exc).__name__}: {exc}"[:300]
    return str(getattr(ai_edge_litert, "__version__", "unknown")), None


def identity() -> dict[str, Any]:
    """What a figure was measured on: host, OS, architecture, CPU, cores, Python, LiteRT and numpy."""
    version, error = litert_version()
    found: dict[str, Any] = {
        "hostname": socket.gethostname(), "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(), "cpu": cpu_name(), "cores": os.cpu_count(),
        "python": platform.python_version(), "litert": version, "numpy": np.__version__,
    }
    if error is not None:
        found["litert_error"] = error
    return found


# -- figures ----------------------------------------------------------------------------------------------
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


def random_sample(detail: dict[str, Any], shape: list[int], rng: np.random.Generator) -> np.ndarray:
    """A stand-in input when there is no data: uniform [0, 1) floats (quantized inputs take real values), 0/1 for
    integer ids (valid for any vocabulary), any byte value for uint8."""
    dtype = np.dtype(detail["dtype"])
    scale = (detail.get("quantization") or (0.0, 0))[0]
    if dtype.kind == "f" or scale:
        return rng.uniform(0, 1, size=shape).astype(np.float32)
    high = 256 if dtype == np.uint8 else 2
    return rng.integers(0, high, size=shape).astype(dtype)


def _to_input_dtype(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float data -> the input tensor's dtype, through its (scale, zero_point) when it is quantized (the same
    rule as optimizer.measure.runtime.quantize_input, which this standalone file cannot import)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype, copy=False)
    scale, zero_point = detail["quantization"]
    if not scale:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    codes: np.ndarray = np.clip(np.rint(x / scale + zero_point), info.min, info.max)
    return codes.astype(dtype)


def _short(name: str) -> str:
    return re.sub(r":\d+$", "", name.removeprefix(_SIGNATURE_PREFIX))


def match_inputs(wanted: list[str], found: list[str]) -> dict[str, str]:
    """{given name: the file's input name}: exact name, then without the converter's ``serving_default_`` and
    ``:0``, then one input on each side (a subset of optimizer.tensors.bind, which stays the reference)."""
    if len(wanted) != len(found):
        raise AgentError(f"expected inputs for {len(found)} tensor(s) {found}; got {len(wanted)}: {wanted}")
    if len(wanted) == 1:
        return {wanted[0]: found[0]}
    by_short = {_short(name): name for name in found}
    bound = {}
    for name in wanted:
        match = name if name in found else by_short.get(_short(name))
        if match is None:
            raise AgentError(f"no input of the model matches {name!r}; the model has {found}")
        bound[name] = match
    return bound


# -- one model ----------------------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def open_interpreter(path: Path, threads: int) -> Any:
    """LiteRT's interpreter with its default resolver (XNNPACK on), allocated; a failure is one sentence."""
    try:
        from ai_edge_litert import interpreter as litert
    except Exception as exc:  # noqa: BLE001 - no runtime on this host
        raise AgentError(f"ai-edge-litert cannot be imported here: {_first_line(exc)}") from None
    try:
        interpreter = litert.Interpreter(model_path=str(path), num_threads=threads,
                                         experimental_op_resolver_type=litert.OpResolverType.AUTO)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise AgentError(f"LiteRT cannot load {path.name}: {_first_line(exc)}") from None
    return interpreter


def _input_details(interpreter: Any) -> dict[str, dict[str, Any]]:
    """The inputs by name: the default signature's names when the file has one, else the graph's."""
    signatures = interpreter.get_signature_list()
    if not signatures:
        return {d["name"]: d for d in interpreter.get_input_details()}
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    return dict(interpreter.get_signature_runner(key).get_input_details())


def set_inputs(interpreter: Any, samples: Mapping[str, np.ndarray] | None, input_names: list[str]) -> None:
    """Set every input once (by name): the given sample of each, or random values without data."""
    inputs = _input_details(interpreter)
    by_index = {d["index"]: d for d in interpreter.get_input_details()}
    names = list(samples) if samples else (input_names or list(inputs))
    bound = match_inputs(names, list(inputs)) if samples else {n: n for n in inputs}
    rng = np.random.default_rng(0)
    for name, file_name in bound.items():
        detail = by_index[inputs[file_name]["index"]]  # the main graph's tensor (subgraph 0)
        shape = [int(d) for d in detail["shape"]]
        sample = np.asarray(samples[name]).reshape(shape) if samples else random_sample(detail, shape, rng)
        interpreter.set_tensor(detail["index"], _to_input_dtype(sample, detail))


class Bench:
    """One loaded model: init, first invoke and warm-up done by :meth:`load`, then any number of timed blocks."""

    def __init__(self, path: Path, interpreter: Any, threads: int, loaded: dict[str, Any]) -> None:
        self.path, self.interpreter, self.threads, self.loaded = path, interpreter, threads, loaded

    @classmethod
    def load(cls, path: Path, samples: Mapping[str, np.ndarray] | None, input_names: list[str] | None = None,
             threads: int = 1, warmup_runs: int = 10) -> Bench:
        rss_before = current_rss_bytes()
        started = time.perf_counter()
        interpreter = open_interpreter(path, threads)
        init_ms = (time.perf_counter() - started) * 1e3
        try:
            set_inputs(interpreter, samples, input_names or [])
            started = time.perf_counter()
            interpreter.invoke()
            first_ms = (time.perf_counter() - started) * 1e3
            for _ in range(warmup_runs):
                interpreter.invoke()
        except (ValueError, RuntimeError) as exc:
            raise AgentError(f"LiteRT cannot run {path.name}: {_first_line(exc)}") from None
        version, _ = litert_version()
        return cls(path, interpreter, threads, {
            "latency_ms_init": init_ms, "latency_ms_first": first_ms, "warmup_runs": warmup_runs,
            "memory_model_bytes": max(0, current_rss_bytes() - rss_before), "runtime": RUNTIME_NAME,
            "runtime_version": version or "unknown", "threads": threads, "xnnpack": True,
            "tensorflow_loaded": "tensorflow" in sys.modules})  # must stay False: TF would distort the figures

    def time(self, runs: int) -> list[float]:
        """``runs`` timed invokes, in milliseconds."""
        invoke, clock = self.interpreter.invoke, time.perf_counter_ns
        timings = []
        for _ in range(runs):
            started = clock()
            invoke()
            timings.append((clock() - started) / 1e6)
        return timings


# -- the JSON-lines loop ------------------------------------------------------------------------------------
def _inside(name: Any) -> Path:
    """A file name in the agent's folder (the cwd); anything with a path in it is refused."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise AgentError(f"expected a plain file name in the agent's folder; got {name!r}")
    path = Path.cwd() / name
    if not path.is_file():
        raise AgentError(f"no file {name!r} in the agent's folder")
    return path


class Agent:
    """The request handlers; ``self.bench`` is the one model this process holds once loaded."""

    def __init__(self) -> None:
        self.bench: Bench | None = None

    def hello(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"identity": identity(), "loadavg": loadavg()}

    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.bench is not None:
            raise AgentError("this agent already holds a model; start a new agent per variant")
        model = _inside(request.get("model"))
        files = request.get("inputs") or {}
        samples = {str(n): np.load(_inside(f), allow_pickle=False) for n, f in files.items()} or None
        self.bench = Bench.load(model, samples, None, int(request.get("threads") or 1),
                                int(request.get("warmup_runs") or 0))
        return dict(self.bench.loaded)

    def _loaded(self) -> Bench:
        if self.bench is None:
            raise AgentError("no model loaded: send load first")
        return self.bench

    def time(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"timings_ms": self._loaded().time(int(request.get("runs") or 1)), "loadavg": loadavg()}

    def memory(self, request: dict[str, Any]) -> dict[str, Any]:
        self._loaded()
        return {"memory_peak_bytes": peak_rss_bytes()}

    def profile(self, request: dict[str, Any]) -> dict[str, Any]:
        bench = self._loaded()
        try:
            import op_profile  # type: ignore[import-not-found, unused-ignore]  # copied beside this file
        except ImportError as exc:
            raise AgentError(f"per-op profiling is not available here: {_first_line(exc)}") from None
        runs = int(request.get("runs") or 10)
        return {"profile": op_profile.profile_ops(str(bench.path), runs=runs, threads=bench.threads)}

    def handle(self, request: Any) -> dict[str, Any]:
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "hello": self.hello, "load": self.load, "time": self.time, "memory": self.memory,
            "profile": self.profile}
        if not isinstance(request, dict) or request.get("cmd") not in handlers:
            wanted = request.get("cmd") if isinstance(request, dict) else request
            return {"ok": False, "error": f"unknown request {wanted!r}; expected one of {sorted(handlers)} or quit"}
        try:
            return {"ok": True, **handlers[request["cmd"]](request)}
        except AgentError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - the agent answers; it never dies on one request
            return {"ok": False, "error": f"{request['cmd']} failed: {type(exc).__name__}: {_first_line(exc)}"}


def _limit_self(argv: list[str]) -> None:
    """``--memory-bytes N``: the agent's own address-space limit (set in the child itself), no core dumps, and
    SIGKILL when its parent dies (Linux), as the local isolated workers have."""
    if "--memory-bytes" in argv:
        limit = int(argv[argv.index("--memory-bytes") + 1])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _private_stdout() -> TextIO:
    """Replies go to a copy of the original stdout; fd 1 then points at stderr, so anything the runtime prints
    cannot corrupt the protocol."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return replies


def main(argv: list[str]) -> int:
    _limit_self(argv)
    replies = _private_stdout()
    agent = Agent()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            reply: dict[str, Any] = {"ok": False, "error": f"expected one JSON object per line: {exc}"}
        else:
            if isinstance(request, dict) and request.get("cmd") == "quit":
                break
            reply = agent.handle(request)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
