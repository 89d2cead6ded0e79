"""Sweep charts: each swept option (read from the rows) against a figure, one line per kind and model."""

from optimizer.report.sweep_charts import parameter_figure, sweep_figures, swept_options


def _row(variant, kind, accuracy, model="", **options):
    return {"variant": variant, "kind": kind, "status": "ok", "accuracy": accuracy, "size_bytes": 1000,
            "model": model, "options": options}


ROWS = [_row("float32", "float32", 0.97), _row("p3", "prune", 0.96, sparsity=0.3, epochs=1),
        _row("p9", "prune", 0.80, sparsity=0.9, epochs=1), _row("p5", "prune", 0.95, sparsity=0.5, epochs=1),
        _row("c8", "cluster", 0.93, clusters=8), _row("c16", "cluster", 0.96, clusters=16),
        {**_row("c4", "cluster", None, clusters=4), "status": "failed"}]


def test_swept_options_are_those_that_differ_within_a_kind():
    assert swept_options(ROWS) == {"prune": ["sparsity"], "cluster": ["clusters"]}  # epochs=1 everywhere


def test_a_parameter_line_is_sorted_by_value_with_float32_as_reference():
    figure = parameter_figure(ROWS, "sparsity", "accuracy")
    (line,) = figure.data
    assert list(line.x) == [0.3, 0.5, 0.9] and list(line.y) == [0.96, 0.95, 0.80]
    assert figure.layout.shapes[0].y0 == 0.97  # float32's accuracy
    assert figure.layout.yaxis.tickformat.endswith("%")


def test_two_models_get_one_line_each_and_every_option_figure_pair_is_drawn():
    rows = ROWS[:4] + [{**r, "model": "b.keras"} for r in ROWS[:4]]
    rows = [{**r, "model": r["model"] or "a.keras"} for r in rows]
    figure = parameter_figure(rows, "sparsity", "accuracy")
    assert [t.name for t in figure.data] == ["prune (a.keras)", "prune (b.keras)"]
    assert [(o, f) for o, f, _ in sweep_figures(ROWS)] == [
        ("sparsity", "accuracy"), ("sparsity", "size_bytes"), ("clusters", "accuracy"), ("clusters", "size_bytes")]
