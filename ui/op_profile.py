"""Compare's "where the time goes" section: LiteRT's per-op profile of every variant on this machine, the
sentences that explain a slower variant, the chart by op type and the op-by-op table."""

from __future__ import annotations

from typing import Any

import streamlit as st

from optimizer.report.op_profile import aligned_op_table, explain_slowdowns, op_type_figure, profiled


def _failures(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{row.get('variant')}: {row['op_profile']['error']}" for row in rows
            if isinstance(row.get("op_profile"), dict) and row["op_profile"].get("error")]


def op_profile_section(run: Any) -> None:
    """The section's content, drawn by Compare only while its expander is open (the table can have hundreds of
    rows): the explanations, the chart by op type, the aligned table."""
    rows: list[dict[str, Any]] = list(run.rows)
    found = profiled(rows)
    failures = _failures(rows)
    if not found and not failures:
        st.caption("This run has no per-op profile (runs measured on the local target record one per variant).")
        return
    if found:
        first = found[0][1]
        st.caption(f"{first.get('mechanism', 'LiteRT profiler')}, {first.get('threads', '?')} thread(s), mean "
                   "per invoke on this machine. Ops inside XNNPACK are XNNPACK's own operators (`kernel`); ops "
                   "outside it ran in the interpreter. The profiler adds time per event, so the invoke time "
                   "below is measured with it off.")
    for sentence in explain_slowdowns(rows):
        st.markdown(f"- {sentence}")
    for failure in failures:
        st.warning(f"No per-op profile for {failure}")
    if not found:
        return
    st.plotly_chart(op_type_figure(rows), key="chart_op_profile")
    st.dataframe(aligned_op_table(rows), hide_index=True)
