"""Grids of one kind's options become ordinary, validated variant specs named after their values."""

from pathlib import Path

import pytest

from optimizer.errors import InvalidOption
from optimizer.sweep import grid_specs, parse_grid, point_name, sweep_table, swept_parameters, unique_folders
from optimizer.variants import SourceFormat


def test_a_grid_is_the_product_of_its_options_values():
    grid = parse_grid("sparse_cluster:sparsity=0.3,0.5:clusters=8,16,8")
    assert grid.values == {"sparsity": [0.3, 0.5], "clusters": [8, 16]}  # the repeated 8 is one point
    specs = grid.specs()
    assert [s.name for s in specs] == ["sparse_cluster_sparsity0p3_clusters8", "sparse_cluster_sparsity0p3_clusters16",
                                       "sparse_cluster_sparsity0p5_clusters8", "sparse_cluster_sparsity0p5_clusters16"]
    assert specs[1].options["clusters"] == 16 and specs[1].options["sparsity"] == 0.3
    assert point_name("prune", {"schedule": "constant"}) == "prune_scheduleconstant"


def test_float32_comes_first_and_shared_points_run_once():
    specs = grid_specs(["prune:sparsity=0.5,0.7", "prune:sparsity=0.7"], SourceFormat.TENSORFLOW)
    assert [s.name for s in specs] == ["float32", "prune_sparsity0p5", "prune_sparsity0p7"]
    assert swept_parameters(["prune:sparsity=0.5", "sparse_cluster:sparsity=0.5:clusters=8"]) == {
        "prune": ["sparsity"], "sparse_cluster": ["sparsity", "clusters"]}


@pytest.mark.parametrize(("text", "message"), [
    ("prune", "found no OPTION=values"),
    ("prune:clusters=8", "prune has no option 'clusters'; its options: batch_size, calibration_samples"),
    ("prune:sparsity=", "expected values after sparsity="),
    ("prune:sparsity=1.5", "sparsity must be in \\(0, 1\\); found 1.5"),
    ("shrink:size=2", "variant kind: expected one of"),
])
def test_bad_grids_are_refused_with_what_was_expected(text, message):
    with pytest.raises(InvalidOption, match=message):
        parse_grid(text).specs()


def test_training_grids_cannot_be_made_from_a_tflite():
    with pytest.raises(InvalidOption, match="cannot be made from a tflite model"):
        grid_specs(["cluster:clusters=8"], SourceFormat.TFLITE)


def test_the_table_has_a_model_column_and_one_column_per_swept_parameter():
    rows = [{"variant": "float32", "kind": "float32", "options": {}},
            {"variant": "prune_sparsity0p5", "kind": "prune", "options": {"sparsity": 0.5, "epochs": 4}}]
    table = sweep_table([("a.keras", rows), ("b.keras", rows)], {"prune": ["sparsity"]})
    assert list(table.columns[:3]) == ["model", "variant", "param: sparsity"]
    assert table["model"].tolist() == ["a.keras", "a.keras", "b.keras", "b.keras"]
    assert table["param: sparsity"].isna().tolist()[:2] == [True, False] and table["param: sparsity"][1] == 0.5
    assert unique_folders([Path("x/m.keras"), Path("y/m.keras")], Path("out")) == [Path("out/m"), Path("out/m_2")]


def test_points_are_named_by_what_varies_and_never_collide():
    assert [s.name for s in parse_grid("prune:sparsity=0.3,0.5:epochs=1").specs()] == [
        "prune_sparsity0p3", "prune_sparsity0p5"]
    specs = grid_specs(["prune:sparsity=0.3,0.5:epochs=1", "prune:sparsity=0.3,0.5:epochs=2"], SourceFormat.TENSORFLOW)
    assert [s.name for s in specs] == ["float32", "prune_sparsity0p3", "prune_sparsity0p5",
                                       "prune_sparsity0p3_epochs2", "prune_sparsity0p5_epochs2"]
    assert [s.options["epochs"] for s in specs[1:]] == [1, 1, 2, 2]
