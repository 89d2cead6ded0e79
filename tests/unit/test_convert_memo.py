"""The memo behind the converter steps a conversion worker does once: reuse only on equal inputs."""

import numpy as np

from optimizer.produce.convert import _Memo


def test_equal_inputs_reuse_the_result_and_different_inputs_do_not():
    calls = []
    memo = _Memo(lambda model, flags=None: calls.append((model, flags)) or len(calls))
    assert memo(b"model", flags={"inference_type": "int8"}) == 1
    assert memo(b"model", flags={"inference_type": "int8"}) == 1  # same bytes, equal flags: done once
    assert memo(b"model", flags={"inference_type": "int16"}) == 2
    assert memo(b"other", flags={"inference_type": "int8"}) == 3
    assert len(calls) == 3


def test_inputs_without_a_plain_equality_are_never_reused():
    memo = _Memo(lambda array: float(array.sum()))
    assert memo(np.ones(3)) == 3.0
    assert memo(np.zeros(3)) == 0.0  # elementwise == cannot say "equal": computed again, not mistaken
    assert len(memo.entries) == 2
