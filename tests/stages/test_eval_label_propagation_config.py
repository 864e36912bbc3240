"""The eval stage's own config: fp32 features by default (as the reference codes)."""

import pytest

from stages.eval_label_propagation import EvalLabelPropConfig


def test_eval_stage_precision_is_fp32_by_default_and_checked():
    assert EvalLabelPropConfig().precision == "fp32"
    assert EvalLabelPropConfig(precision="bf16").precision == "bf16"
    with pytest.raises(ValueError, match="precision"):
        EvalLabelPropConfig(precision="fp16")
