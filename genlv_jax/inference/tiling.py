"""Tiled inference: run an image-to-image function on overlapping tiles and blend them.

A 4000×3000 photo through a U-Net with attention does not fit in an accelerator's memory at
once; tiles of `tile`×`tile` pixels do, and the memory then depends on the tile size, not the
photo's (plus two host-side accumulators of the output's size). Neighbouring tiles overlap by
at least `overlap` pixels; in the overlap each tile's prediction is weighted by a raised-cosine
ramp (0 → 1 across the overlap, a partition of unity between two neighbours) so that seams do
not show. Edges on the image border are not ramped. The last tile of a row or column is moved
back inside the image rather than padded, so every tile has the same shape: one compilation.

Tiling is exact for a pointwise function. For GenLV it is an approximation wherever the
receptive field crosses a tile: the convolutions and 8×8 window attention are local, but the
channel attention (MDTA) normalises over the whole tile, and the bottleneck's global
self-attention attends over all of a tile's latent tokens (1/8 of its side), so tiles see
other statistics and context than the whole image; overlaps bring it closer (tests measure
it). `infer`'s default tile is the training resolution, 256 px (32×32 latent tokens): what the
global attention saw in training. Larger tiles change what it attends to, and its memory grows
quadratically with the tokens.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from genlv_jax.errors import UserError

ImageFn = Callable[[np.ndarray], np.ndarray]  # (n, h, w, 3) -> (n, h·scale, w·scale, 3)


def validate_tiling(tile: int, overlap: int, multiple: int = 64) -> None:
  """Raises UserError (one line) unless `tile` is a positive multiple of `multiple` and
  0 <= overlap < tile (the model pads to multiples of 64; other tile sizes waste the padding)."""
  if tile <= 0 or tile % multiple:
    raise UserError(f"tile size must be a positive multiple of {multiple}, got {tile}")
  if not 0 <= overlap < tile:
    raise UserError(f"overlap must be in [0, tile={tile}), got {overlap}")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
  """Start offsets of tiles of `tile` pixels covering [0, length) with >= `overlap` overlap.

  One tile at 0 when the length fits; otherwise a stride of tile - overlap, the last tile
  flush with the end (so it overlaps its neighbour by more, never by less).
  """
  if length <= tile:
    return [0]
  stride = tile - overlap
  return list(range(0, length - tile, stride)) + [length - tile]


def ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
  """1-D blending weights of one tile: raised-cosine ramps over `overlap` samples at the
  ramped ends, 1 elsewhere. Weights are strictly positive (sampled at pixel centres), so every
  pixel of the image has a non-zero total weight."""
  weights = np.ones(length, np.float64)
  n = min(overlap, length)
  if n > 0:
    rising = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
    if ramp_start:
      weights[:n] *= rising
    if ramp_end:
      weights[length - n:] *= rising[::-1]
  return weights


def pad_reflect_to_multiple(images: np.ndarray, multiple: int) -> np.ndarray:
  """Reflect-pads (n, h, w, c) at the bottom/right to multiples of `multiple` — exactly what
  the model does inside (numpy's and jnp's 'reflect' agree), done here so that images of
  nearby sizes share one compiled shape."""
  h, w = images.shape[1:3]
  pad_h, pad_w = -h % multiple, -w % multiple
  if pad_h == 0 and pad_w == 0:
    return images
  return np.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


def padded_to_multiple(fn: ImageFn, multiple: int, scale: int = 1) -> ImageFn:
  """`fn` applied to its input reflect-padded to `multiple`, the output cropped back."""

  def wrapped(images: np.ndarray) -> np.ndarray:
    h, w = images.shape[1:3]
    return np.asarray(fn(pad_reflect_to_multiple(images, multiple)))[:, :h * scale, :w * scale]

  return wrapped


def tiled_apply(fn: ImageFn, image: np.ndarray, tile: int, overlap: int, scale: int = 1,
                batch_size: int = 1, on_tile: Optional[Callable[[int, int], None]] = None
                ) -> np.ndarray:
  """Applies `fn` to an HxWxC image tile by tile and blends the tiles (module docstring).

  Args:
    fn: batched image function, (n, th, tw, C) -> (n, th·scale, tw·scale, C), numpy.
    image: HxWxC float array.
    tile: tile side in input pixels (a dimension smaller than it is taken whole).
    overlap: minimum overlap of neighbouring tiles, in input pixels.
    scale: output pixels per input pixel (the SR variants of X-Restormer).
    batch_size: tiles per call of `fn`; the last batch is filled up with repeats so that
      every call has the same shape.
    on_tile: called with (tiles done, tiles in all) after every batch (progress bars).

  Returns:
    The blended (H·scale)x(W·scale)xC float32 output.
  """
  h, w = image.shape[:2]
  ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
  th, tw = min(tile, h), min(tile, w)
  boxes = [(y, x) for y in ys for x in xs]
  s = scale
  out: Optional[np.ndarray] = None
  weight_sum = np.zeros((h * s, w * s, 1), np.float32)
  for first in range(0, len(boxes), batch_size):
    batch_boxes = boxes[first:first + batch_size]
    tiles = np.stack([image[y:y + th, x:x + tw] for y, x in batch_boxes])
    if len(batch_boxes) < batch_size:  # constant batch shape: no recompilation for the rest
      tiles = np.concatenate([tiles, np.repeat(tiles[-1:], batch_size - len(batch_boxes), 0)])
    predictions = np.asarray(fn(tiles), np.float32)[:len(batch_boxes)]
    if out is None:
      out = np.zeros((h * s, w * s, predictions.shape[-1]), np.float32)
    for (y, x), prediction in zip(batch_boxes, predictions):
      wy = ramp(th * s, overlap * s, y > 0, y + th < h)
      wx = ramp(tw * s, overlap * s, x > 0, x + tw < w)
      weights = (wy[:, None] * wx[None, :]).astype(np.float32)[:, :, None]
      out[y * s:(y + th) * s, x * s:(x + tw) * s] += weights * prediction
      weight_sum[y * s:(y + th) * s, x * s:(x + tw) * s] += weights
    if on_tile is not None:
      on_tile(min(first + batch_size, len(boxes)), len(boxes))
  out /= weight_sum  # in place: the accumulator becomes the result (host memory bound)
  return out
