"""The per-op report on hand-made profiles: ops aligned by type and position across variants, the chart's
stacks, and the sentences that explain a slower variant (and stay silent when none is slower)."""

from __future__ import annotations

import math

from optimizer.report.op_profile import (
    aligned_op_table,
    explain_slowdowns,
    kernel_note,
    op_profile_html,
    op_type_figure,
)


def _op(op: str, ms: float, kernel: str = "", delegated: bool = True, name: str = "") -> dict:
    return {"op": op, "ms": ms, "kernel": kernel or op, "delegated": delegated, "name": name or op.lower()}


def _profile(ops: list[dict], invoke_ms: float | None = None) -> dict:
    total = sum(o["ms"] for o in ops)
    by_type: dict[str, dict] = {}
    for o in ops:
        entry = by_type.setdefault(o["op"], {"op": o["op"], "ms": 0.0, "count": 0})
        entry["ms"] += o["ms"]
        entry["count"] += 1
    fallback = [{"index": i, "op": o["op"]} for i, o in enumerate(ops) if not o["delegated"]]
    return {"ops": ops, "by_type": [dict(e, share=e["ms"] / total) for e in by_type.values()],
            "ops_total_ms": total, "invoke_ms": invoke_ms or total, "fallback_ops": fallback}


FLOAT = _profile([_op("XNNPACK/Convolution", 0.20, "Convolution (NHWC, F32) IGEMM"),
                  _op("XNNPACK/Convolution", 0.30, "Convolution (NHWC, F32) IGEMM"),
                  _op("RESHAPE", 0.01, delegated=False),
                  _op("XNNPACK/Fully Connected", 0.05, "Fully Connected (NC, F32) GEMM")])
INT8 = _profile([_op("XNNPACK/Convert", 0.15, "Convert (NC, F32, QS8)"),
                 _op("XNNPACK/Convolution", 0.10, "Convolution (NHWC, QC8) IGEMM"),
                 _op("XNNPACK/Convolution", 0.12, "Convolution (NHWC, QC8) IGEMM"),
                 _op("RESHAPE", 0.01, delegated=False),
                 _op("XNNPACK/Fully Connected", 0.04, "Fully Connected (NC, QS8, QC8W) GEMM"),
                 _op("XNNPACK/Convert", 0.20, "Convert (NC, QS8, F32)")])
DYNAMIC = _profile([_op("XNNPACK/Convolution", 0.25, "Convolution (NHWC, F32) IGEMM"),
                    _op("XNNPACK/Convolution", 0.60, "Convolution (NHWC, QDU8, F32, QC8W) IGEMM"),
                    _op("RESHAPE", 0.01, delegated=False),
                    _op("FULLY_CONNECTED", 0.09, delegated=False)])


def _rows(int8_ms: float = 0.7, dynamic_ms: float = 1.0) -> list[dict]:
    return [{"variant": "float32", "latency_ms_p50": 0.6, "op_profile": FLOAT},
            {"variant": "int8", "latency_ms_p50": int8_ms, "op_profile": INT8},
            {"variant": "dynamic_range", "latency_ms_p50": dynamic_ms, "op_profile": DYNAMIC},
            {"variant": "float16", "latency_ms_p50": 0.9, "status": "failed"}]  # no profile: no column


def test_aligned_table_puts_the_same_op_on_one_row_and_leaves_missing_ops_empty() -> None:
    table = aligned_op_table(_rows())
    assert [c for c in table.columns if c.endswith(" ms")] == ["float32 ms", "int8 ms", "dynamic_range ms"]
    ops = table[~table["op"].isin(["all ops", "invoke (profiler off)"])]
    assert len(ops) == 7  # 2 conv, reshape, FC (XNNPACK), 2 convert, FULLY_CONNECTED (interpreter)
    second_conv = ops[(ops["op"] == "XNNPACK/Convolution") & (ops["#"] == 2)].iloc[0]
    assert (second_conv["float32 ms"], second_conv["int8 ms"], second_conv["dynamic_range ms"]) == (0.30, 0.12, 0.60)
    converts = ops[ops["op"] == "XNNPACK/Convert"]
    assert list(converts["#"]) == [1, 2] and converts["float32 ms"].isna().all()
    assert list(converts["int8 ms"]) == [0.15, 0.20] and converts["dynamic_range ms"].isna().all()
    hybrid = ops[ops["op"] == "FULLY_CONNECTED"].iloc[0]
    assert math.isnan(hybrid["float32 ms"]) and hybrid["dynamic_range ms"] == 0.09 and not hybrid["delegated"]
    total = table[table["op"] == "all ops"].iloc[0]
    assert total["int8 ms"] == INT8["ops_total_ms"]


def test_aligned_table_of_rows_without_profiles_is_empty() -> None:
    assert aligned_op_table([{"variant": "float32", "latency_ms_p50": 1.0}]).empty


