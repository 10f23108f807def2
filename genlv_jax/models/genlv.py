"""GenLV: the X-Restormer U-Net with a visual task prompt at its bottleneck (papers Fig. 2).

    I_out = F(I_in, P_S, P_T)
The input is reflect-padded to a multiple of 64 (three 2x downsamplings, then 8x8 windows at
the latent level) and cropped back; the output is `output_conv(...) + input` (global residual).
With `use_prompt=False` this is exactly X-Restormer (`configs/xrestormer.py`).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from genlv_jax.models.blocks import BlockSequence
from genlv_jax.models.layers import Downsample, Upsample, conv3x3, pointwise_conv
from genlv_jax.models.prompt_encoder import PromptEncoder

Dtype = Any

# Three 2x downsamplings and an 8x8 window at 1/8 resolution.
PAD_MULTIPLE = 64


def reflect_pad_to_multiple(x: jax.Array, multiple: int) -> jax.Array:
  """Reflect-pads H and W (bottom/right) up to a multiple; numpy's 'reflect' (no edge repeat)."""
  h, w = x.shape[1], x.shape[2]
  pad_h, pad_w = -h % multiple, -w % multiple
  if pad_h == 0 and pad_w == 0:
    return x
  return jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


def upsample_bilinear(x: jax.Array, scale: int) -> jax.Array:
  """Bilinear upsampling identical to torch's `F.interpolate(..., align_corners=False)`."""

  def axis_weights(n: int):
    dst = jnp.arange(n * scale, dtype=jnp.float32)
    src = jnp.maximum((dst + 0.5) / scale - 0.5, 0.0)
    i0 = jnp.floor(src).astype(jnp.int32)
    i1 = jnp.minimum(i0 + 1, n - 1)
    return i0, i1, src - i0

  h0, h1, wh = axis_weights(x.shape[1])
  w0, w1, ww = axis_weights(x.shape[2])
  wh, ww = wh[None, :, None, None], ww[None, None, :, None]
  rows = x[:, h0] * (1 - wh) + x[:, h1] * wh
  return rows[:, :, w0] * (1 - ww) + rows[:, :, w1] * ww


class GenLV(nn.Module):
  """GenLV (and X-Restormer when `use_prompt=False`). Field names follow X-Restormer's constructor."""

  dim: int = 48
  num_blocks: Sequence[int] = (2, 4, 4, 4)
  num_refinement_blocks: int = 4
  channel_heads: Sequence[int] = (1, 2, 4, 8)
  spatial_heads: Sequence[int] = (1, 2, 4, 8)
  overlap_ratio: float = 0.5
  window_size: int = 8
  spatial_dim_head: int = 16
  ffn_expansion_factor: float = 2.66
  bias: bool = False
  scale: int = 1
  use_prompt: bool = True
  prompt_channels: int = 64
  prompt_blocks: int = 2
  prompt_heads: int = 8
  prompt_attn_position: str = "after_spatial_attn"
  dtype: Dtype = jnp.float32
  remat: bool = False
  scan_blocks: bool = False
  depthwise_impl: str = "shifted"
  window_impl: str = "reshape"

  @property
  def _cpu_kernel(self) -> bool:
    # The compiled CPU kernels come together: "cpu_kernel" for the depthwise convs also moves
    # the dense 3x3 convs' kernel gradients there.
    return self.depthwise_impl == "cpu_kernel"

  def _level(self, level: int, num_blocks: int, name: str, prompt: bool = False) -> BlockSequence:
    block_kwargs = dict(
        channel_heads=self.channel_heads[level], spatial_heads=self.spatial_heads[level],
        window_size=self.window_size, overlap_ratio=self.overlap_ratio,
        spatial_dim_head=self.spatial_dim_head, ffn_expansion_factor=self.ffn_expansion_factor,
        use_bias=self.bias, dtype=self.dtype, depthwise_impl=self.depthwise_impl,
        window_impl=self.window_impl)
    if prompt:
      block_kwargs.update(prompt_heads=self.prompt_heads,
                          prompt_attn_position=self.prompt_attn_position)
    return BlockSequence(num_blocks, block_kwargs, self.scan_blocks, self.remat, name=name)

  def encode_prompt(self, prompt_source: jax.Array, prompt_target: jax.Array):
    """Encodes P_S and P_T with one shared encoder (one batched call when their shapes agree)."""
    encoder = PromptEncoder(
        widths=(self.prompt_channels, 2 * self.prompt_channels, 4 * self.prompt_channels,
                8 * self.dim),
        blocks_per_level=self.prompt_blocks, dtype=self.dtype, cpu_kernel=self._cpu_kernel,
        name="prompt_encoder")
    if prompt_source.shape == prompt_target.shape:
      z = encoder(jnp.concatenate([prompt_source, prompt_target], axis=0))
      return jnp.split(z, 2, axis=0)
    return encoder(prompt_source), encoder(prompt_target)

  @nn.compact
  def __call__(self, image: jax.Array, prompt_source: Optional[jax.Array] = None,
               prompt_target: Optional[jax.Array] = None) -> jax.Array:
    """image (B, H, W, 3), prompts (B, Hp, Wp, 3), floats in [0, 1] -> (B, H*scale, W*scale, 3)."""
    if self.use_prompt and (prompt_source is None or prompt_target is None):
      raise ValueError("this GenLV config needs prompt_source and prompt_target")
    image = image.astype(jnp.float32)
    if self.scale > 1:
      image = upsample_bilinear(image, self.scale)
    out_h, out_w = image.shape[1], image.shape[2]
    image = reflect_pad_to_multiple(image, PAD_MULTIPLE)
    dim, nb, ck = self.dim, self.num_blocks, self._cpu_kernel

    x = conv3x3(dim, False, self.dtype, "patch_embed", cpu_kernel=ck)(image.astype(self.dtype))
    enc1 = self._level(0, nb[0], "encoder_level1")(x)
    enc2 = self._level(1, nb[1], "encoder_level2")(Downsample(self.dtype, ck, name="down1_2")(enc1))
    enc3 = self._level(2, nb[2], "encoder_level3")(Downsample(self.dtype, ck, name="down2_3")(enc2))
    x = Downsample(self.dtype, ck, name="down3_4")(enc3)

    if self.use_prompt:
      z_source, z_target = self.encode_prompt(prompt_source, prompt_target)
      x = self._level(3, nb[3], "latent", prompt=True)(x, z_source, z_target)
    else:
      x = self._level(3, nb[3], "latent")(x)

    x = jnp.concatenate([Upsample(self.dtype, ck, name="up4_3")(x), enc3], axis=-1)
    x = pointwise_conv(4 * dim, self.bias, self.dtype, "reduce_chan_level3")(x)
    x = self._level(2, nb[2], "decoder_level3")(x)
    x = jnp.concatenate([Upsample(self.dtype, ck, name="up3_2")(x), enc2], axis=-1)
    x = pointwise_conv(2 * dim, self.bias, self.dtype, "reduce_chan_level2")(x)
    x = self._level(1, nb[1], "decoder_level2")(x)
    # Level 1 has no channel reduction: decoder level 1 and refinement run at 2*dim.
    x = jnp.concatenate([Upsample(self.dtype, ck, name="up2_1")(x), enc1], axis=-1)
    x = self._level(0, nb[0], "decoder_level1")(x)
    x = self._level(0, self.num_refinement_blocks, "refinement")(x)
    x = conv3x3(3, self.bias, self.dtype, "output")(x)
    out = x.astype(jnp.float32) + image
    return out[:, :out_h, :out_w, :]
