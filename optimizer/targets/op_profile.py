"""Per-op time from LiteRT's own profiler, on whatever machine this file runs on.

Standalone on purpose (standard library, numpy and ``ai_edge_litert`` only): the benchmark agent copies it to
remote targets. ``ai_edge_litert`` 2.3.0 exposes no profiler in Python, but the wheel ships LiteRT's C API
(``libLiteRt.so``), whose CompiledModel profiler records every interpreter op and, inside the XNNPACK delegate,
every XNNPACK operator (XNNPACK's own per-operator profiling). We drive that C API through ``ctypes``: the
times are LiteRT's, not ours. The profiler adds a little time per event, so ``invoke_ms`` (the reference the
op times are compared with) is timed with the profiler off, on the classic interpreter with the same file,
threads and XNNPACK, in blocks alternating with the profiled ones.
"""

from __future__ import annotations

import ctypes
import re
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

MECHANISM = "LiteRT CompiledModel profiler (libLiteRt C API), XNNPACK per-operator events"
_OK = 0
_CPU = 1  # kLiteRtHwAcceleratorCpu
_LOCK_WRITE = 1  # kLiteRtTensorBufferLockModeWrite
_OPERATOR_EVENT = 2  # tflite::Profiler::EventType::OPERATOR_INVOKE_EVENT: an interpreter (non-delegated) op
_DELEGATE_EVENTS = (4, 8)  # events XNNPACK records for its own operators (index inside the delegate partition)
_DEFAULT_EVENT = 1
_SIZE = ctypes.c_size_t  # LiteRtParamIndex and counts: pass them 64-bit wide, never as a C int
_SIGNATURE_PREFIX = "serving_default_"


class ProfileError(RuntimeError):
    """LiteRT refused a step of the profiling; the message names the step and the status code."""


class _MemoryUsage(ctypes.Structure):
    _fields_ = [("total", ctypes.c_size_t), ("in_use", ctypes.c_size_t), ("private", ctypes.c_size_t)]


class _Event(ctypes.Structure):
    """litert/c/litert_profiler_event.h: ProfiledEventData (C layout)."""

    _fields_ = [("tag", ctypes.c_char_p), ("event_type", ctypes.c_int), ("start_us", ctypes.c_uint64),
                ("elapsed_us", ctypes.c_uint64), ("begin_mem", _MemoryUsage), ("end_mem", _MemoryUsage),
                ("metadata1", ctypes.c_int64), ("metadata2", ctypes.c_int64), ("source", ctypes.c_int)]


_LIB: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    """The C API library inside the installed ai_edge_litert wheel (loaded once per process)."""
    global _LIB
    if _LIB is None:
        import ai_edge_litert

        _LIB = ctypes.CDLL(str(Path(ai_edge_litert.__file__).parent / "libLiteRt.so"))
    return _LIB


def _check(status: int, step: str) -> None:
    if status != _OK:
        raise ProfileError(f"LiteRT profiling failed at {step}: status {status}")


_NO_DELETE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _payload: None)  # payloads stay owned by Python


