"""Config -> model: the one place that reads `config.model` and `config.ops` into a module."""

from __future__ import annotations

from typing import Any, Union

import jax.numpy as jnp

from genlv_jax.errors import UserError
from genlv_jax.models import ops
from genlv_jax.models.genlv import GenLV, XRestormer

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def compute_dtype(name: str) -> Any:
  """Maps a config's `dtype` string to a jnp dtype (params stay float32 whatever it is)."""
  try:
    return _DTYPES[name]
  except KeyError:
    raise UserError(f"dtype must be one of {sorted(_DTYPES)}, got {name!r}") from None


def build_model(config: Any) -> Union[GenLV, XRestormer]:
  """GenLV (`model.use_prompt`) or X-Restormer from a config with `model`, `ops`, `dtype`, `remat`.

  The ops choice is validated here and resolved when the model is first traced.
  """
  m = config.model
  common = dict(
      dim=m.dim, num_blocks=tuple(m.num_blocks), num_refinement_blocks=m.num_refinement_blocks,
      heads=tuple(m.heads), window_size=m.window_size, overlap_ratio=m.overlap_ratio,
      spatial_dim_head=m.spatial_dim_head, ffn_expansion_factor=m.ffn_expansion_factor,
      bias=m.bias, dtype=compute_dtype(config.dtype), remat=config.remat,
      scan_blocks=m.scan_blocks, implementations=ops.from_config(config.get("ops")))
  if m.use_prompt:
    if m.scale != 1:
      raise UserError("GenLV has no built-in upsampling: model.scale must be 1")
    return GenLV(prompt_encoder_width=m.prompt_encoder_width, **common)
  return XRestormer(scale=m.scale, **common)
