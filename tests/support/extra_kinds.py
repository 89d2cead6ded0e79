"""A kind only the tests use, added in one row: full int8 with uint8 input and output tensors. Worker
processes load it through $STUDIO_EXTRA_KINDS=tests.support.extra_kinds."""

from dataclasses import replace

from optimizer.variants import INT8, KindInfo, SourceFormat, register_kind

UINT8_IO = "test_int8_uint8_io"

register_kind(KindInfo(UINT8_IO, "full int8, uint8 I/O (test-only)", frozenset({SourceFormat.TENSORFLOW}), True, True,
                       "Full int8 with uint8 input and output tensors.", {"calibration_samples": 200},
                       converter=replace(INT8, io_dtype="uint8"), listed=False))