class _ProfiledModel:
    """One CompiledModel with profiling on, its input/output buffers and its profiler."""

    def __init__(self, model_path: str, threads: int) -> None:
        lib, vp = _lib(), ctypes.c_void_p
        self._keep: list[Any] = []  # TOML payloads LiteRT reads without copying
        self.env, self.model, options, self.compiled = vp(), vp(), vp(), vp()
        _check(lib.LiteRtCreateEnvironment(0, None, ctypes.byref(self.env)), "environment")
        _check(lib.LiteRtCreateModelFromFile(self.env, model_path.encode(), ctypes.byref(self.model)), "model")
        _check(lib.LiteRtCreateOptions(ctypes.byref(options)), "options")
        _check(lib.LiteRtSetOptionsHardwareAccelerators(options, _CPU), "CPU accelerator")
        self._add_toml(options, b"runtime_options_string", b"enable_profiling = true\n")
        self._add_toml(options, b"xnnpack", f"num_threads = {int(threads)}\n".encode())
        _check(lib.LiteRtCreateCompiledModel(self.env, self.model, options, ctypes.byref(self.compiled)),
               "compile")
        signature = vp()
        _check(lib.LiteRtGetModelSignature(self.model, _SIZE(0), ctypes.byref(signature)), "signature")
        self.inputs = self._buffers(signature, True)
        self.outputs = self._buffers(signature, False)
        self.profiler = vp()
        _check(lib.LiteRtCompiledModelGetProfiler(self.compiled, ctypes.byref(self.profiler)), "profiler")

    def _add_toml(self, options: ctypes.c_void_p, identifier: bytes, toml: bytes) -> None:
        payload = ctypes.create_string_buffer(toml)
        self._keep.append(payload)
        opaque = ctypes.c_void_p()
        _check(_lib().LiteRtCreateOpaqueOptions(identifier, ctypes.cast(payload, ctypes.c_void_p), _NO_DELETE,
                                                ctypes.byref(opaque)), identifier.decode())
        _check(_lib().LiteRtAddOpaqueOptions(options, opaque), identifier.decode())

    def _buffers(self, signature: ctypes.c_void_p, inputs: bool) -> list[tuple[str, ctypes.c_void_p]]:
        """(tensor name, managed buffer) per signature input or output; unknown (-1) dims run as 1."""
        lib = _lib()
        count = ctypes.c_size_t()
        counter = lib.LiteRtGetNumSignatureInputs if inputs else lib.LiteRtGetNumSignatureOutputs
        _check(counter(signature, ctypes.byref(count)), "signature size")
        found = []
        for index in range(count.value):
            tensor, name, requirements, buffer = (ctypes.c_void_p(), ctypes.c_char_p(), ctypes.c_void_p(),
                                                  ctypes.c_void_p())
            getter = lib.LiteRtGetSignatureInputTensorByIndex if inputs else lib.LiteRtGetSignatureOutputTensorByIndex
            _check(getter(signature, _SIZE(index), ctypes.byref(tensor)), "signature tensor")
            _check(lib.LiteRtGetTensorName(tensor, ctypes.byref(name)), "tensor name")
            tensor_type = ctypes.create_string_buffer(256)  # LiteRtRankedTensorType: element type, rank, dims[8]
            _check(lib.LiteRtGetRankedTensorType(tensor, tensor_type), "tensor type")
            dims = (ctypes.c_int32 * 8).from_buffer(tensor_type, 8)
            for k in range(8):
                dims[k] = max(dims[k], 1) if dims[k] < 0 else dims[k]
            needs = lib.LiteRtGetCompiledModelInputBufferRequirements if inputs else \
                lib.LiteRtGetCompiledModelOutputBufferRequirements
            _check(needs(self.compiled, _SIZE(0), _SIZE(index), ctypes.byref(requirements)), "buffer requirements")
            _check(lib.LiteRtCreateManagedTensorBufferFromRequirements(self.env, tensor_type, requirements,
                                                                       ctypes.byref(buffer)), "buffer")
            found.append(((name.value or b"").decode(), buffer))
        return found

    def write(self, index: int, array: np.ndarray) -> None:
        lib, buffer = _lib(), self.inputs[index][1]
        size, address = ctypes.c_size_t(), ctypes.c_void_p()
        _check(lib.LiteRtGetTensorBufferSize(buffer, ctypes.byref(size)), "buffer size")
        data = np.ascontiguousarray(array).tobytes()
        if len(data) != size.value:
            raise ProfileError(f"input {self.inputs[index][0]} needs {size.value} bytes, got {len(data)}")
        _check(lib.LiteRtLockTensorBuffer(buffer, ctypes.byref(address), _LOCK_WRITE), "lock input")
        ctypes.memmove(address, data, len(data))
        _check(lib.LiteRtUnlockTensorBuffer(buffer), "unlock input")

    def run(self) -> None:
        inputs = (ctypes.c_void_p * len(self.inputs))(*[b for _, b in self.inputs])
        outputs = (ctypes.c_void_p * len(self.outputs))(*[b for _, b in self.outputs])
        _check(_lib().LiteRtRunCompiledModel(self.compiled, _SIZE(0), _SIZE(len(self.inputs)), inputs,
                                             _SIZE(len(self.outputs)), outputs), "run")

    def events(self) -> list[tuple[str, int, int, int]]:
        """(tag, event type, elapsed µs, op index) for everything recorded since the profiler started."""
        lib, count = _lib(), ctypes.c_int()
        _check(lib.LiteRtGetNumProfilerEvents(self.profiler, ctypes.byref(count)), "event count")
        events = (_Event * count.value)()
        _check(lib.LiteRtGetProfilerEvents(self.profiler, count.value, events), "events")
        return [((e.tag or b"").decode(errors="replace"), e.event_type, int(e.elapsed_us), int(e.metadata1))
                for e in events]

    def close(self) -> None:
        lib = _lib()
        for _, buffer in self.inputs + self.outputs:
            lib.LiteRtDestroyTensorBuffer(buffer)
        lib.LiteRtDestroyCompiledModel(self.compiled)
        lib.LiteRtDestroyModel(self.model)
        lib.LiteRtDestroyEnvironment(self.env)


