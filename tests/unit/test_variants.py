import pytest

from optimizer.errors import InvalidOption
from optimizer.variants import KINDS, SourceFormat, VariantKind, VariantSpec, default_kinds, parse_variant_list


def test_spec_round_trips_through_dict():
    spec = VariantSpec(VariantKind.INT8, {"calibration_samples": 32}, name="int8-small")
    again = VariantSpec.from_dict(spec.to_dict())
    assert again == spec
    assert again.options["calibration_samples"] == 32


def test_defaults_are_merged_and_name_defaults_to_kind():
    spec = VariantSpec("int16x8")
    assert spec.kind is VariantKind.INT16X8
    assert spec.name == "int16x8"
    assert spec.options == {"calibration_samples": 200}


@pytest.mark.parametrize("options, fragment", [
    ({"calibration_samples": 0}, "calibration_samples"),
    ({"calibration_samples": 2.5}, "calibration_samples"),
    ({"sparsity": 0.5}, "unknown option"),
])
def test_bad_options_name_the_option(options, fragment):
    with pytest.raises(InvalidOption, match=fragment):
        VariantSpec(VariantKind.INT8, options)


def test_unknown_kind_lists_known_kinds():
    with pytest.raises(InvalidOption, match="expected one of .*float16"):
        VariantSpec("float8")  # type: ignore[arg-type]


def test_kind_table_covers_every_kind():
    assert {k for k, info in KINDS.items() if info.listed} == set(VariantKind)  # tests may add unlisted ones


def test_variant_list_adds_float32_reference_and_checks_source():
    specs = parse_variant_list("int8_io,float16", SourceFormat.TENSORFLOW)
    assert [s.kind for s in specs] == [VariantKind.FLOAT32, VariantKind.INT8_IO, VariantKind.FLOAT16]
    with pytest.raises(InvalidOption, match="cannot be made from a tflite model"):
        parse_variant_list("float16", SourceFormat.TFLITE)
    assert [s.kind for s in parse_variant_list("all", SourceFormat.TFLITE)] == default_kinds(SourceFormat.TFLITE)


def test_aliases_keep_their_setting_unless_an_option_overrides_it():
    specs = {s.name: s for s in parse_variant_list("prune75,cluster8,prune", SourceFormat.TENSORFLOW,
                                                   {"sparsity": None, "epochs": 2})}
    assert specs["prune75"].options["sparsity"] == 0.75 and specs["prune75"].options["epochs"] == 2
    assert specs["cluster8"].options["clusters"] == 8
    assert specs["prune"].options["sparsity"] == 0.5
    overridden = parse_variant_list("prune75", SourceFormat.TENSORFLOW, {"sparsity": 0.9})
    assert overridden[1].options["sparsity"] == 0.9


def test_training_option_ranges_name_the_option():
    with pytest.raises(InvalidOption, match="sparsity must be in \\(0, 1\\); found 1.0"):
        VariantSpec("prune", {"sparsity": 1.0})
    with pytest.raises(InvalidOption, match="clusters must be a whole number in 2..256"):
        VariantSpec("cluster", {"clusters": 1})
    with pytest.raises(InvalidOption, match="schedule must be 'polynomial' or 'constant'"):
        VariantSpec("prune", {"schedule": "cosine"})
    with pytest.raises(InvalidOption, match="epochs must be a whole number"):
        VariantSpec("qat", {"epochs": 0})
    with pytest.raises(InvalidOption, match="unknown option"):
        VariantSpec("qat", {"sparsity": 0.5})
