"""The visual prompt encoder (papers Sec. III-B.3 / 3.3).

conv3x3 3 -> c0, then four levels of residual blocks (conv3x3-ReLU-conv3x3 + identity) with a
strided conv3x3 between levels, so the output has the latent's resolution (1/8) and width
(8*dim). Level widths are [c0, 2c0, 4c0, 8*dim]: the papers give c0 (32 in the ACMMM version,
64 for Base/Large/Huge) and "residual blocks with interleaved downsampling" but not the widths;
this choice with two blocks per level lands Table I's parameter counts (README, "Choices").
One encoder, shared, encodes P_S and P_T.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from genlv_jax.models.layers import conv3x3

Dtype = Any


class ResidualBlock(nn.Module):
  """conv3x3 - ReLU - conv3x3 plus identity (EDSR-style, with biases)."""

  dtype: Dtype = jnp.float32
  cpu_kernel: bool = False  # kernel gradients in the compiled CPU kernel (layers.conv3x3)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = conv3x3(c, True, self.dtype, "conv1", cpu_kernel=self.cpu_kernel)(x)
    y = conv3x3(c, True, self.dtype, "conv2", cpu_kernel=self.cpu_kernel)(nn.relu(y))
    return x + y


class PromptEncoder(nn.Module):
  """Encodes one prompt image (B, H, W, 3) into (B, ceil(H/8), ceil(W/8), widths[-1])."""

  widths: Sequence[int]
  blocks_per_level: int = 2
  dtype: Dtype = jnp.float32
  cpu_kernel: bool = False

  @nn.compact
  def __call__(self, image: jax.Array) -> jax.Array:
    x = conv3x3(self.widths[0], True, self.dtype, "conv_first",
                cpu_kernel=self.cpu_kernel)(image.astype(self.dtype))
    for level, width in enumerate(self.widths, start=1):
      if level > 1:
        x = conv3x3(width, True, self.dtype, f"down{level - 1}_{level}", strides=2)(x)
      for i in range(self.blocks_per_level):
        x = ResidualBlock(self.dtype, self.cpu_kernel, name=f"level{level}_block_{i}")(x)
    return x