def test_figure_stacks_op_types_with_the_same_colour_per_type() -> None:
    figure = op_type_figure(_rows())
    names = [trace.name for trace in figure.data]
    assert len(names) == len(set(names)) == 5
    assert figure.layout.barmode == "stack"
    convert = next(t for t in figure.data if t.name == "XNNPACK/Convert")
    assert list(convert.x) == ["float32", "int8", "dynamic_range"]
    assert list(convert.y) == [0.0, 0.15 + 0.20, 0.0]
    again = op_type_figure(_rows()[1:2])
    assert again.data[0].marker.color == next(t for t in figure.data if t.name == again.data[0].name).marker.color


def test_explains_where_a_slower_variant_spends_its_time() -> None:
    sentences = explain_slowdowns(_rows())
    int8 = [s for s in sentences if s.startswith("int8: ")]
    # int8: 0.35 ms of 0.62 ms in conversions that float32 does not have.
    assert any("56% of its time in XNNPACK/Convert (0.35 ms)" in s and "float32 does not have" in s for s in int8)
    dynamic = [s for s in sentences if s.startswith("dynamic_range: ")]
    assert any("XNNPACK/Convolution takes 0.85 ms" in s and "activations quantized on the fly" in s
               for s in dynamic)
    assert any("FULLY_CONNECTED" in s and "interpreter" in s for s in dynamic)


def test_nothing_to_explain_when_no_variant_is_slower() -> None:
    assert explain_slowdowns(_rows(int8_ms=0.5, dynamic_ms=0.6)) == []
    assert explain_slowdowns(_rows()[1:]) == []  # no float32 to compare with


def test_slower_latency_but_not_slower_ops_says_so() -> None:
    cheap = _profile([_op("XNNPACK/Convolution", 0.1, "Convolution (NHWC, F32) IGEMM")])
    rows = [{"variant": "float32", "latency_ms_p50": 0.6, "op_profile": FLOAT},
            {"variant": "prune", "latency_ms_p50": 0.61, "op_profile": cheap}]
    (sentence,) = explain_slowdowns(rows)
    assert sentence.startswith("prune: its ops take no longer") and "noise" in sentence


def test_kernel_notes() -> None:
    assert "dynamic range" in kernel_note("Fully Connected (NC, QDU8, F32, QC8W) GEMM")
    assert kernel_note("Convolution (NHWC, QC8) IGEMM") == "int8 arithmetic"
    assert kernel_note("SOFTMAX") == ""


def test_report_section_has_the_sentences_and_the_table_or_nothing() -> None:
    section = op_profile_html(_rows())
    assert "Where the time goes" in section and "XNNPACK/Convert" in section and "<table" in section
    assert "int8: 56% of its time" in section
    assert op_profile_html([{"variant": "float32", "op_profile": {"error": "no LiteRT"}}]) == ""


def test_compare_page_draws_the_section_once_opened(tmp_path, monkeypatch) -> None:
    """AppTest over a stored run whose rows carry hand-made profiles (no TensorFlow, no LiteRT)."""
    from optimizer.jobs.store import RunStore
    from tests.app.test_pages import _app

    monkeypatch.setenv("STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("STUDIO_WARM", "0")
    store = RunStore(tmp_path / "runs")
    run_id = store.create("seeded.keras", {"model": {"name": "seeded.keras", "sha256": "cd" * 32}}, {"seed": 0})
    rows = [dict(row, kind=row["variant"], status="ok", size_bytes=1000, runtime="ai_edge_litert",
                 runtime_version="2.3.0", threads=1) for row in _rows()[:2]]
    rows.append({"variant": "float16", "kind": "float16", "status": "ok", "size_bytes": 500, "latency_ms_p50": 0.5,
                 "op_profile": {"error": "LiteRT profiling failed at compile: status 1"}})
    store.update(run_id, status="done", rows=rows, manifest={"cpu": "Test CPU", "threads": 1})
    at = _app("app_pages/3_Compare.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Where the time goes (per-op profile)" in {e.label for e in at.expander}
    assert not [m for m in at.markdown if "XNNPACK/Convert" in m.value]  # closed: not drawn
    at.session_state["show_op_profile"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(m.value.startswith("- int8: 56% of its time in XNNPACK/Convert") for m in at.markdown)
    assert any("float16: LiteRT profiling failed at compile" in w.value for w in at.warning)
    assert [f.value for f in at.dataframe if "int8 ms" in f.value.columns]


def test_an_op_float32_runs_in_xnnpack_is_a_fallback_not_an_extra_op() -> None:
    reference = dict(FLOAT, model_op_counts={"CONV_2D": 2, "RESHAPE": 1, "FULLY_CONNECTED": 1})
    rows = [{"variant": "float32", "latency_ms_p50": 0.6, "op_profile": reference},
            {"variant": "dynamic_range", "latency_ms_p50": 1.0, "op_profile": DYNAMIC}]
    sentences = explain_slowdowns(rows)
    assert not [s for s in sentences if "does not have" in s]
    assert any(s.endswith("FULLY_CONNECTED run in the interpreter, outside XNNPACK (0.09 ms), where float32 runs "
                          "them in XNNPACK.") for s in sentences)
