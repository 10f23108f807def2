"""Helpers shared by the PyTorch-bridge tests: weights moved off their init values, NHWC<->NCHW."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from genlv_jax.models.params import flatten_params, unflatten_params

# The test machines are small and shared: two OpenMP threads competing with other processes
# for two cores make every torch op wait on a descheduled thread (10-20x slower). One thread
# keeps the PyTorch reference's time predictable; it changes no result.
torch.set_num_threads(1)


def _perturbed(name: str, value: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Init values (LayerNorm 1/0, temperature 1, zero biases) hide layout bugs: randomise them."""
  leaf = name.replace(".", "/").rsplit("/", 1)[-1]
  if leaf == "temperature":
    out = rng.uniform(0.5, 2.0, value.shape)
  elif leaf == "weight" and value.ndim == 1:                 # LayerNorm scale
    out = 1.0 + rng.normal(0.0, 0.2, value.shape)
  elif leaf == "bias":
    out = rng.normal(0.0, 0.1, value.shape)
  elif leaf in ("rel_height", "rel_width"):
    out = value + rng.normal(0.0, 0.3, value.shape)
  else:                                                      # conv kernels: already random
    out = value * (1.0 + rng.normal(0.0, 0.1, value.shape))
  return np.asarray(out, np.float32)


def perturb_params(params: Any, seed: int = 0) -> dict:
  """A Flax params tree with every leaf moved away from its init value (float32 numpy)."""
  rng = np.random.default_rng(seed)
  flat = flatten_params(params)
  return unflatten_params(
      {k: _perturbed(k, np.asarray(v, np.float32), rng) for k, v in sorted(flat.items())})


def perturb_state_dict(state_dict: Mapping[str, torch.Tensor], seed: int = 0) -> dict:
  """A PyTorch state dict with every tensor moved away from its init value."""
  rng = np.random.default_rng(seed)
  return {k: torch.from_numpy(_perturbed(k, v.numpy(), rng)) for k, v in sorted(state_dict.items())}


def to_torch(x: np.ndarray) -> torch.Tensor:
  """NHWC numpy -> NCHW float32 tensor."""
  return torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2)))


def from_torch(x: torch.Tensor) -> np.ndarray:
  """NCHW tensor -> NHWC numpy."""
  return x.detach().numpy().transpose(0, 2, 3, 1)


def load_into_torch(module: torch.nn.Module, state_dict: Mapping[str, np.ndarray]) -> None:
  """Loads a numpy state dict with strict=True (so every name must line up)."""
  module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()},
                         strict=True)
