"""How the post-training variants are shared between the two conversion workers."""

from optimizer.run.plan import split_conversions
from optimizer.variants import VariantKind, VariantSpec


def _names(share):
    return [spec.name for spec in share]


def test_default_kinds_split_float32_first_family_whole_and_balanced():
    kinds = (VariantKind.FLOAT32, VariantKind.FLOAT16, VariantKind.DYNAMIC_RANGE, VariantKind.INT8,
             VariantKind.INT8_IO, VariantKind.INT16X8)
    first, second = split_conversions([VariantSpec(k) for k in kinds])
    assert _names(first)[0] == "float32"
    assert sorted(_names(first) + _names(second)) == sorted(k.value for k in kinds)
    together = [share for share in (first, second) if "int8" in _names(share)][0]
    assert "int8_io" in _names(together)  # one float conversion and one calibration for both
    assert _names(first).index("int16x8") == 1  # slow to evaluate: converted right after float32
    assert abs(len(first) - len(second)) <= 1


def test_family_members_with_other_calibration_are_not_kept_together():
    specs = [VariantSpec(VariantKind.FLOAT32), VariantSpec(VariantKind.INT8),
             VariantSpec(VariantKind.INT8_IO, {"calibration_samples": 50})]
    first, second = split_conversions(specs)  # different samples: nothing to share, so they may split
    assert (_names(first), _names(second)) == (["float32", "int8_io"], ["int8"])
