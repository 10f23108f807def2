"""The blocks of the U-Net and the sequence of identical blocks that makes one level.

`TransformerBlock` (X-Restormer's, every encoder/decoder level): TSAB then SSAB, pre-norm:
    x += MDTA(LN1(x)); x += GDFN(LN2(x)); x += OCAB(LN3(x)); x += GDFN(LN4(x)).
`SpatCrossAttnBlock` (GenLV's bottleneck, the authors' class of that name):
    x += MDTA(LN1(x)); x += GDFN(LN2(x));
    x += SelfAttn(LN3(x))                 global, over all latent tokens
    x += CrossAttn(LN4(x), z_S, z_T)      keys from the prompt source, values from the target
    x = LN5(x); x += GDFN(x)              a post-norm on the stream, then GDFN without pre-norm
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from flax import linen as nn

from genlv_jax.models.attention import (ChannelAttention, OverlappingWindowAttention,
                                        SpatCrossAttn)
from genlv_jax.models.layers import Dense, DepthwiseConv3x3, LayerNorm

Dtype = Any


class GatedDconvFeedForward(nn.Module):
  """GDFN: 1x1 conv C -> 2h, depthwise 3x3, gelu(x1) * x2, 1x1 conv h -> C; h = int(C * factor)."""

  expansion_factor: float = 2.66
  use_bias: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    hidden = int(c * self.expansion_factor)
    y = Dense(2 * hidden, self.use_bias, self.dtype, name="project_in")(x)
    y = DepthwiseConv3x3(self.use_bias, self.dtype, gelu_gate=True, name="dwconv")(y)
    return Dense(c, self.use_bias, self.dtype, name="project_out")(y)


class TransformerBlock(nn.Module):
  """TSAB + SSAB: channel attention and overlapping-window attention, each with its GDFN."""

  num_heads: int
  window_size: int = 8
  overlap_ratio: float = 0.5
  spatial_dim_head: int = 16
  ffn_expansion_factor: float = 2.66
  use_bias: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    norm = lambda name: LayerNorm(dtype=self.dtype, name=name)  # noqa: E731
    ffn = lambda name: GatedDconvFeedForward(  # noqa: E731
        self.ffn_expansion_factor, self.use_bias, self.dtype, name=name)
    x = x.astype(self.dtype)
    x = x + ChannelAttention(self.num_heads, self.use_bias, self.dtype,
                             name="channel_attn")(norm("norm1")(x))
    x = x + ffn("channel_ffn")(norm("norm2")(x))
    x = x + OverlappingWindowAttention(
        self.num_heads, self.window_size, self.overlap_ratio, self.spatial_dim_head,
        self.use_bias, self.dtype, name="spatial_attn")(norm("norm3")(x))
    return x + ffn("spatial_ffn")(norm("norm4")(x))


class SpatCrossAttnBlock(nn.Module):
  """GenLV's bottleneck block: channel attention, global self-attention, prompt cross-attention.

  Call with the latent x (B, h, w, C) and the encoded prompts z_S, z_T (B, h', w', C).
  """

  num_heads: int
  ffn_expansion_factor: float = 2.66
  use_bias: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, z_source: jax.Array, z_target: jax.Array) -> jax.Array:
    norm = lambda name: LayerNorm(dtype=self.dtype, name=name)  # noqa: E731
    ffn = lambda name: GatedDconvFeedForward(  # noqa: E731
        self.ffn_expansion_factor, self.use_bias, self.dtype, name=name)
    x = x.astype(self.dtype)
    x = x + ChannelAttention(self.num_heads, self.use_bias, self.dtype,
                             name="channel_attn")(norm("norm1")(x))
    x = x + ffn("channel_ffn")(norm("norm2")(x))
    x = x + SpatCrossAttn(self.num_heads, self.dtype, name="spatial_attn")(norm("norm3")(x))
    x = x + SpatCrossAttn(self.num_heads, self.dtype, name="cross_attn")(
        norm("norm4")(x), z_source, z_target)
    x = norm("norm5")(x)
    return x + ffn("spatial_ffn")(x)


class _ScanBody(nn.Module):
  """Adapts a block to `nn.scan`'s (carry, x) -> (carry, y) calling convention."""

  block_cls: Any
  block_kwargs: dict

  @nn.compact
  def __call__(self, x: jax.Array, *context: jax.Array):
    block = self.block_cls(**self.block_kwargs)
    nn.share_scope(self, block)  # the block's params sit directly under `blocks/`
    return block(x, *context), None


class BlockSequence(nn.Module):
  """`num_blocks` identical blocks (`block_cls(**block_kwargs)`): one level of the U-Net.

  Unrolled, the blocks are children `block_0 … block_{n-1}`; with `scan=True` they are one
  child `blocks` whose params carry a leading axis of length n (one compiled body per level,
  which keeps compile time flat on pods). `remat` recomputes each block's activations in the
  backward pass. Neither option changes the function. Extra call arguments (the encoded
  prompts) are passed unchanged to every block.
  """

  block_cls: Any
  num_blocks: int
  block_kwargs: dict
  scan: bool = False
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, *context: jax.Array) -> jax.Array:
    if self.scan:
      body = _ScanBody
      if self.remat:
        # Inside scan CSE cannot merge the recomputation away, so prevent_cse is not needed.
        body = nn.remat(body, prevent_cse=False)
      scanned = nn.scan(body, variable_axes={"params": 0}, split_rngs={"params": True},
                        in_axes=(nn.broadcast,) * len(context), length=self.num_blocks)
      x, _ = scanned(self.block_cls, self.block_kwargs, name="blocks")(x, *context)
      return x
    block_cls = nn.remat(self.block_cls) if self.remat else self.block_cls
    for i in range(self.num_blocks):
      x = block_cls(**self.block_kwargs, name=f"block_{i}")(x, *context)
    return x
