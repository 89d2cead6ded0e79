"""The content-addressed variant store: the key changes with anything that changes a variant, entries are whole."""

import json

import pytest

from optimizer.run.cache import VariantCache, benchmark_key, variant_key

BASE = {"model_sha256": "a" * 64, "dataset_sha256": "b" * 64, "spec": {"kind": "int8", "name": "int8", "options": {}},
        "seed": 0, "evaluation": {"task": None}, "versions": {"tensorflow": "2.21.0"}}


@pytest.mark.parametrize(("field", "other"), [
    ("model_sha256", "c" * 64), ("dataset_sha256", "d" * 64), ("seed", 1), ("evaluation", {"task": "regression"}),
    ("spec", {"kind": "int8", "name": "int8", "options": {"calibration_samples": 100}}),
    ("versions", {"tensorflow": "2.22.0"}),
])
def test_every_input_of_a_variant_changes_its_key(field, other):
    assert variant_key(**BASE) == variant_key(**BASE)
    assert variant_key(**{**BASE, field: other}) != variant_key(**BASE)


def test_an_entry_round_trips_and_keeps_latency_only_for_the_same_benchmark_settings(tmp_path):
    cache = VariantCache(tmp_path / "cache")
    key, measured_with = variant_key(**BASE), benchmark_key({"threads": 1, "runs": 50}, {"cpu": "x"})
    model = tmp_path / "int8.tflite"
    model.write_bytes(b"TFL3 model bytes")
    row = {"variant": "int8", "size_bytes": 16, "accuracy": 0.9, "latency_ms_p50": 1.5, "timings_ms": [1.5, 1.6],
           "path": "variants/int8.tflite", "benchmark_key": measured_with}
    assert cache.get(key) is None
    assert cache.put(key, row, model, None, None)
    assert not cache.put(key, {**row, "accuracy": 0.1}, model, None, None)  # the first writer's entry is kept
    entry = cache.get(key)
    assert entry is not None and entry.tflite.read_bytes() == b"TFL3 model bytes" and entry.recipe is None
    assert entry.conversion_row() == {"variant": "int8", "size_bytes": 16, "accuracy": 0.9}
    assert entry.benchmark_figures(measured_with) == {"latency_ms_p50": 1.5, "timings_ms": [1.5, 1.6]}
    assert entry.benchmark_figures(benchmark_key({"threads": 2, "runs": 50}, {"cpu": "x"})) is None
    assert cache.entries() == 1


def test_a_corrupt_or_partial_entry_is_a_miss_and_bad_keys_are_refused(tmp_path):
    cache = VariantCache(tmp_path)
    key = variant_key(**BASE)
    folder = tmp_path / key[:2] / key
    folder.mkdir(parents=True)
    (folder / "row.json").write_text("{not json")
    assert cache.get(key) is None
    (folder / "row.json").write_text(json.dumps({"variant": "int8"}))
    assert cache.get(key) is None  # no .tflite: never half an entry
    with pytest.raises(ValueError, match="expected 64 hex digits"):
        cache.get("../../etc")
