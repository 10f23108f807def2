"""The attention layers: channel attention (MDTA), overlapping-window attention (OCAB) and the
token attention of GenLV's bottleneck (`SpatCrossAttn`: global self-attention, or
cross-attention to the encoded prompts). NHWC in and out; logits and softmax in float32."""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from genlv_jax.errors import UserError
from genlv_jax.models import ops
from genlv_jax.models.layers import Dense, DepthwiseConv3x3

Dtype = Any


class ChannelAttention(nn.Module):
  """Multi-Dconv-head Transposed Attention (Restormer's MDTA, the authors' `MDTA`).

  Attention runs across channels: a (C/heads x C/heads) map per head, from q and k that are
  L2-normalised over the spatial axis, scaled by a learned per-head temperature; q, k and v
  are each a 1x1 conv followed by a depthwise 3x3 conv (one fused `qkv` and `qkv_dwconv`).
  """

  num_heads: int
  use_bias: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    heads = self.num_heads
    temperature = self.param("temperature", nn.initializers.ones, (heads,), jnp.float32)
    q, k, v = Dense(3 * c, self.use_bias, self.dtype, name="qkv")(x, parts=3)
    q, k, v = DepthwiseConv3x3(self.use_bias, self.dtype, name="qkv_dwconv")(q, k, v)
    # Channel layout is (head, c) as in the PyTorch `b (head c) h w` rearrange.
    q, k, v = (t.reshape(b, h * w, heads, c // heads) for t in (q, k, v))

    # Not `ops.dot_product_attention`: the "sequence" here is the channel axis and the
    # contraction runs over all H*W pixels, a shape no fused attention kernel takes.
    # q.k / (|q| |k|) is the reference's product of L2-normalised q and k (F.normalize over
    # the pixels, eps 1e-12), with the norms applied to the (C/heads)^2 logits per head
    # instead of to the (H*W, C) activations: two passes over the activations fewer.
    def norm(t):  # (b, heads, C/heads)
      return jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(t.astype(jnp.float32)), axis=1)), 1e-12)

    logits = jnp.einsum("bnhc,bnhd->bhcd", q, k, preferred_element_type=jnp.float32)
    logits = logits / (norm(q)[..., :, None] * norm(k)[..., None, :])
    attn = jax.nn.softmax(logits * temperature[None, :, None, None], axis=-1).astype(self.dtype)
    out = jnp.einsum("bhcd,bnhd->bnhc", attn, v).reshape(b, h, w, c)
    return Dense(c, self.use_bias, self.dtype, name="project_out")(out)


def relative_position_index(block_size: int, rel_size: int) -> np.ndarray:
  """Index into a (2*rel_size-1)-row table for query offset y (< block_size) and key offset j.

  X-Restormer's `rel_to_abs` pads, flattens and reshapes the (y, 2r-1) logits so that query y
  sees row `j - y + r - 1` for key column j; we take those rows of the table directly (a static
  gather on the parameter instead of a reshuffle of the activations).
  """
  y = np.arange(block_size)[:, None]
  j = np.arange(rel_size)[None, :]
  return j - y + rel_size - 1


class OverlappingWindowAttention(nn.Module):
  """Overlapping Cross-Attention (X-Restormer's and the authors' `OCAB`): each ws x ws query
  window attends to the enlarged ows x ows key/value window around it (ows = ws * (1 + overlap)),
  with learned relative position logits (`RelPosEmb`: one table for height, one for width)."""

  num_heads: int
  window_size: int = 8
  overlap_ratio: float = 0.5
  dim_head: int = 16
  use_bias: bool = False
  dtype: Dtype = jnp.float32

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

    q, k, v = Dense(3 * inner, self.use_bias, self.dtype, name="qkv")(x, parts=3)
    windows = b * nh * nw
    # Queries: (windows, x, y, heads, d), pre-scaled as the reference does, so that the
    # relative logits below see the scaled queries too.
    q = q.reshape(b, nh, ws, nw, ws, heads, d).transpose(0, 1, 3, 2, 4, 5, 6)
    q = q.reshape(windows, ws, ws, heads, d) * jnp.asarray(d ** -0.5, self.dtype)
    k, v = (ops.overlapping_windows(t, ws, ows - ws).reshape(windows, ows * ows, heads, d)
            for t in (k, v))

    index = relative_position_index(ws, ows)                        # (ws, ows)
    rel_h = rel_height[index].astype(self.dtype)                    # (query row, key row, d)
    rel_w = rel_width[index].astype(self.dtype)                     # (query col, key col, d)
    logits_h = jnp.einsum("bxyhd,xid->bhxyi", q, rel_h, preferred_element_type=jnp.float32)
    logits_w = jnp.einsum("bxyhd,yjd->bhxyj", q, rel_w, preferred_element_type=jnp.float32)
    rel = (logits_h[..., :, None] + logits_w[..., None, :])         # (., heads, x, y, i, j)
    rel = rel.reshape(windows, heads, ws * ws, ows * ows)
    out = ops.dot_product_attention(q.reshape(windows, ws * ws, heads, d), k, v,
                                    scale=1.0, bias=rel)
    out = out.reshape(b, nh, nw, ws, ws, inner).transpose(0, 1, 3, 2, 4, 5).reshape(b, h, w, inner)
    return Dense(c, self.use_bias, self.dtype, name="project_out")(out)


class SpatCrossAttn(nn.Module):
  """Multi-head attention over tokens (the authors' `SpatCrossAttn`).

  Queries from x; keys and values from x (global self-attention over all latent tokens) or,
  given `context_k` and `context_v`, from the encoded prompt source and target (the prompt
  cross-attention). q/k/v are linear maps without bias, the output one with bias; scale
  (C / heads) ** -0.5. The prompts may hold another number of tokens than x.
  """

  num_heads: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, context_k: Optional[jax.Array] = None,
               context_v: Optional[jax.Array] = None) -> jax.Array:
    b, h, w, c = x.shape
    heads = self.num_heads
    if c % heads:
      raise UserError(f"width {c} is not divisible by {heads} heads")
    dh = c // heads
    context_k = x if context_k is None else context_k
    context_v = x if context_v is None else context_v

    def tokens(t):  # (B, ..., C) -> (B, N, heads, dh)
      return t.reshape(t.shape[0], -1, heads, dh)

    q = tokens(Dense(c, False, self.dtype, name="to_q")(x))
    k = tokens(Dense(c, False, self.dtype, name="to_k")(context_k.astype(self.dtype)))
    v = tokens(Dense(c, False, self.dtype, name="to_v")(context_v.astype(self.dtype)))
    out = ops.dot_product_attention(q, k, v, scale=dh ** -0.5).reshape(b, h, w, c)
    return Dense(c, True, self.dtype, name="to_out")(out)