def _short(name: str) -> str:
    return re.sub(r":\d+$", "", name.removeprefix(_SIGNATURE_PREFIX))


def random_input(detail: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Stand-in data (the agent's rule): uniform [0, 1) floats, quantized through the input's scale; 0/1 ids."""
    dtype, shape = np.dtype(detail["dtype"]), [max(int(d), 1) for d in detail["shape_signature"]]
    if dtype.kind == "f" or (detail.get("quantization") or (0.0, 0))[0]:
        return rng.uniform(0, 1, size=shape).astype(np.float32)
    return rng.integers(0, 256 if dtype == np.uint8 else 2, size=shape).astype(dtype)


def _as_input(array: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float data -> the input's dtype (through its scale and zero point when quantized)."""
    dtype = np.dtype(detail["dtype"])
    if array.dtype == dtype or dtype.kind == "f":
        return array.astype(dtype, copy=False)
    scale, zero_point = detail["quantization"]
    if not scale or array.dtype.kind != "f":
        return array.astype(dtype)
    info = np.iinfo(dtype)
    codes: np.ndarray = np.clip(np.rint(array / scale + zero_point), info.min, info.max)
    return codes.astype(dtype)


def _graph(model_path: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The model's ops in execution order ({index, op, name}) and its input details by tensor name, read with
    the default delegate off so the ops are the file's own."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=model_path,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    nodes = [{"index": int(op["index"]), "op": str(op["op_name"]),
              "name": names.get(int(op["outputs"][0]), f"op{op['index']}") if len(op["outputs"]) else
              f"op{op['index']}"} for op in interpreter._get_ops_details()]
    return nodes, {d["name"]: d for d in interpreter.get_input_details()}


def _inputs_by_tensor(details: dict[str, dict[str, Any]], inputs: dict[str, np.ndarray] | None,
                      ) -> dict[str, np.ndarray]:
    """The given inputs keyed by the file's tensor names (exact, then without ``serving_default_``/``:0``);
    random data for those not given."""
    given = dict(inputs or {})
    short_given = {_short(k): v for k, v in given.items()}
    rng = np.random.default_rng(0)
    chosen = {}
    for name, detail in details.items():
        array = given.get(name, short_given.get(_short(name)))
        chosen[name] = _as_input(np.asarray(array) if array is not None else random_input(detail, rng), detail)
    return chosen


def _classic(model_path: str, arrays: dict[str, np.ndarray], threads: int) -> Any:
    """The classic interpreter on the same file, threads and XNNPACK, inputs set: the reference invoke time,
    without the profiler (which adds time per event)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=model_path, num_threads=threads)
    for detail in interpreter.get_input_details():
        array = arrays[detail["name"]]
        if list(array.shape) != list(detail["shape"]):
            interpreter.resize_tensor_input(detail["index"], list(array.shape))
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], arrays[detail["name"]])
    for _ in range(3):
        interpreter.invoke()
    return interpreter


def _timed_invokes(interpreter: Any, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return times


_KEEP = 0.5  # the share of invokes kept, fastest first


def _trimmed(values: list[float]) -> np.ndarray:
    """The fastest half: on a shared machine preempted invokes must not dominate a mean of a few µs, and the
    profiled and plain invokes are compared on the same footing."""
    ordered = np.sort(np.asarray(values, dtype=float))
    return ordered[: max(1, int(np.ceil(len(ordered) * _KEEP)))]


def _split_invokes(events: list[tuple[str, int, int, int]]) -> list[list[tuple[str, int, int, int]]]:
    """The op events of each interpreter Invoke (each starts with a DEFAULT event tagged "Invoke")."""
    invokes: list[list[tuple[str, int, int, int]]] = []
    for event in events:
        tag, kind = event[0], event[1]
        if kind == _DEFAULT_EVENT and tag == "Invoke":
            invokes.append([event])
        elif invokes and (kind == _OPERATOR_EVENT or kind in _DELEGATE_EVENTS):
            invokes[-1].append(event)
    return invokes


def _keys(invoke: list[tuple[str, int, int, int]]) -> list[tuple[tuple[Any, ...], int]]:
    """(stable key, elapsed µs) per op event of one invoke: ("op", node) or ("xnn", partition, operator)."""
    keyed: list[tuple[tuple[Any, ...], int]] = []
    partition, previous = -1, None
    for tag, kind, elapsed, index in invoke[1:]:
        if kind == _OPERATOR_EVENT:
            keyed.append((("op", index, tag), elapsed))
            previous = None
            continue
        if previous is None or index <= previous:
            partition += 1
        previous = index
        keyed.append((("xnn", partition, index, tag), elapsed))
    return keyed


def _partitions(nodes: list[dict[str, Any]], seen: set[int]) -> list[list[dict[str, Any]]]:
    """Delegated nodes (those without an interpreter event) grouped into runs between interpreter ops."""
    groups: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for node in nodes:
        if node["index"] in seen:
            if current:
                groups.append(current)
            current = []
        else:
            current.append(node)
    if current:
        groups.append(current)
    return groups


def _xnnpack_kind(kernel: str) -> str:
    """'Convolution (NHWC, QC8) IGEMM' -> 'Convolution': the operator kind, comparable across dtypes."""
    return kernel.split(" (")[0].strip()


def _op_rows(nodes: list[dict[str, Any]], totals: dict[tuple[Any, ...], float], n_invokes: int,
             ) -> list[dict[str, Any]]:
    by_index = {node["index"]: node for node in nodes}
    seen = {key[1] for key in totals if key[0] == "op"}
    groups = _partitions(nodes, seen)
    rows = []
    for key, total_us in totals.items():
        ms = total_us / n_invokes / 1e3
        if key[0] == "op":
            node = by_index.get(key[1], {"op": key[2], "name": f"op{key[1]}"})
            rows.append({"index": key[1], "op": node["op"], "name": node["name"], "ms": ms, "delegated": False,
                         "kernel": key[2], "partition": None, "covers": [key[1]]})
            continue
        group = groups[key[1]] if key[1] < len(groups) else []
        rows.append({"index": group[0]["index"] if group else None, "op": f"XNNPACK/{_xnnpack_kind(key[3])}",
                     "name": f"xnnpack{key[1]}:{key[2]}", "ms": ms, "delegated": True, "kernel": key[3],
                     "partition": key[1], "covers": [n["index"] for n in group]})
    return rows


def _by_type(rows: list[dict[str, Any]], total: float) -> list[dict[str, Any]]:
    sums: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        sums[row["op"]].append(row["ms"])
    table = [{"op": op, "ms": sum(v), "share": sum(v) / total if total else 0.0, "count": len(v)}
             for op, v in sums.items()]
    return sorted(table, key=lambda r: -r["ms"])


_BLOCK = 10  # profiled and unprofiled invokes alternate in blocks of this many: both see the same machine load


def _profiled_and_plain(model_path: str, arrays: dict[str, np.ndarray], details: dict[str, dict[str, Any]],
                        threads: int, runs: int) -> tuple[list[list[tuple[str, int, int, int]]], list[float]]:
    """The profiler's events of ``runs`` invokes (split per invoke), and as many plain invoke times (s)."""
    model = _ProfiledModel(model_path, threads)
    try:
        plain = _classic(model_path, arrays, threads)
        by_short = {_short(name): name for name in details}
        for index, (name, _buffer) in enumerate(model.inputs):
            model.write(index, arrays[details[name]["name"] if name in details else by_short[_short(name)]])
        for _ in range(3):  # warm-up: XNNPACK packs weights on the first run
            model.run()
        lib, times = _lib(), []
        _check(lib.LiteRtResetProfiler(model.profiler), "reset profiler")
        _check(lib.LiteRtStartProfiler(model.profiler), "start profiler")
        for block in range(0, runs, _BLOCK):
            for _ in range(min(_BLOCK, runs - block)):
                model.run()
            times += _timed_invokes(plain, min(_BLOCK, runs - block))
        _check(lib.LiteRtStopProfiler(model.profiler), "stop profiler")
        return _split_invokes(model.events()), times
    finally:
        model.close()


def _collect(model_path: str, arrays: dict[str, np.ndarray], details: dict[str, dict[str, Any]], threads: int,
             runs: int) -> tuple[dict[tuple[Any, ...], float], int, float, float]:
    """Summed µs per op key over the fastest half of ``runs`` profiled invokes, their count, their mean
    Invoke µs, and the mean of the fastest half of the plain invokes (ms)."""
    invokes, times = _profiled_and_plain(model_path, arrays, details, threads, runs)
    if invokes:  # keep the fastest half of the invokes, as for the plain invoke times
        limit = float(_trimmed([i[0][2] for i in invokes])[-1])
        invokes = [i for i in invokes if i[0][2] <= limit]
    totals: dict[tuple[Any, ...], float] = defaultdict(float)
    for invoke in invokes:
        for key, elapsed in _keys(invoke):
            totals[key] += elapsed
    profiled_us = float(np.mean([i[0][2] for i in invokes])) if invokes else 0.0
    return dict(totals), len(invokes), profiled_us, float(_trimmed(times).mean() * 1e3)


def profile_ops(model_path: str, inputs: dict[str, np.ndarray] | None = None, threads: int = 1,
                runs: int = 50) -> dict[str, Any]:
    """Per-op and per-op-type mean time per invoke, from LiteRT's profiler, JSON-serialisable.

    Ops run by the interpreter are named by their builtin type (``SOFTMAX``) and output tensor; ops inside
    XNNPACK by XNNPACK's operator (``XNNPACK/Convolution``; ``kernel`` has its full name, ``covers`` the
    file's ops of that delegate partition). ``invoke_ms`` is timed with the profiler off, in blocks between
    the profiled ones; both are means of the fastest half of invokes (a preempted invoke must not dominate).
    """
    if runs < 1 or threads < 1:
        raise ValueError(f"runs and threads must be >= 1, got runs={runs}, threads={threads}")
    nodes, details = _graph(model_path)
    arrays = _inputs_by_tensor(details, inputs)
    totals, n_invokes, profiled_us, invoke_ms = _collect(model_path, arrays, details, threads, runs)
    if not n_invokes:
        raise ProfileError("LiteRT's profiler recorded no Invoke event")
    rows = sorted(_op_rows(nodes, totals, n_invokes), key=lambda r: (r["index"] is None, r["index"] or 0,
                                                                      r["partition"] or 0, r["name"]))
    op_total = sum(r["ms"] for r in rows)
    for row in rows:
        row["share"] = row["ms"] / op_total if op_total else 0.0
    delegated = sorted({i for r in rows if r["delegated"] for i in r["covers"]})
    # runs: the profiled invokes averaged (the fastest half of ``runs``); xnnpack: whether XNNPACK ran any op.
    return {"mechanism": MECHANISM, "xnnpack": bool(delegated), "threads": threads, "runs": n_invokes,
            "invoke_ms": invoke_ms,
            "profiled_invoke_ms": profiled_us / 1e3, "ops_total_ms": op_total, "n_model_ops": len(nodes),
            "delegated_ops": delegated,
            "fallback_ops": [{"index": n["index"], "op": n["op"]} for n in nodes if n["index"] not in delegated],
            "model_op_counts": dict(sorted(Counter(n["op"] for n in nodes).items())),
            "ops": rows, "by_type": _by_type(rows, op_total)}
