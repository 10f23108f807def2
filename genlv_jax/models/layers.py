"""Primitive layers of the backbone and the prompt encoder, NHWC.

Each layer owns its parameters (named and laid out so that the PyTorch names map onto them
segment by segment, `bridge/convert.py`) and says what it computes; how the computation runs
on this backend is the ops layer's choice (`models/ops.py`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from genlv_jax.models import ops

Dtype = Any

# PyTorch's Conv2d/Linear default init is kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), +...).
torch_default_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class LayerNorm(nn.Module):
  """LayerNorm over channels with `weight` and `bias`, eps 1e-5, biased variance.

  Both of the authors' norms: Restormer's `WithBias_LayerNorm` and `nn.LayerNorm` compute the
  same function. Statistics in float32 whatever the compute dtype.
  """

  epsilon: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    weight = self.param("weight", nn.initializers.ones, (channels,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (channels,), jnp.float32)
    return ops.layer_norm(x, weight, bias, self.epsilon).astype(self.dtype)


class Dense(nn.Module):
  """A linear map over the channel axis: a 1x1 convolution or an `nn.Linear`.

  Params `kernel` (C_in, C_out) and optional `bias`, as `nn.Dense`; PyTorch's default init.
  `parts` > 1 returns the output split into that many equal channel groups (a fused q/k/v
  projection), each computed as its own matmul: splitting one wide output along its minor
  axis costs XLA:CPU a strided copy per part, and operands sliced that way fall off its fast
  matmul path.
  """

  features: int
  use_bias: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, parts: int = 1):
    kernel = self.param("kernel", torch_default_init, (x.shape[-1], self.features), jnp.float32)
    bias = (self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            if self.use_bias else None)
    x = x.astype(self.dtype)
    kernels = jnp.split(kernel.astype(self.dtype), parts, axis=1)
    biases = [None] * parts if bias is None else jnp.split(bias.astype(self.dtype), parts)
    outputs = tuple(ops.channel_matmul(x, k) if b is None else ops.channel_matmul(x, k) + b
                    for k, b in zip(kernels, biases))
    return outputs[0] if parts == 1 else outputs


class Conv3x3(nn.Module):
  """A 3x3 convolution, stride 1, zero padding 1 (PyTorch's `Conv2d(.., 3, 1, 1)`); kernel HWIO."""

  features: int
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  kernel_init: Any = torch_default_init

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (3, 3, x.shape[-1], self.features),
                        jnp.float32)
    y = ops.conv3x3(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


class DepthwiseConv3x3(nn.Module):
  """Depthwise 3x3 convolution, zero padding 1; kernel stored as (3, 3, 1, C) like a grouped conv.

  `gelu_gate`: return GDFN's gate on the output, gelu(y[..., :C/2]) * y[..., C/2:].
  Called with several inputs, it is the conv of their channel concatenation, returned as the
  same parts (`Dense(..., parts=n)`'s outputs stay separate, never concatenated).
  """

  use_bias: bool = False
  dtype: Dtype = jnp.float32
  gelu_gate: bool = False

  @nn.compact
  def __call__(self, *xs: jax.Array):
    widths = [x.shape[-1] for x in xs]
    channels = sum(widths)
    # fan_in of a depthwise kernel is 9 (one input channel per group).
    kernel = self.param("kernel", torch_default_init, (3, 3, 1, channels), jnp.float32)
    bias = (self.param("bias", nn.initializers.zeros, (channels,), jnp.float32)
            if self.use_bias else None)
    kernel = kernel[:, :, 0, :].astype(self.dtype)
    if self.gelu_gate:
      if len(xs) != 1:
        raise ValueError("the gated depthwise conv takes one input")
      return ops.gated_depthwise_conv3x3(xs[0].astype(self.dtype), kernel, bias)
    outputs, start = [], 0
    for x, width in zip(xs, widths):
      y = ops.depthwise_conv3x3(x.astype(self.dtype), kernel[..., start:start + width])
      if bias is not None:
        y = y + bias[start:start + width].astype(self.dtype)
      outputs.append(y)
      start += width
    return outputs[0] if len(xs) == 1 else tuple(outputs)


def pixel_unshuffle(x: jax.Array, factor: int) -> jax.Array:
  """(B, H, W, C) -> (B, H/r, W/r, C*r*r), channel index c*r*r + i*r + j as in torch.PixelUnshuffle."""
  b, h, w, c = x.shape
  r = factor
  x = x.reshape(b, h // r, r, w // r, r, c)           # b, h', i, w', j, c
  x = x.transpose(0, 1, 3, 5, 2, 4)                    # b, h', w', c, i, j
  return x.reshape(b, h // r, w // r, c * r * r)


def pixel_shuffle(x: jax.Array, factor: int) -> jax.Array:
  """(B, H, W, C*r*r) -> (B, H*r, W*r, C), the inverse of `pixel_unshuffle` (torch.PixelShuffle)."""
  b, h, w, crr = x.shape
  r = factor
  c = crr // (r * r)
  x = x.reshape(b, h, w, c, r, r)                      # b, h, w, c, i, j
  x = x.transpose(0, 1, 4, 2, 5, 3)                    # b, h, i, w, j, c
  return x.reshape(b, h * r, w * r, c)


class Downsample(nn.Module):
  """conv3x3 C -> C/2 (no bias), then pixel-unshuffle(2): half the resolution, twice the width."""

  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return pixel_unshuffle(Conv3x3(x.shape[-1] // 2, False, self.dtype, name="conv")(x), 2)


class Upsample(nn.Module):
  """conv3x3 C -> 2C (no bias), then pixel-shuffle(2): twice the resolution, half the width."""

  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return pixel_shuffle(Conv3x3(x.shape[-1] * 2, False, self.dtype, name="conv")(x), 2)
