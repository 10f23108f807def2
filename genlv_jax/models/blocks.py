"""Transformer blocks of the backbone and the sequence of identical blocks that makes one level.

A block is TSAB then SSAB (X-Restormer's `TransformerBlock`), each a pre-norm residual pair:
    x += MDTA(LN1(x)); x += GDFN(LN2(x)); x += OCA(LN3(x)); x += GDFN(LN4(x)).
At GenLV's bottleneck the SSAB becomes a PCAB: a prompt cross-attention sub-layer
x += PCA(LN(x), z_S, z_T) is inserted (position: `prompt_attn_position`).
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from flax import linen as nn

from genlv_jax.models.attention import (ChannelAttention, OverlappingWindowAttention,
                                        PromptCrossAttention)
from genlv_jax.models.layers import DepthwiseConv3x3, LayerNorm, pointwise_conv

Dtype = Any

PROMPT_ATTN_POSITIONS = ("after_spatial_attn", "before_spatial_attn")


class GatedDconvFeedForward(nn.Module):
  """GDFN: 1x1 conv C -> 2h, depthwise 3x3, gelu(x1) * x2, 1x1 conv h -> C; h = int(C * factor)."""

  expansion_factor: float = 2.66
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  depthwise_impl: str = "shifted"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    hidden = int(c * self.expansion_factor)
    y = pointwise_conv(2 * hidden, self.use_bias, self.dtype, "project_in")(x)
    y = DepthwiseConv3x3(self.use_bias, self.dtype, self.depthwise_impl, gelu_gate=True,
                         name="dwconv")(y)
    return pointwise_conv(c, self.use_bias, self.dtype, "project_out")(y)


class TransformerBlock(nn.Module):
  """TSAB + SSAB, or TSAB + PCAB when `prompt_heads` is set (then call with z_S and z_T).

  `scan_carry=True` returns `(x, None)` so that `nn.scan` can iterate the block over a level.
  """

  channel_heads: int
  spatial_heads: int
  window_size: int = 8
  overlap_ratio: float = 0.5
  spatial_dim_head: int = 16
  ffn_expansion_factor: float = 2.66
  use_bias: bool = False
  prompt_heads: Optional[int] = None
  prompt_attn_position: str = "after_spatial_attn"
  dtype: Dtype = jnp.float32
  depthwise_impl: str = "shifted"
  window_impl: str = "reshape"
  scan_carry: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, z_source: Optional[jax.Array] = None,
               z_target: Optional[jax.Array] = None):
    ffn = lambda name: GatedDconvFeedForward(  # noqa: E731
        self.ffn_expansion_factor, self.use_bias, self.dtype, self.depthwise_impl, name=name)
    cpu_kernel = self.depthwise_impl == "cpu_kernel"  # the compiled kernels come together
    norm = lambda name: LayerNorm(dtype=self.dtype, cpu_kernel=cpu_kernel, name=name)  # noqa: E731
    x = x.astype(self.dtype)

    x = x + ChannelAttention(self.channel_heads, self.use_bias, self.dtype, self.depthwise_impl,
                             name="channel_attn")(norm("norm1")(x))
    x = x + ffn("channel_ffn")(norm("norm2")(x))

    def prompt_attention(x):
      pca = PromptCrossAttention(self.prompt_heads, self.use_bias, self.dtype, name="prompt_attn")
      return x + pca(norm("norm_prompt")(x), z_source.astype(self.dtype),
                     z_target.astype(self.dtype))

    with_prompt = self.prompt_heads is not None
    if with_prompt and self.prompt_attn_position not in PROMPT_ATTN_POSITIONS:
      raise ValueError(f"prompt_attn_position must be one of {PROMPT_ATTN_POSITIONS}")
    if with_prompt and self.prompt_attn_position == "before_spatial_attn":
      x = prompt_attention(x)
    x = x + OverlappingWindowAttention(
        self.spatial_heads, self.window_size, self.overlap_ratio, self.spatial_dim_head,
        self.use_bias, self.dtype, self.window_impl, name="spatial_attn")(norm("norm3")(x))
    if with_prompt and self.prompt_attn_position == "after_spatial_attn":
      x = prompt_attention(x)
    x = x + ffn("spatial_ffn")(norm("norm4")(x))
    return (x, None) if self.scan_carry else x


class BlockSequence(nn.Module):
  """`num_blocks` identical TransformerBlocks: one level of the U-Net.

  Unrolled, the blocks are children `block_0 … block_{n-1}`; with `scan=True` they are one
  child `blocks` whose params carry a leading axis of length n (one compiled body per level,
  which is what keeps compile time flat on pods). `remat` recomputes each block's activations
  in the backward pass. Both options leave the function unchanged.
  """

  num_blocks: int
  block_kwargs: dict
  scan: bool = False
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, z_source: Optional[jax.Array] = None,
               z_target: Optional[jax.Array] = None) -> jax.Array:
    with_prompt = z_source is not None
    prompt_args = (z_source, z_target) if with_prompt else ()
    block_cls = TransformerBlock
    if self.remat:
      # Inside scan CSE cannot merge the recomputation away, so prevent_cse is not needed there.
      block_cls = nn.remat(block_cls, prevent_cse=not self.scan)
    if self.scan:
      scanned = nn.scan(
          block_cls, variable_axes={"params": 0}, split_rngs={"params": True},
          in_axes=(nn.broadcast,) * len(prompt_args), length=self.num_blocks)
      x, _ = scanned(**self.block_kwargs, scan_carry=True, name="blocks")(x, *prompt_args)
      return x
    for i in range(self.num_blocks):
      x = block_cls(**self.block_kwargs, name=f"block_{i}")(x, *prompt_args)
    return x
