"""Performance accounting: the peak-rate table, a train step's FLOPs as XLA counts them, MFU."""

import pytest

from conftest import config_path
from genlv_jax.config_io import load_config
from genlv_jax.models.summary import summarize
from genlv_jax.training import perf


@pytest.mark.parametrize("kind, peak", [
    ("TPU v4", 275.0), ("TPU v5 lite", 197.0), ("TPU v5p", 459.0), ("TPU v6 lite", 918.0),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H200", 989.0),
    ("cpu", None),
])
def test_peak_rates_by_device_kind(kind, peak):
  assert perf.peak_tflops(kind) == peak
  assert perf.peak_tflops(kind, override=0.38) == 0.38  # --config.perf.peak_tflops wins


def test_train_step_flops_scale_with_the_batch_and_are_about_three_forwards():
  config = load_config(config_path("tiny"))
  one, two = perf.train_step_flops(config, 1, 256), perf.train_step_flops(config, 2, 256)
  assert two / one == pytest.approx(2.0, rel=0.01)  # the optimizer's share is tiny
  # Backward costs about twice the forward: the step is 2.5-3.5 forwards (summary's GMACs at
  # 256², two FLOPs per multiply-add).
  forward = 2e9 * summarize(config)["gmacs_256"]
  assert 2.5 < one / forward < 3.5, one / forward


def test_mfu_is_achieved_over_peak():
  assert perf.mfu(2e12, 0.5, 4, 1.0) == pytest.approx(1.0)
  assert perf.mfu(1e12, 1.0, 8, 0.25) == pytest.approx(0.5)
  assert perf.mfu(1e12, 1.0, 8, None) is None
