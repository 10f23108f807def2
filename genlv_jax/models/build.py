"""Config -> model: the one place that reads `config.model` into a GenLV module."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from genlv_jax.models.genlv import GenLV

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def compute_dtype(name: str) -> Any:
  """Maps a config's `dtype` string to a jnp dtype (params stay float32 whatever it is)."""
  try:
    return _DTYPES[name]
  except KeyError:
    raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {name!r}") from None


def build_model(config: Any) -> GenLV:
  """Builds the GenLV module from a config with a `model` section and top-level `dtype`, `remat`."""
  m = config.model
  return GenLV(
      dim=m.dim,
      num_blocks=tuple(m.num_blocks),
      num_refinement_blocks=m.num_refinement_blocks,
      channel_heads=tuple(m.channel_heads),
      spatial_heads=tuple(m.spatial_heads),
      overlap_ratio=m.overlap_ratio,
      window_size=m.window_size,
      spatial_dim_head=m.spatial_dim_head,
      ffn_expansion_factor=m.ffn_expansion_factor,
      bias=m.bias,
      scale=m.scale,
      use_prompt=m.use_prompt,
      prompt_channels=m.prompt_channels,
      prompt_blocks=m.prompt_blocks,
      prompt_heads=m.prompt_heads,
      prompt_attn_position=m.prompt_attn_position,
      dtype=compute_dtype(config.dtype),
      remat=config.remat,
      scan_blocks=m.scan_blocks,
      depthwise_impl=m.depthwise_impl,
      window_impl=m.window_impl,
  )
