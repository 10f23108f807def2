"""Performance accounting: the FLOPs of a train step, the published peak rates of accelerators,
and model FLOPs utilisation (MFU), as MaxText and MaxDiffusion report them.

FLOPs come from XLA's cost analysis of the lowered train step of the config's costing twin
(`models.summary.costing_twin`: unrolled, no remat, XLA's own convolutions), so that they count
the model's work once, whatever formulation and memory trade-off the run itself uses.
"""

from __future__ import annotations

from typing import Optional

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
  state = jax.eval_shape(lambda p: create_train_state(p, tx, False),
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
