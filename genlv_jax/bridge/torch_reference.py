"""GenLV (and X-Restormer) in PyTorch, NCHW: the independent reference for the Flax model.

Parameter names are exactly those of the authors' released modules, so their checkpoints load
with `strict=True`:

* `use_prompt=False`: X-Restormer (repository `Andrew0613/X-Restormer`,
  `xrestormer/archs/xrestormer_arch.py`): `latent.{i}` are TransformerBlocks, the output conv
  adds the (bilinearly upscaled) input back.
* `use_prompt=True`: GenLV (repository `chxy95/GenLV`, class `XRestormer_Prompt_SpatCrossAttn`
  of `extended_version/models/xrestormer_prompt_crossattn_wores.py`, prompt encoder width 32,
  and of `conference_version/models_xrestormer_prompt_crossattn_wores.py`, width 64). No global
  residual: the output is the `output` conv. Its own names:

    Prompt_KV_Encoder.prompt_embedding.conv_first / conv_hr     conv3x3 3 -> nf, nf -> nf, bias
    Prompt_KV_Encoder.prompt_embedding.norm                     nn.LayerNorm(nf)
    Prompt_KV_Encoder.prompt_embedding.fea_level{L}.{i}.conv1 / .conv2
                                                                residual block i (0..3) of level L
    Prompt_KV_Encoder.prompt_embedding.channel_reduction{L}     conv1x1 4c -> 2c after unshuffle
    Prompt_KV_Encoder.prompt_embedding.norm{L}                  nn.LayerNorm(2c)
    Prompt_KV_Encoder.prompt_embedding.conv_lr / conv_last      conv3x3 8nf -> 8dim, conv1x1, bias
    Prompt_KV_Encoder.prompt_embedding.norm_out                 nn.LayerNorm(8dim)
    latent_blocks.{i}.channel_attn / channel_ffn / spatial_ffn  MDTA and GDFNs as elsewhere
    latent_blocks.{i}.norm1 / norm2 .body.weight / .body.bias   channel LayerNorms (NCHW)
    latent_blocks.{i}.norm3 / norm4 / norm5 .weight / .bias     token nn.LayerNorms
    latent_blocks.{i}.spatial_attn / cross_attn .to_q / .to_k / .to_v (Linear, no bias)
                                                .to_out.0 (Linear, bias)

The maths is written the PyTorch way on purpose, not transcribed from the Flax code: key/value
windows come from `F.unfold`, relative position logits go through X-Restormer's `rel_to_abs`
pad-flatten-reshape arithmetic, depthwise convs are grouped `Conv2d`s, and reflect padding is
an index gather with numpy's 'reflect' rule. Parity with the Flax model is therefore a check of
two implementations, not of one against itself.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# X-Restormer: three 2x downsamplings, then 8x8 windows at 1/8 resolution. GenLV's bottleneck
# attends globally, so its last windows are at 1/4 resolution: a multiple of 32 suffices (and
# every size the authors' code accepts runs unpadded).
PAD_MULTIPLE = 64
GENLV_PAD_MULTIPLE = 32


class WithBiasLayerNorm(nn.Module):
  """LayerNorm over the last axis with weight and bias; biased variance, eps 1e-5."""

  def __init__(self, dim: int):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(dim))
    self.bias = nn.Parameter(torch.zeros(dim))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    return (x - mu) / torch.sqrt(var + 1e-5) * self.weight + self.bias


class LayerNorm(nn.Module):
  """Channel LayerNorm of an NCHW map; the `body` indirection keeps the official key names."""

  def __init__(self, dim: int):
    super().__init__()
    self.body = WithBiasLayerNorm(dim)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class FeedForward(nn.Module):
  """GDFN: 1x1 conv to 2h, depthwise 3x3, exact-erf GELU gate, 1x1 conv back."""

  def __init__(self, dim: int, expansion_factor: float, bias: bool):
    super().__init__()
    hidden = int(dim * expansion_factor)
    self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
    self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
    self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
    return self.project_out(F.gelu(gate) * value)


GDFN = FeedForward  # the papers' name


class ChannelAttention(nn.Module):
  """MDTA: per-head (C/h x C/h) attention of spatially L2-normalised q and k, times temperature."""

  def __init__(self, dim: int, num_heads: int, bias: bool):
    super().__init__()
    self.num_heads = num_heads
    self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
    self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
    self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
    self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w)
               for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
    return self.project_out((attn @ v).reshape(b, c, h, w))


MDTA = ChannelAttention  # the papers' (and GenLV's) name


def rel_to_abs(logits: torch.Tensor) -> torch.Tensor:
  """(B, L, 2R-1) relative logits -> (B, L, R) absolute ones (X-Restormer's arithmetic).

  Appending one zero column, flattening, padding by 2R-1-L zeros and re-reading the buffer as
  rows of length 2R-1 shifts row y left by y; the last R columns of each row are then
  `logits[y, j - y + R - 1]` for key position j.
  """
  b, l, m = logits.shape
  r = (m + 1) // 2
  flat = F.pad(logits, (0, 1)).reshape(b, l * (m + 1))
  flat = F.pad(flat, (0, m - l))
  return flat.reshape(b, l + 1, m)[:, :l, m - r:]


def relative_logits_1d(q: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
  """q (B, X, Y, d) against a (2R-1, d) table along Y -> (B, X, Y, R) logits per key offset."""
  b, nx, ny, _ = q.shape
  logits = torch.einsum("bxyd,rd->bxyr", q, table)
  return rel_to_abs(logits.reshape(b * nx, ny, -1)).reshape(b, nx, ny, -1)


class RelPosEmb(nn.Module):
  """Learned relative position logits of a ws x ws query block against an ows x ows key block."""

  def __init__(self, block_size: int, rel_size: int, dim_head: int):
    super().__init__()
    self.block_size = block_size
    self.rel_height = nn.Parameter(torch.randn(2 * rel_size - 1, dim_head) * dim_head ** -0.5)
    self.rel_width = nn.Parameter(torch.randn(2 * rel_size - 1, dim_head) * dim_head ** -0.5)

  def forward(self, q: torch.Tensor) -> torch.Tensor:
    """q (B, ws*ws, d), row-major tokens -> (B, ws*ws, ows*ows) logits, keys row-major."""
    b, _, d = q.shape
    q = q.reshape(b, self.block_size, self.block_size, d)                 # (B, row, col, d)
    along_w = relative_logits_1d(q, self.rel_width)                       # (B, row, col, kcol)
    along_h = relative_logits_1d(q.transpose(1, 2), self.rel_height)      # (B, col, row, krow)
    along_h = along_h.transpose(1, 2)                                     # (B, row, col, krow)
    logits = along_h[..., :, None] + along_w[..., None, :]               # (..., krow, kcol)
    return logits.reshape(b, self.block_size ** 2, -1)


class OCAB(nn.Module):
  """Overlapping cross-attention: ws x ws query windows against unfolded ows x ows key windows."""

  def __init__(self, dim: int, window_size: int, overlap_ratio: float, num_heads: int,
               dim_head: int, bias: bool):
    super().__init__()
    self.num_heads, self.dim_head, self.window_size = num_heads, dim_head, window_size
    self.overlap_win_size = int(window_size * overlap_ratio) + window_size
    self.inner_dim = num_heads * dim_head
    self.qkv = nn.Conv2d(dim, 3 * self.inner_dim, 1, bias=bias)
    self.project_out = nn.Conv2d(self.inner_dim, dim, 1, bias=bias)
    self.rel_pos_emb = RelPosEmb(window_size, self.overlap_win_size, dim_head)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    ws, ows, heads, d = self.window_size, self.overlap_win_size, self.num_heads, self.dim_head
    nh, nw = h // ws, w // ws
    q, k, v = self.qkv(x).chunk(3, dim=1)
    # Queries: (B, inner, H, W) -> (B*nh*nw*heads, ws*ws, d).
    q = q.reshape(b, heads, d, nh, ws, nw, ws).permute(0, 3, 5, 1, 4, 6, 2)
    q = q.reshape(-1, ws * ws, d) * d ** -0.5
    # Keys/values: unfold gives (B, inner*ows*ows, nh*nw), channel-major within a column.
    k, v = (F.unfold(t, ows, padding=(ows - ws) // 2, stride=ws)
            .reshape(b, heads, d, ows * ows, nh * nw).permute(0, 4, 1, 3, 2)
            .reshape(-1, ows * ows, d) for t in (k, v))
    attn = (q @ k.transpose(-2, -1) + self.rel_pos_emb(q)).softmax(dim=-1)
    out = (attn @ v).reshape(b, nh, nw, heads, ws, ws, d).permute(0, 3, 6, 1, 4, 2, 5)
    return self.project_out(out.reshape(b, self.inner_dim, h, w))


class TransformerBlock(nn.Module):
  """TSAB + SSAB of X-Restormer: MDTA and GDFN, then OCAB and GDFN, each pre-norm, residual.

  The same `num_heads` serve the channel (MDTA) and the spatial (OCAB) attention, as in GenLV
  and in every released X-Restormer config.
  """

  def __init__(self, dim: int, window_size: int, overlap_ratio: float, num_heads: int,
               spatial_dim_head: int, ffn_expansion_factor: float, bias: bool):
    super().__init__()
    self.spatial_attn = OCAB(dim, window_size, overlap_ratio, num_heads, spatial_dim_head, bias)
    self.channel_attn = ChannelAttention(dim, num_heads, bias)
    self.norm1, self.norm2, self.norm3, self.norm4 = (LayerNorm(dim) for _ in range(4))
    self.channel_ffn = FeedForward(dim, ffn_expansion_factor, bias)
    self.spatial_ffn = FeedForward(dim, ffn_expansion_factor, bias)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = x + self.channel_attn(self.norm1(x))
    x = x + self.channel_ffn(self.norm2(x))
    x = x + self.spatial_attn(self.norm3(x))
    return x + self.spatial_ffn(self.norm4(x))


class SpatCrossAttn(nn.Module):
  """Multi-head attention over tokens: global self-attention, or cross-attention to prompts.

  Queries come from `x` (B, N, C); keys and values from `key_tokens` / `value_tokens`
  (B, M, C) when both are given (GenLV: z_S and z_T), else from `x` itself. Bias-free linear
  q/k/v maps, head width C/heads, logits scaled by (C/heads)^-1/2, and an output Linear with
  bias kept at `to_out.0` (the official `to_out` is Linear + Dropout(0)).
  """

  def __init__(self, dim: int, num_heads: int):
    super().__init__()
    self.num_heads = num_heads
    self.to_q = nn.Linear(dim, dim, bias=False)
    self.to_k = nn.Linear(dim, dim, bias=False)
    self.to_v = nn.Linear(dim, dim, bias=False)
    self.to_out = nn.Sequential(nn.Linear(dim, dim))

  def forward(self, x: torch.Tensor, key_tokens: Optional[torch.Tensor] = None,
              value_tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
    if key_tokens is None or value_tokens is None:
      key_tokens = value_tokens = x
    b, n, c = x.shape
    dh = c // self.num_heads
    heads = lambda t: t.unflatten(-1, (self.num_heads, dh)).transpose(1, 2)  # noqa: E731
    q, k, v = heads(self.to_q(x)), heads(self.to_k(key_tokens)), heads(self.to_v(value_tokens))
    attn = (q @ k.transpose(-2, -1) * dh ** -0.5).softmax(dim=-1)          # (B, heads, N, M)
    return self.to_out((attn @ v).transpose(1, 2).reshape(b, n, c))


class SpatCrossAttnBlock(nn.Module):
  """GenLV's latent block: MDTA + GDFN (pre-norm, NCHW), then on tokens global self-attention
  and prompt cross-attention (pre-norm), a closing LayerNorm, and a GDFN without pre-norm."""

  def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool):
    super().__init__()
    self.channel_attn = ChannelAttention(dim, num_heads, bias)
    self.spatial_attn = SpatCrossAttn(dim, num_heads)
    self.cross_attn = SpatCrossAttn(dim, num_heads)
    self.norm1, self.norm2 = LayerNorm(dim), LayerNorm(dim)
    self.norm3, self.norm4, self.norm5 = (nn.LayerNorm(dim) for _ in range(3))
    self.channel_ffn = FeedForward(dim, ffn_expansion_factor, bias)
    self.spatial_ffn = FeedForward(dim, ffn_expansion_factor, bias)

  def forward(self, x: torch.Tensor, z_source: torch.Tensor,
              z_target: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W), z_source / z_target (B, M, C) prompt tokens -> (B, C, H, W)."""
    x = x + self.channel_attn(self.norm1(x))
    x = x + self.channel_ffn(self.norm2(x))
    h, w = x.shape[-2:]
    t = x.flatten(2).transpose(1, 2)                                        # (B, H*W, C)
    t = t + self.spatial_attn(self.norm3(t))
    t = t + self.cross_attn(self.norm4(t), z_source, z_target)
    x = self.norm5(t).transpose(1, 2).unflatten(2, (h, w))
    return x + self.spatial_ffn(x)


class BlockSequence(nn.ModuleList):
  """A level's blocks, keyed `0, 1, …` like the official `nn.Sequential` / `nn.ModuleList`;
  extra arguments (GenLV's prompt tokens) go to every block."""

  def forward(self, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
    for block in self:
      x = block(x, *args)
    return x


class OverlapPatchEmbed(nn.Module):
  """conv3x3 3 -> dim without bias (official: `patch_embed.proj`)."""

  def __init__(self, dim: int):
    super().__init__()
    self.proj = nn.Conv2d(3, dim, 3, padding=1, bias=False)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.proj(x)


class ConvShuffle(nn.Module):
  """X-Restormer's Downsample / Upsample: a bias-free conv3x3 then a pixel (un)shuffle by 2,
  as `body.0` / `body.1` (the official parameter names)."""

  def __init__(self, dim: int, conv_out: int, shuffle: nn.Module):
    super().__init__()
    self.body = nn.Sequential(nn.Conv2d(dim, conv_out, 3, padding=1, bias=False), shuffle)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.body(x)


def Downsample(dim: int) -> ConvShuffle:  # noqa: N802 -- named as the official module
  """Halves the resolution, doubles the channels: conv dim -> dim/2, pixel-unshuffle 2."""
  return ConvShuffle(dim, dim // 2, nn.PixelUnshuffle(2))


def Upsample(dim: int) -> ConvShuffle:  # noqa: N802 -- named as the official module
  """Doubles the resolution, halves the channels: conv dim -> 2*dim, pixel-shuffle 2."""
  return ConvShuffle(dim, dim * 2, nn.PixelShuffle(2))


class ResidualBlock(nn.Module):
  """basicsr's ResidualBlockNoBN: conv3x3 - ReLU - conv3x3 plus identity, with biases."""

  def __init__(self, dim: int):
    super().__init__()
    self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
    self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return x + self.conv2(F.relu(self.conv1(x)))


def token_layer_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
  """An `nn.LayerNorm` over the channels of an NCHW map (applied channels-last)."""
  return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class PromptEncoder(nn.Module):
  """GenLV's prompt encoder (official `Single_Base_Encoder_x3`): image -> 1/8-resolution tokens.

  conv3x3 - GELU - conv3x3 - LayerNorm at full resolution with `width` (nf) channels; then
  three levels of: `blocks` residual blocks, GELU, pixel-unshuffle 2 (c -> 4c), conv1x1 4c -> 2c,
  GELU, LayerNorm; then conv3x3 8nf -> prompt_dim, GELU, conv1x1, LayerNorm over tokens.
  GELUs are exact (erf); LayerNorms are `nn.LayerNorm` (eps 1e-5).
  """

  def __init__(self, width: int, prompt_dim: int, blocks: int = 4, in_channels: int = 3):
    super().__init__()
    self.conv_first = nn.Conv2d(in_channels, width, 3, padding=1)
    self.conv_hr = nn.Conv2d(width, width, 3, padding=1)
    self.norm = nn.LayerNorm(width)
    for level in (1, 2, 3):
      c = width * 2 ** (level - 1)
      setattr(self, f"fea_level{level}", nn.Sequential(*[ResidualBlock(c) for _ in range(blocks)]))
      setattr(self, f"channel_reduction{level}", nn.Conv2d(4 * c, 2 * c, 1))
      setattr(self, f"norm{level}", nn.LayerNorm(2 * c))
    self.conv_lr = nn.Conv2d(8 * width, prompt_dim, 3, padding=1)
    self.conv_last = nn.Conv2d(prompt_dim, prompt_dim, 1)
    self.norm_out = nn.LayerNorm(prompt_dim)

  def forward(self, image: torch.Tensor) -> torch.Tensor:
    """image (B, 3, H, W), H and W multiples of 8 -> tokens (B, H/8 * W/8, prompt_dim)."""
    x = token_layer_norm(self.norm, self.conv_hr(F.gelu(self.conv_first(image))))
    for level in (1, 2, 3):
      x = F.gelu(getattr(self, f"fea_level{level}")(x))
      x = F.gelu(getattr(self, f"channel_reduction{level}")(F.pixel_unshuffle(x, 2)))
      x = token_layer_norm(getattr(self, f"norm{level}"), x)
    x = self.conv_last(F.gelu(self.conv_lr(x)))
    return self.norm_out(x.flatten(2).transpose(1, 2))


class PromptKVEncoder(nn.Module):
  """One shared PromptEncoder (`prompt_embedding`) run on P_S (keys) and on P_T (values)."""

  def __init__(self, width: int, prompt_dim: int):
    super().__init__()
    self.prompt_embedding = PromptEncoder(width, prompt_dim)

  def forward(self, prompt_source: torch.Tensor,
              prompt_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return self.prompt_embedding(prompt_source), self.prompt_embedding(prompt_target)


def _reflect_indices(n: int, padded: int, device: torch.device) -> torch.Tensor:
  """Source index of each of `padded` positions under numpy's 'reflect' rule (no edge repeat).

  Reflection is periodic with period 2(n-1): position i reads i mod 2(n-1), folded back.
  """
  i = torch.arange(padded, device=device)
  if n == 1:
    return torch.zeros_like(i)
  period = 2 * (n - 1)
  j = torch.remainder(i, period)
  return torch.where(j < n, j, period - j)


def reflect_pad_bottom_right(x: torch.Tensor, multiple: int) -> torch.Tensor:
  """Reflect-pads H and W (bottom/right) up to a multiple, numpy's 'reflect', any pad width.

  `F.pad(mode='reflect')` refuses pads as large as the input, which numpy (and the Flax model)
  handle by reflecting again; an index gather reproduces numpy for every size.
  """
  h, w = x.shape[-2:]
  if h % multiple == 0 and w % multiple == 0:
    return x
  x = x.index_select(-2, _reflect_indices(h, h + (-h % multiple), x.device))
  return x.index_select(-1, _reflect_indices(w, w + (-w % multiple), x.device))


class GenLVTorch(nn.Module):
  """GenLV (`use_prompt=True`) or X-Restormer (`use_prompt=False`), plus padding to 64.

  `heads[i]` are the channel (MDTA) and spatial (OCAB, or GenLV's latent attention) heads of
  level i. `prompt_encoder_width` is the prompt encoder's nf: 32 for the extended version's
  checkpoints, 64 for the conference version's. `scale` > 1 upsamples the input bilinearly
  first (X-Restormer's SR setting).
  """

  def __init__(self, dim: int = 48, num_blocks: Sequence[int] = (2, 4, 4, 4),
               num_refinement_blocks: int = 4, heads: Sequence[int] = (1, 2, 4, 8),
               overlap_ratio: float = 0.5, window_size: int = 8, spatial_dim_head: int = 16,
               ffn_expansion_factor: float = 2.66, bias: bool = False, scale: int = 1,
               use_prompt: bool = True, prompt_encoder_width: int = 32):
    super().__init__()
    self.scale, self.use_prompt = scale, use_prompt

    def level(i: int, n: int, width: int) -> BlockSequence:
      return BlockSequence([
          TransformerBlock(width, window_size, overlap_ratio, heads[i], spatial_dim_head,
                           ffn_expansion_factor, bias) for _ in range(n)])

    if use_prompt:
      self.Prompt_KV_Encoder = PromptKVEncoder(prompt_encoder_width, 8 * dim)
    self.patch_embed = OverlapPatchEmbed(dim)
    self.encoder_level1 = level(0, num_blocks[0], dim)
    self.down1_2 = Downsample(dim)
    self.encoder_level2 = level(1, num_blocks[1], 2 * dim)
    self.down2_3 = Downsample(2 * dim)
    self.encoder_level3 = level(2, num_blocks[2], 4 * dim)
    self.down3_4 = Downsample(4 * dim)
    if use_prompt:
      self.latent_blocks = BlockSequence([
          SpatCrossAttnBlock(8 * dim, heads[3], ffn_expansion_factor, bias)
          for _ in range(num_blocks[3])])
    else:
      self.latent = level(3, num_blocks[3], 8 * dim)
    self.up4_3 = Upsample(8 * dim)
    self.reduce_chan_level3 = nn.Conv2d(8 * dim, 4 * dim, 1, bias=bias)
    self.decoder_level3 = level(2, num_blocks[2], 4 * dim)
    self.up3_2 = Upsample(4 * dim)
    self.reduce_chan_level2 = nn.Conv2d(4 * dim, 2 * dim, 1, bias=bias)
    self.decoder_level2 = level(1, num_blocks[1], 2 * dim)
    self.up2_1 = Upsample(2 * dim)
    self.decoder_level1 = level(0, num_blocks[0], 2 * dim)
    self.refinement = level(0, num_refinement_blocks, 2 * dim)
    self.output = nn.Conv2d(2 * dim, 3, 3, padding=1, bias=bias)

  def forward(self, x: torch.Tensor, prompt_source: Optional[torch.Tensor] = None,
              prompt_target: Optional[torch.Tensor] = None) -> torch.Tensor:
    """x (B, 3, H, W), prompts (B, 3, Hp, Wp) -> (B, 3, H*scale, W*scale).

    The input is reflect-padded to a multiple of 32 (GenLV) or 64 (X-Restormer) and the output
    cropped back; the prompts
    are not padded (Hp and Wp must be multiples of 8) and may differ in size from x.
    """
    if self.use_prompt:
      if prompt_source is None or prompt_target is None:
        raise ValueError("this GenLV model needs prompt_source and prompt_target")
      for p in (prompt_source, prompt_target):
        if p.shape[-2] % 8 or p.shape[-1] % 8:
          raise ValueError(f"prompt height and width must be multiples of 8, got {p.shape}")
    if self.scale > 1:
      x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
    out_h, out_w = x.shape[-2:]
    image = reflect_pad_bottom_right(x, GENLV_PAD_MULTIPLE if self.use_prompt else PAD_MULTIPLE)

    enc1 = self.encoder_level1(self.patch_embed(image))
    enc2 = self.encoder_level2(self.down1_2(enc1))
    enc3 = self.encoder_level3(self.down2_3(enc2))
    if self.use_prompt:  # z_S (keys) and z_T (values) from one shared encoder
      latent = self.latent_blocks(self.down3_4(enc3),
                                  *self.Prompt_KV_Encoder(prompt_source, prompt_target))
    else:
      latent = self.latent(self.down3_4(enc3))
    dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
    dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
    dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1))
    out = self.output(self.refinement(dec1))
    if not self.use_prompt:  # X-Restormer's global residual; GenLV has none
      out = out + image
    return out[..., :out_h, :out_w]


def model_kwargs(config: Any) -> dict:
  """The GenLVTorch constructor arguments of a config's `model` section."""
  m = config.model
  return dict(
      dim=m.dim, num_blocks=tuple(m.num_blocks), num_refinement_blocks=m.num_refinement_blocks,
      heads=tuple(m.heads), overlap_ratio=m.overlap_ratio, window_size=m.window_size,
      spatial_dim_head=m.spatial_dim_head, ffn_expansion_factor=m.ffn_expansion_factor,
      bias=m.bias, scale=m.scale, use_prompt=m.use_prompt,
      prompt_encoder_width=m.prompt_encoder_width)


def build_torch_model(config: Any) -> GenLVTorch:
  """The PyTorch GenLV of a config (a ConfigDict or a config path), float32, in eval mode.

  `config.model.scan_blocks`, `remat`, `dtype` and the implementation switches change the Flax
  params' layout or speed only; the PyTorch module is the same for all of them.
  """
  from genlv_jax.config_io import load_config  # accepts a path or a ConfigDict
  return GenLVTorch(**model_kwargs(load_config(config))).eval()
