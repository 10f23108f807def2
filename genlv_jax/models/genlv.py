"""GenLV (the authors' `XRestormer_Prompt_SpatCrossAttn`) and X-Restormer, on one U-Net.

    patch_embed -> encoder levels 1-3 (downsampling between) -> bottleneck ->
    decoder levels 3-1 (upsampling, skip concatenation, 1x1 reductions at levels 3, 2) ->
    refinement -> output conv
GenLV's bottleneck is `latent_blocks` of `SpatCrossAttnBlock`s, fed with the prompt pair
encoded by one shared `PromptEncoder`, and it has no global residual (the "wores" of the
authors' file name): the output is the last conv's. X-Restormer's bottleneck is `latent`, a
level of ordinary `TransformerBlock`s, and its output adds the input image.

Inputs of any size are reflect-padded (bottom/right) and cropped back: X-Restormer to a
multiple of 64 (three 2x downsamplings, then 8x8 windows at 1/8 resolution), GenLV to a
multiple of 32 (its bottleneck attends globally, so the last windows are at 1/4 resolution;
every size the authors' code accepts runs unpadded). Prompts are padded to a multiple of 8
(the prompt encoder's three pixel-unshuffles).
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from genlv_jax.models import ops
from genlv_jax.models.blocks import BlockSequence, SpatCrossAttnBlock, TransformerBlock
from genlv_jax.models.layers import Conv3x3, Dense, Downsample, Upsample
from genlv_jax.models.prompt_encoder import PromptEncoder

Dtype = Any

PAD_MULTIPLE = 64  # a size both models take without padding (tiles are multiples of it)
PROMPT_PAD_MULTIPLE = 8


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


class UNet(nn.Module):
  """The X-Restormer U-Net both models share; field names follow the authors' constructor.

  `implementations` (set by `build_model` from `config.ops`) is entered as the ops layer's
  choice for the whole forward pass; the layers themselves carry no implementation fields.
  """

  dim: int = 48
  num_blocks: Sequence[int] = (2, 4, 4, 4)
  num_refinement_blocks: int = 4
  heads: Sequence[int] = (1, 2, 4, 8)
  window_size: int = 8
  overlap_ratio: float = 0.5
  spatial_dim_head: int = 16
  ffn_expansion_factor: float = 2.66
  bias: bool = False
  dtype: Dtype = jnp.float32
  remat: bool = False
  scan_blocks: bool = False
  implementations: Optional[ops.Implementations] = None

  def level(self, level: int, num_blocks: int, name: str) -> BlockSequence:
    """`num_blocks` TransformerBlocks with the heads of U-Net level `level` (0-based)."""
    return BlockSequence(
        TransformerBlock, num_blocks,
        dict(num_heads=self.heads[level], window_size=self.window_size,
             overlap_ratio=self.overlap_ratio, spatial_dim_head=self.spatial_dim_head,
             ffn_expansion_factor=self.ffn_expansion_factor, use_bias=self.bias,
             dtype=self.dtype),
        self.scan_blocks, self.remat, name=name)

  def encode(self, image: jax.Array):
    """Input encoder: the latent (1/8 resolution, 8*dim) and the skips of levels 1-3."""
    nb = self.num_blocks
    x = Conv3x3(self.dim, False, self.dtype, name="patch_embed")(image.astype(self.dtype))
    enc1 = self.level(0, nb[0], "encoder_level1")(x)
    enc2 = self.level(1, nb[1], "encoder_level2")(Downsample(self.dtype, name="down1_2")(enc1))
    enc3 = self.level(2, nb[2], "encoder_level3")(Downsample(self.dtype, name="down2_3")(enc2))
    return Downsample(self.dtype, name="down3_4")(enc3), (enc1, enc2, enc3)

  def decode(self, latent: jax.Array, skips) -> jax.Array:
    """Decoder, refinement and output conv (3 channels, float32)."""
    enc1, enc2, enc3 = skips
    nb, dim = self.num_blocks, self.dim
    x = jnp.concatenate([Upsample(self.dtype, name="up4_3")(latent), enc3], axis=-1)
    x = Dense(4 * dim, self.bias, self.dtype, name="reduce_chan_level3")(x)
    x = self.level(2, nb[2], "decoder_level3")(x)
    x = jnp.concatenate([Upsample(self.dtype, name="up3_2")(x), enc2], axis=-1)
    x = Dense(2 * dim, self.bias, self.dtype, name="reduce_chan_level2")(x)
    x = self.level(1, nb[1], "decoder_level2")(x)
    # Level 1 has no channel reduction: decoder level 1 and refinement run at 2*dim.
    x = jnp.concatenate([Upsample(self.dtype, name="up2_1")(x), enc1], axis=-1)
    x = self.level(0, nb[0], "decoder_level1")(x)
    x = self.level(0, self.num_refinement_blocks, "refinement")(x)
    return Conv3x3(3, self.bias, self.dtype, name="output")(x).astype(jnp.float32)


class GenLV(UNet):
  """GenLV: I_out = F(I_in, P_S, P_T). Images NHWC float in [0, 1], RGB (the converter permutes
  the authors' BGR weights); the prompt pair may have another size than the input."""

  prompt_encoder_width: int = 32
  pad_multiple: ClassVar[int] = 32
  takes_prompt: ClassVar[bool] = True

  def encode_prompts(self, prompt_source: jax.Array, prompt_target: jax.Array):
    """Encodes P_S and P_T with the one shared encoder, as one batch of twice the size."""
    if prompt_source.shape != prompt_target.shape:
      # z_S gives the cross-attention's keys and z_T its values: one token each per position.
      raise ValueError(f"prompt_source {prompt_source.shape} and prompt_target "
                       f"{prompt_target.shape} must have the same shape")
    encoder = PromptEncoder(self.prompt_encoder_width, 8 * self.dim, dtype=self.dtype,
                            name="prompt_encoder")
    # Sample i's two prompts become rows 2i and 2i+1: a batch-sharded pair stays on its device
    # (concatenated as [P_S; P_T], half of each shard would move: all-to-alls, measured with
    # benchmarks/sharding_comms.py).
    batch = prompt_source.shape[0]
    prompts = jnp.stack([prompt_source, prompt_target], axis=1).astype(jnp.float32)
    prompts = prompts.reshape((2 * batch,) + prompts.shape[2:])
    encoded = encoder(reflect_pad_to_multiple(prompts, PROMPT_PAD_MULTIPLE))
    encoded = encoded.reshape((batch, 2) + encoded.shape[1:])
    return encoded[:, 0], encoded[:, 1]

  @nn.compact
  def __call__(self, image: jax.Array, prompt_source: jax.Array,
               prompt_target: jax.Array) -> jax.Array:
    """image (B, H, W, 3), prompts (B, Hp, Wp, 3) -> (B, H, W, 3) float32."""
    with ops.use(self.implementations):
      height, width = image.shape[1], image.shape[2]
      image = reflect_pad_to_multiple(image.astype(jnp.float32), self.pad_multiple)
      z_source, z_target = self.encode_prompts(prompt_source, prompt_target)
      latent, skips = self.encode(image)
      latent = BlockSequence(
          SpatCrossAttnBlock, self.num_blocks[3],
          dict(num_heads=self.heads[3], ffn_expansion_factor=self.ffn_expansion_factor,
               use_bias=self.bias, dtype=self.dtype),
          self.scan_blocks, self.remat, name="latent_blocks")(latent, z_source, z_target)
      return self.decode(latent, skips)[:, :height, :width, :]


class XRestormer(UNet):
  """X-Restormer as released: its bottleneck is a level of TransformerBlocks, its output adds
  the input; `scale` > 1 upsamples the input bilinearly first (its SR models)."""

  scale: int = 1
  pad_multiple: ClassVar[int] = 64
  takes_prompt: ClassVar[bool] = False

  @nn.compact
  def __call__(self, image: jax.Array) -> jax.Array:
    """image (B, H, W, 3) -> (B, H*scale, W*scale, 3) float32."""
    with ops.use(self.implementations):
      image = image.astype(jnp.float32)
      if self.scale > 1:
        image = upsample_bilinear(image, self.scale)
      height, width = image.shape[1], image.shape[2]
      image = reflect_pad_to_multiple(image, self.pad_multiple)
      latent, skips = self.encode(image)
      latent = self.level(3, self.num_blocks[3], "latent")(latent)
      return (self.decode(latent, skips) + image)[:, :height, :width, :]
