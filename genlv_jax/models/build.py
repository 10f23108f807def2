"""Config -> model: the one place that reads `config.model` into a GenLV module."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genlv_jax.models import cpu_kernels
from genlv_jax.models.genlv import GenLV

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def compute_dtype(name: str) -> Any:
  """Maps a config's `dtype` string to a jnp dtype (params stay float32 whatever it is)."""
  try:
    return _DTYPES[name]
  except KeyError:
    raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {name!r}") from None


def resolve_implementations(depthwise_impl: str, window_impl: str) -> tuple[str, str]:
  """"auto" picks the CPU shortcuts on CPU and the library calls on GPU/TPU (same function).

  On XLA:CPU the grouped conv and the patches op are ~25x slower than the shortcuts
  (shared/PERF.md); on accelerators the library calls are fast and need less memory
  (launch/README.md measured ~40 % less activation memory for Huge). On a single CPU device
  the depthwise conv uses the compiled kernel when it builds; with several devices the
  shifted form stays, because XLA's partitioner cannot split an FFI call along the batch.
  """
  on_cpu = jax.default_backend() == "cpu"
  if depthwise_impl == "auto":
    if not on_cpu:
      depthwise_impl = "grouped"
    elif jax.device_count() == 1 and cpu_kernels.available():
      depthwise_impl = "cpu_kernel"
    else:
      depthwise_impl = "shifted"
  if window_impl == "auto":
    window_impl = "reshape" if on_cpu else "patches"
  return depthwise_impl, window_impl


def build_model(config: Any) -> GenLV:
  """Builds the GenLV module from a config with a `model` section and top-level `dtype`, `remat`."""
  m = config.model
  depthwise_impl, window_impl = resolve_implementations(m.depthwise_impl, m.window_impl)
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
      depthwise_impl=depthwise_impl,
      window_impl=window_impl,
  )
