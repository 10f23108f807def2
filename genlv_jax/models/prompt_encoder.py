"""The visual prompt encoder (the authors' `Single_Base_Encoder_x3`, one module for both prompt
images: z_S from P_S gives the cross-attention's keys, z_T from P_T its values).

    conv3x3 3->nf, GELU, conv3x3 nf->nf, LN
    three times: 4 residual blocks, GELU, pixel-unshuffle(2), 1x1 conv 4c->2c, GELU, LN
    conv3x3 8nf->8*dim, GELU, 1x1 conv, LN
Tokens come out at 1/8 of the prompt's resolution (any prompt size that is a multiple of 8).
nf is 32 in the authors' GenLV-101 file and 64 in their GenLV-30 file
(`config.model.prompt_encoder_width`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from genlv_jax.models.layers import Conv3x3, Dense, LayerNorm, pixel_unshuffle

Dtype = Any

# BasicSR's `default_init_weights(scale=0.1)` for ResidualBlockNoBN: kaiming normal x 0.1, so
# every residual block starts close to the identity.
residual_init = nn.initializers.variance_scaling(2.0 * 0.1 ** 2, "fan_in", "normal")


def gelu(x: jax.Array) -> jax.Array:
  return jax.nn.gelu(x, approximate=False)  # nn.GELU() is the exact erf form


class ResidualBlock(nn.Module):
  """BasicSR's `ResidualBlockNoBN`: conv3x3 - ReLU - conv3x3 plus identity, with biases."""

  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = Conv3x3(c, True, self.dtype, residual_init, name="conv1")(x)
    return x + Conv3x3(c, True, self.dtype, residual_init, name="conv2")(nn.relu(y))


class ResidualBlocks(nn.Module):
  """BasicSR's `make_layer(ResidualBlockNoBN, n)`: n residual blocks, children `layer_<i>`."""

  num_blocks: int = 4
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.num_blocks):
      x = ResidualBlock(self.dtype, name=f"layer_{i}")(x)
    return x


class PromptEncoder(nn.Module):
  """Encodes one prompt image (B, H, W, 3) into tokens (B, H/8, W/8, out_dim)."""

  width: int = 32
  out_dim: int = 384
  blocks_per_level: int = 4
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, image: jax.Array) -> jax.Array:
    nf = self.width
    norm = lambda name: LayerNorm(dtype=self.dtype, name=name)  # noqa: E731
    x = Conv3x3(nf, True, self.dtype, name="conv_first")(image.astype(self.dtype))
    x = norm("norm")(Conv3x3(nf, True, self.dtype, name="conv_hr")(gelu(x)))
    for level in (1, 2, 3):
      x = ResidualBlocks(self.blocks_per_level, self.dtype, name=f"fea_level{level}")(x)
      x = pixel_unshuffle(gelu(x), 2)
      x = Dense(x.shape[-1] // 2, True, self.dtype, name=f"channel_reduction{level}")(x)
      x = norm(f"norm{level}")(gelu(x))
    x = gelu(Conv3x3(self.out_dim, True, self.dtype, name="conv_lr")(x))
    return norm("norm_out")(Dense(self.out_dim, True, self.dtype, name="conv_last")(x))
