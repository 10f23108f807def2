"""Performance accounting: the FLOPs of a train step, the published peak rates of accelerators,
model FLOPs utilisation (MFU), the `perf/*` row of a log interval, the compiled program's memory,
and where a run's time went (`Chrono`, its goodput), as MaxText, MaxDiffusion and big_vision
report them.

FLOPs come from XLA's cost analysis of the lowered train step of the config's costing twin
(`models.summary.costing_twin`: unrolled, no remat, XLA's own convolutions), so that they count
the model's work once, whatever formulation and memory trade-off the run itself uses.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator, Optional

import jax
import jax.numpy as jnp
import ml_collections

from genlv_jax.models.build import build_model
from genlv_jax.models.params import abstract_params
from genlv_jax.models.summary import costing_twin

# Peak dense bfloat16 rate per chip, TFLOP/s, by the prefix of `jax.Device.device_kind`.
# TPUs: Google Cloud's system-architecture pages (cloud.google.com/tpu/docs/v4, /v5e, /v5p,
# /v6e): v4 275, v5e 197, v5p 459, v6e (Trillium) 918. GPUs: NVIDIA's datasheets, tensor cores
# without sparsity, SXM parts: A100 312, H100 989, H200 989.
PEAK_BF16_TFLOPS = {
    "TPU v4": 275.0,
    "TPU v5 lite": 197.0,
    "TPU v5e": 197.0,
    "TPU v5p": 459.0,
    "TPU v5": 459.0,
    "TPU v6 lite": 918.0,
    "TPU v6e": 918.0,
    "NVIDIA A100": 312.0,
    "NVIDIA H100": 989.0,
    "NVIDIA H200": 989.0,
}


def peak_tflops(device_kind: str, override: float = 0.0) -> Optional[float]:
  """The peak bf16 TFLOP/s of one device of `device_kind` (`override` when > 0); None for a kind
  the table does not know (CPUs)."""
  if override and override > 0:
    return float(override)
  for prefix in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):  # "TPU v5 lite" before "TPU v5"
    if device_kind.startswith(prefix):
      return PEAK_BF16_TFLOPS[prefix]
  return None


def train_step_flops(config: ml_collections.ConfigDict, batch_size: int,
                     image_size: Optional[int] = None) -> float:
  """FLOPs of one train step (forward, backward and the optimizer update) on a global batch of
  `batch_size` images of `image_size`² (default `config.image_size`), counted by XLA on the
  lowered step of the costing twin (nothing is compiled or allocated)."""
  # Imported here: train_step imports optax, which the table above does not need.
  from genlv_jax.training.train_step import (create_train_state, make_optimizer,  # pylint: disable=import-outside-toplevel
                                             make_train_step)
  twin = costing_twin(config)
  model, tx = build_model(twin), make_optimizer(twin)
  size = int(image_size or twin.image_size)
  use_ema = float(twin.optimizer.ema_decay) > 0  # the EMA update is part of the step
  state = jax.eval_shape(lambda p: create_train_state(p, tx, use_ema),
                         abstract_params(model, twin))
  image = jax.ShapeDtypeStruct((int(batch_size), size, size, 3), jnp.float32)
  batch = {"input": image, "target": image, "prompt_source": image, "prompt_target": image}
  cost = jax.jit(make_train_step(model, tx, twin)).lower(state, batch).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["flops"])


def mfu(flops_per_step: float, step_time_s: float, num_devices: int,
        peak_tflops_per_device: Optional[float]) -> Optional[float]:
  """Model FLOPs utilisation: achieved FLOP/s over the devices' peak (None without a peak)."""
  if not peak_tflops_per_device or step_time_s <= 0:
    return None
  return flops_per_step / step_time_s / (num_devices * peak_tflops_per_device * 1e12)


def memory_analysis(compiled) -> dict[str, int]:
  """Bytes per device of a compiled program, as XLA's buffer assignment counts them: arguments,
  outputs, temporaries, arguments aliased by outputs (donated), generated code; {} where the
  backend reports none."""
  try:
    stats = compiled.memory_analysis()
  except (NotImplementedError, RuntimeError):
    return {}
  if stats is None:
    return {}
  fields = {"arguments": "argument_size_in_bytes", "outputs": "output_size_in_bytes",
            "temporaries": "temp_size_in_bytes", "aliased": "alias_size_in_bytes",
            "code": "generated_code_size_in_bytes"}
  return {name: int(getattr(stats, attr, 0) or 0) for name, attr in fields.items()}


class Chrono:
  """Where a run's wall time went (big_vision's `Chrono` in spirit): the time spent in
  `measure(category)` blocks, per category, and the rest of the run's time as productive
  steps.

  Categories: `setup` (state, pipeline and evaluation samples before the loop), `compile`,
  `data_wait` (the loop waiting for the host pipeline), `checkpointing`, `evaluation`. With
  asynchronous dispatch the loop's own time is the devices' time, so what no category claims
  is the time the devices spent on training steps.
  """

  CATEGORIES = ("setup", "compile", "data_wait", "checkpointing", "evaluation")

  def __init__(self, clock=time.monotonic):
    self._clock = clock
    self.start = clock()
    self.spent = dict.fromkeys(self.CATEGORIES, 0.0)

  @contextlib.contextmanager
  def measure(self, category: str) -> Iterator[None]:
    """Counts the block's wall time to `category`."""
    self.add(category, 0.0)  # an unknown category fails before the block runs
    begin = self._clock()
    try:
      yield
    finally:
      self.spent[category] += self._clock() - begin

  def add(self, category: str, seconds: float) -> None:
    """Counts `seconds` measured elsewhere to `category`."""
    if category not in self.spent:
      raise ValueError(f"unknown category {category!r}; one of {self.CATEGORIES}")
    self.spent[category] += seconds

  def snapshot(self) -> tuple[float, dict[str, float]]:
    """(now, the time spent per category so far): two snapshots delimit an interval."""
    return self._clock(), dict(self.spent)

  def summary(self) -> dict[str, float]:
    """`goodput/<category>_s`, `goodput/productive_steps_s`, `goodput/total_s` and
    `goodput/fraction` (productive over total) since the start."""
    total = max(self._clock() - self.start, 1e-9)
    productive = max(total - sum(self.spent.values()), 0.0)
    row = {f"goodput/{k}_s": v for k, v in self.spent.items()}
    row.update({"goodput/productive_steps_s": productive, "goodput/total_s": total,
                "goodput/fraction": productive / total})
    return row


def step_metrics(flops_per_step: float, steps: int, busy_s: float, data_wait_s: float,
                 batch_size: int, num_devices: int,
                 peak_tflops_per_device: Optional[float]) -> dict[str, float]:
  """The `perf/*` row of a log interval of `steps` steps that took `busy_s` seconds of
  training (the interval's wall time less its evaluation, checkpointing and compilation), of
  which `data_wait_s` waiting for data."""
  if steps <= 0 or busy_s <= 0:
    return {}
  step_time = busy_s / steps
  row = {
      "perf/step_time_s": step_time,
      "perf/images_per_s_per_device": batch_size / step_time / num_devices,
      "perf/data_wait_fraction": min(max(data_wait_s / busy_s, 0.0), 1.0),
  }
  if flops_per_step > 0:
    row["perf/tflops_per_device"] = flops_per_step / step_time / num_devices / 1e12
    utilisation = mfu(flops_per_step, step_time, num_devices, peak_tflops_per_device)
    if utilisation is not None:
      row["perf/mfu"] = utilisation
  return row
