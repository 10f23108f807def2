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


def test_step_metrics_of_an_interval():
  # 10 steps in 5 s of training, 1 s of it waiting for data; 8 images a step on 4 devices,
  # 2 TFLOP a step, peak 1 TFLOP/s per device.
  row = perf.step_metrics(2e12, 10, 5.0, 1.0, 8, 4, 1.0)
  assert row["perf/step_time_s"] == pytest.approx(0.5)
  assert row["perf/images_per_s_per_device"] == pytest.approx(8 / 0.5 / 4)
  assert row["perf/data_wait_fraction"] == pytest.approx(0.2)
  assert row["perf/tflops_per_device"] == pytest.approx(2.0 / 0.5 / 4)
  assert row["perf/mfu"] == pytest.approx(1.0)
  assert "perf/mfu" not in perf.step_metrics(2e12, 10, 5.0, 1.0, 8, 4, None)  # no peak known
  no_flops = perf.step_metrics(0.0, 10, 5.0, 1.0, 8, 4, 1.0)  # perf.count_flops off
  assert "perf/tflops_per_device" not in no_flops and "perf/mfu" not in no_flops
  assert perf.step_metrics(2e12, 0, 5.0, 1.0, 8, 4, 1.0) == {}


class _FakeClock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_chrono_counts_each_category_and_leaves_the_rest_to_the_steps():
  clock = _FakeClock()
  chrono = perf.Chrono(clock)
  chrono.add("setup", 3.0)
  with chrono.measure("compile"):
    clock.now += 10.0
  clock.now += 20.0  # steps
  with chrono.measure("data_wait"):
    clock.now += 2.0
  with pytest.raises(RuntimeError):  # a block that fails still counts
    with chrono.measure("evaluation"):
      clock.now += 4.0
      raise RuntimeError
  clock.now += 4.0  # steps
  before, spent = chrono.snapshot()
  assert before == 140.0 and spent["compile"] == 10.0 and spent["evaluation"] == 4.0
  row = chrono.summary()
  assert row["goodput/total_s"] == 40.0
  assert row["goodput/productive_steps_s"] == 40.0 - 3 - 10 - 2 - 4
  assert row["goodput/fraction"] == pytest.approx(21 / 40)
  assert row["goodput/checkpointing_s"] == 0.0
  with pytest.raises(ValueError, match="unknown category"):
    with chrono.measure("lunch"):
      pass


def test_memory_analysis_counts_the_compiled_programs_buffers():
  import jax
  import jax.numpy as jnp
  compiled = jax.jit(lambda x: (x @ x).sum()).lower(jnp.ones((64, 64), jnp.float32)).compile()
  memory = perf.memory_analysis(compiled)
  assert memory["arguments"] == 64 * 64 * 4 and memory["outputs"] == 4
  assert set(memory) == {"arguments", "outputs", "temporaries", "aliased", "code"}
