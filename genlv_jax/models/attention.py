"""The three attention layers of GenLV: channel (MDTA), overlapping-window spatial (OCA), prompt
cross-attention (PCA). NHWC in and out; softmax and normalisation statistics in float32."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from genlv_jax.models.layers import DepthwiseConv3x3, pointwise_conv

Dtype = Any


def _softmax_f32(logits: jax.Array) -> jax.Array:
  return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


class ChannelAttention(nn.Module):
  """Multi-Dconv-head Transposed Attention (Restormer's MDTA; X-Restormer's `ChannelAttention`).

  Attention runs across channels: a (C/heads x C/heads) map per head, from q and k that are
  L2-normalised over the spatial axis, scaled by a learned per-head temperature.
  """

  num_heads: int
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  depthwise_impl: str = "shifted"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    heads = self.num_heads
    temperature = self.param("temperature", nn.initializers.ones, (heads,), jnp.float32)
    qkv = pointwise_conv(3 * c, self.use_bias, self.dtype, "qkv")(x)
    qkv = DepthwiseConv3x3(self.use_bias, self.dtype, self.depthwise_impl, name="qkv_dwconv")(qkv)
    q, k, v = jnp.split(qkv.reshape(b, h * w, 3 * c), 3, axis=-1)
    # Channel layout is (head, c) as in the PyTorch `b (head c) h w` rearrange.
    q, k, v = (t.reshape(b, h * w, heads, c // heads) for t in (q, k, v))

    def l2_normalise(t):  # torch.nn.functional.normalize over the spatial axis, eps 1e-12
      t = t.astype(jnp.float32)
      norm = jnp.sqrt(jnp.sum(jnp.square(t), axis=1, keepdims=True))
      return (t / jnp.maximum(norm, 1e-12)).astype(self.dtype)

    q, k = l2_normalise(q), l2_normalise(k)
    logits = jnp.einsum("bnhc,bnhd->bhcd", q, k, preferred_element_type=jnp.float32)
    attn = _softmax_f32(logits * temperature[None, :, None, None]).astype(self.dtype)
    out = jnp.einsum("bhcd,bnhd->bnhc", attn, v).reshape(b, h, w, c)
    return pointwise_conv(c, self.use_bias, self.dtype, "project_out")(out)


def relative_position_index(block_size: int, rel_size: int) -> np.ndarray:
  """Index into a (2*rel_size-1)-row table for query offset y (< block_size) and key offset j.

  X-Restormer's `rel_to_abs` pads, flattens and reshapes the (y, 2r-1) logits so that query y
  sees row `j - y + r - 1` for key column j; we take those rows of the table directly (a static
  gather on the parameter instead of a reshuffle of the activations).
  """
  y = np.arange(block_size)[:, None]
  j = np.arange(rel_size)[None, :]
  return j - y + rel_size - 1


def overlapping_windows(x: jax.Array, window_size: int, overlap_size: int,
                        implementation: str = "reshape") -> jax.Array:
  """Key/value windows of `window_size + overlap_size`, stride `window_size`, zero padding overlap/2.

  (B, H, W, C) -> (B, H/ws, W/ws, ows, ows, C), token order row-major within a window, as
  torch's `nn.Unfold(kernel=ows, stride=ws, padding=overlap/2)`. "reshape" pads, splits into
  ws-blocks and appends the next block's first `overlap` rows/cols (fast on CPU); "patches" is
  `lax.conv_general_dilated_patches` (a library call, for GPU/TPU).
  """
  b, h, w, c = x.shape
  ws, ows = window_size, window_size + overlap_size
  pad = overlap_size // 2
  nh, nw = h // ws, w // ws
  if implementation == "patches":
    patches = jax.lax.conv_general_dilated_patches(
        x, filter_shape=(ows, ows), window_strides=(ws, ws), padding=((pad, pad), (pad, pad)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    # Patch features come out ordered (channel, row, col).
    return patches.reshape(b, nh, nw, c, ows, ows).transpose(0, 1, 2, 4, 5, 3)
  if implementation != "reshape":
    raise ValueError(f"unknown window implementation {implementation!r}")
  if overlap_size > ws:
    raise ValueError("the reshape implementation needs overlap <= window size")
  x = jnp.pad(x, ((0, 0), (pad, ws - pad), (pad, ws - pad), (0, 0)))  # (B, (nh+1)ws, (nw+1)ws, C)
  x = x.reshape(b, nh + 1, ws, (nw + 1) * ws, c)
  x = jnp.concatenate([x[:, :nh], x[:, 1:, :overlap_size]], axis=2)       # rows: (B, nh, ows, ., C)
  x = x.reshape(b, nh, ows, nw + 1, ws, c)
  x = jnp.concatenate([x[:, :, :, :nw], x[:, :, :, 1:, :overlap_size]], axis=4)  # (B,nh,ows,nw,ows,C)
  return x.transpose(0, 1, 3, 2, 4, 5)


class OverlappingWindowAttention(nn.Module):
  """Overlapping Cross-Attention (OCA, X-Restormer's `OCAB`): each non-overlapping ws x ws query
  window attends to the enlarged ows x ows key/value window around it, with learned relative
  position logits (X-Restormer's `RelPosEmb`: one table for height, one for width)."""

  num_heads: int
  window_size: int = 8
  overlap_ratio: float = 0.5
  dim_head: int = 16
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  window_impl: str = "reshape"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    ws, heads, d = self.window_size, self.num_heads, self.dim_head
    ows = int(ws * self.overlap_ratio) + ws
    inner = heads * d
    nh, nw = h // ws, w // ws
    if h % ws or w % ws:
      raise ValueError(f"feature map {h}x{w} is not a multiple of the window size {ws}")

    table_init = nn.initializers.normal(stddev=d ** -0.5)  # torch.randn(...) * dim_head**-0.5
    rel_height = self.param("rel_height", table_init, (2 * ows - 1, d), jnp.float32)
    rel_width = self.param("rel_width", table_init, (2 * ows - 1, d), jnp.float32)

    qkv = pointwise_conv(3 * inner, self.use_bias, self.dtype, "qkv")(x)
    q, k, v = jnp.split(qkv, 3, axis=-1)
    q = q.reshape(b, nh, ws, nw, ws, heads, d).transpose(0, 1, 3, 5, 2, 4, 6)  # b,nh,nw,head,x,y,d
    q = q * jnp.asarray(d ** -0.5, self.dtype)
    k, v = (overlapping_windows(t, ws, ows - ws, self.window_impl)
            .reshape(b, nh, nw, ows * ows, heads, d) for t in (k, v))

    logits = jnp.einsum("bmnhxyd,bmnkhd->bmnhxyk", q, k, preferred_element_type=jnp.float32)
    index = relative_position_index(ws, ows)                        # (ws, ows)
    rel_h = rel_height[index].astype(self.dtype)                    # (query row, key row, d)
    rel_w = rel_width[index].astype(self.dtype)                     # (query col, key col, d)
    logits_h = jnp.einsum("bmnhxyd,xid->bmnhxyi", q, rel_h, preferred_element_type=jnp.float32)
    logits_w = jnp.einsum("bmnhxyd,yjd->bmnhxyj", q, rel_w, preferred_element_type=jnp.float32)
    rel = logits_h[..., :, None] + logits_w[..., None, :]          # (..., x, y, key row, key col)
    logits = logits + rel.reshape(logits.shape)
    attn = _softmax_f32(logits).astype(self.dtype)
    out = jnp.einsum("bmnhxyk,bmnkhd->bmxnyhd", attn, v).reshape(b, h, w, inner)
    return pointwise_conv(c, self.use_bias, self.dtype, "project_out")(out)


class PromptCrossAttention(nn.Module):
  """Prompt cross-attention (PCA, papers Sec. III-B.4 / 3.3): queries from the image latent, keys
  from the encoded prompt source z_S, values from the encoded prompt target z_T, multi-head
  scaled dot-product over all prompt tokens (the prompt may differ in size from the input)."""

  num_heads: int
  use_bias: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, z_source: jax.Array, z_target: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    heads = self.num_heads
    if c % heads:
      raise ValueError(f"width {c} is not divisible by {heads} prompt heads")
    dh = c // heads
    q = pointwise_conv(c, self.use_bias, self.dtype, "to_q")(x).reshape(b, h * w, heads, dh)
    k = pointwise_conv(c, self.use_bias, self.dtype, "to_k")(z_source)
    v = pointwise_conv(c, self.use_bias, self.dtype, "to_v")(z_target)
    k, v = (t.reshape(b, -1, heads, dh) for t in (k, v))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
    attn = _softmax_f32(logits * dh ** -0.5).astype(self.dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, h, w, c)
    return pointwise_conv(c, self.use_bias, self.dtype, "project_out")(out)
