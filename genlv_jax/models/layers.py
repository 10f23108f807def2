"""Primitive layers of the X-Restormer backbone, NHWC, written for XLA.

Two choices here are about speed, not maths (see shared/PERF.md): a 1x1 convolution is a
matmul over the channel axis (``nn.Dense``), and the depthwise 3x3 convolution defaults to nine
shifted multiply-adds because XLA:CPU's grouped convolution is ~25x slower than PyTorch's.
On CPU the depthwise conv can also run as a compiled kernel through the XLA FFI
(`cpu_kernels`), whose gradient is ~6x faster than the shifted one's. All depthwise
implementations compute the same function and share one parameter layout.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from genlv_jax.models import cpu_kernels

Dtype = Any

# PyTorch's Conv2d default init is kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
torch_conv_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class LayerNorm(nn.Module):
  """LayerNorm over the channel axis with weight and bias (X-Restormer's `WithBias_LayerNorm`).

  Statistics are computed in float32 whatever the compute dtype: biased variance, eps 1e-5.
  `cpu_kernel`: the backward pass runs in the compiled XLA:CPU kernel (`cpu_kernels`).
  """

  epsilon: float = 1e-5
  dtype: Dtype = jnp.float32
  cpu_kernel: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    weight = self.param("weight", nn.initializers.ones, (channels,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (channels,), jnp.float32)
    x32 = x.astype(jnp.float32)
    if self.cpu_kernel and cpu_kernels.available():
      return cpu_kernels.layer_norm(x32, weight, bias, self.epsilon).astype(self.dtype)
    mean = jnp.mean(x32, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
    y = (x32 - mean) * jax.lax.rsqrt(var + self.epsilon) * weight + bias
    return y.astype(self.dtype)


@jax.custom_vjp
def channel_matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """(..., C_in) @ (C_in, C_out) as one 2-D matmul over all positions.

  A custom VJP so that both gradients are plain 2-D matmuls: autodiff of the N-D dot makes
  XLA:CPU materialise (C, B*H*W) transposes of the cotangent, which cost more than the
  matmuls themselves.
  """
  return (x.reshape(-1, x.shape[-1]) @ kernel).reshape(*x.shape[:-1], kernel.shape[-1])


def _channel_matmul_fwd(x, kernel):
  return channel_matmul(x, kernel), (x, kernel)


def _channel_matmul_bwd(residuals, dy):
  x, kernel = residuals
  x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
  dx = (dy2 @ kernel.T).reshape(x.shape)
  dkernel = jnp.matmul(x2.T, dy2, preferred_element_type=jnp.float32).astype(kernel.dtype)
  return dx, dkernel


channel_matmul.defvjp(_channel_matmul_fwd, _channel_matmul_bwd)


class PointwiseConv(nn.Module):
  """A 1x1 convolution as a matmul over channels; params `kernel` (C_in, C_out) and `bias`,
  laid out as `nn.Dense`'s."""

  features: int
  use_bias: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", torch_conv_init, (x.shape[-1], self.features), jnp.float32)
    y = channel_matmul(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


def pointwise_conv(features: int, use_bias: bool, dtype: Dtype, name: str) -> PointwiseConv:
  """A 1x1 convolution, written as a matmul over channels (kernel shape (C_in, C_out))."""
  return PointwiseConv(features, use_bias, dtype, name=name)


class Conv3x3WithKernelGrad(nn.Module):
  """A stride-1 3x3 convolution whose kernel gradient runs in the compiled CPU kernel.

  Same params as `nn.Conv` (`kernel` HWIO, `bias`) and the same forward pass; only the
  kernel gradient differs in how it is computed (`cpu_kernels.conv3x3`).
  """

  features: int
  use_bias: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", torch_conv_init, (3, 3, x.shape[-1], self.features), jnp.float32)
    y = cpu_kernels.conv3x3(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


def conv3x3(features: int, use_bias: bool, dtype: Dtype, name: str, strides: int = 1,
            cpu_kernel: bool = False) -> nn.Module:
  """A 3x3 convolution with PyTorch's zero padding of 1 (kernel HWIO).

  `cpu_kernel`: compute the kernel gradient in the compiled XLA:CPU kernel (5x faster than
  XLA:CPU's at full resolution), where it applies: stride 1 and at least 16 output channels.
  """
  if cpu_kernel and strides == 1 and features >= 16 and cpu_kernels.available():
    return Conv3x3WithKernelGrad(features, use_bias, dtype, name=name)
  return nn.Conv(
      features, kernel_size=(3, 3), strides=(strides, strides), padding=((1, 1), (1, 1)),
      use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32, kernel_init=torch_conv_init,
      name=name)


def _shifted_taps(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """sum_ij pad(x)[i:i+H, j:j+W] * kernel[i, j]: a zero-padded depthwise 3x3 (cross-correlation)."""
  height, width = x.shape[1], x.shape[2]
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  y = None
  for i in range(3):
    for j in range(3):
      term = padded[:, i:i + height, j:j + width, :] * kernel[i, j]
      y = term if y is None else y + term
  return y


@jax.custom_vjp
def shifted_depthwise_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Depthwise 3x3 conv (kernel (3, 3, C)) as nine shifted multiply-adds.

  A custom VJP because autodiff of the nine slices pads the cotangent back to full size nine
  times, which XLA:CPU turns into a third of the training step; the transpose of this op is
  the same op with the kernel flipped, and the kernel gradient is nine reductions.
  """
  return _shifted_taps(x, kernel)


def _shifted_fwd(x, kernel):
  # The barrier keeps the output one materialised buffer: without it XLA:CPU fuses the nine
  # taps into each of its consumers in the training program (GELU, gate, their gradients),
  # computing the convolution about six times over.
  return jax.lax.optimization_barrier(_shifted_taps(x, kernel)), (x, kernel)


def _shifted_bwd(residuals, dy):
  x, kernel = residuals
  height, width = x.shape[1], x.shape[2]
  # Both gradients read the same nine shifted windows of the cotangent:
  #   dx        = sum_ij shift_ij(dy) * kernel[i, j]   (the conv with the kernel flipped)
  #   dkernel_ij = sum_hw x * shift_ij(dy)
  # Shifting dy rather than x matters for memory: windows of x depend on forward values only,
  # so XLA would be free to compute them during the forward pass and hold 8 shifted copies
  # of every conv input until the backward pass reaches it.
  padded = jnp.pad(dy, ((0, 0), (1, 1), (1, 1), (0, 0)))
  dx, taps = None, []
  for i in range(3):
    for j in range(3):
      window = padded[:, 2 - i:2 - i + height, 2 - j:2 - j + width, :]
      term = window * kernel[i, j]
      dx = term if dx is None else dx + term
      taps.append(jnp.sum(x * window, axis=(0, 1, 2), dtype=jnp.float32))
  dkernel = jnp.stack(taps).reshape(kernel.shape).astype(kernel.dtype)
  return dx, dkernel


shifted_depthwise_conv.defvjp(_shifted_fwd, _shifted_bwd)


class DepthwiseConv3x3(nn.Module):
  """Depthwise 3x3 convolution, zero padding 1; kernel stored as (3, 3, 1, C) like a grouped conv.

  `implementation`: "shifted" (nine shifted multiply-adds: fast on XLA:CPU), "cpu_kernel"
  (the compiled XLA:CPU kernel of `cpu_kernels`, computed in float32; fastest gradient on CPU)
  or "grouped" (`feature_group_count=C`: the library call, fast on GPU/TPU). Same output,
  same params.

  `gelu_gate`: return GDFN's gate on the output, gelu(y[..., :C/2]) * y[..., C/2:] (exact erf
  GELU), which "cpu_kernel" fuses into the convolution at inference.
  """

  use_bias: bool = False
  dtype: Dtype = jnp.float32
  implementation: str = "shifted"
  gelu_gate: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    # fan_in of a depthwise kernel is 9 (one input channel per group).
    kernel = self.param("kernel", torch_conv_init, (3, 3, 1, channels), jnp.float32)
    bias = (self.param("bias", nn.initializers.zeros, (channels,), jnp.float32)
            if self.use_bias else None)
    kernel = kernel.astype(self.dtype)
    x = x.astype(self.dtype)
    if self.implementation == "cpu_kernel":
      if not cpu_kernels.available():
        raise ValueError("depthwise_impl='cpu_kernel' needs the compiled CPU kernel, which could "
                         "not be built here (see the log); use 'auto' or 'shifted'")
      x32, kernel32 = x.astype(jnp.float32), kernel[:, :, 0, :].astype(jnp.float32)
      if self.gelu_gate:
        bias32 = jnp.zeros((channels,), jnp.float32) if bias is None else bias
        return cpu_kernels.gated_depthwise_conv3x3(x32, kernel32, bias32).astype(self.dtype)
      y = cpu_kernels.depthwise_conv3x3(x32, kernel32).astype(self.dtype)
    elif self.implementation == "grouped":
      y = jax.lax.conv_general_dilated(
          x, kernel, window_strides=(1, 1), padding=((1, 1), (1, 1)),
          dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels)
    elif self.implementation == "shifted":
      y = shifted_depthwise_conv(x, kernel[:, :, 0, :])
    else:
      raise ValueError(f"unknown depthwise implementation {self.implementation!r}")
    if bias is not None:
      y = y + bias.astype(self.dtype)
    if self.gelu_gate:
      gate, value = jnp.split(y, 2, axis=-1)
      # PyTorch's F.gelu default is the exact erf form.
      y = jax.nn.gelu(gate, approximate=False) * value
    return y


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
  cpu_kernel: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = conv3x3(x.shape[-1] // 2, False, self.dtype, name="conv", cpu_kernel=self.cpu_kernel)(x)
    return pixel_unshuffle(x, 2)


class Upsample(nn.Module):
  """conv3x3 C -> 2C (no bias), then pixel-shuffle(2): twice the resolution, half the width."""

  dtype: Dtype = jnp.float32
  cpu_kernel: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = conv3x3(x.shape[-1] * 2, False, self.dtype, name="conv", cpu_kernel=self.cpu_kernel)(x)
    return pixel_shuffle(x, 2)
