"""Compression, quantisation, sampling degradations: JPEG, JPEG 2000, colour quantisation
(multi-Otsu, equal-population histogram, median cut), pixelation, Bayer mosaicking and
bicubic down/up-sampling for super-resolution (Table VI groups 1, 4, 5, 6).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from genlv_jax.tasks import _util


def jpeg(clean: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
  """JPEG round trip through OpenCV at `quality` (PromptGIP `add_JPEG_noise`: cv2.imencode on
  the 8-bit BGR image; we convert our RGB to BGR so that chroma is handled identically)."""
  del rng
  bgr = cv2.cvtColor(_util.to_uint8(clean), cv2.COLOR_RGB2BGR)
  ok, buf = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
  if not ok:
    raise RuntimeError("cv2.imencode failed for JPEG")
  return _util.from_uint8(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


def jpeg2000(clean: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
  """JPEG 2000 round trip through Pillow/OpenJPEG at compression ratio `rate` (one quality
  layer, `quality_mode='rates'`)."""
  del rng
  buf = io.BytesIO()
  Image.fromarray(_util.to_uint8(clean)).save(buf, format="JPEG2000", quality_mode="rates",
                                               quality_layers=[float(rate)])
  buf.seek(0)
  with Image.open(buf) as im:
    return _util.from_uint8(np.asarray(im.convert("RGB")))


def _replace_by_class_mean(channel: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
  """Replaces every pixel of `channel` by the mean of its class (vectorised with bincount)."""
  flat = labels.ravel()
  counts = np.bincount(flat, minlength=n)
  sums = np.bincount(flat, weights=channel.ravel().astype(np.float64), minlength=n)
  means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
  return means[labels].astype(np.float32)


_OTSU_BINS = 64


def multiotsu_thresholds(counts: np.ndarray, centers: np.ndarray, classes: int) -> np.ndarray:
  """Multi-level Otsu thresholds of a histogram (the centre of the last bin of every class but
  the last, as `skimage.filters.threshold_multiotsu` reports them), by dynamic programming:
  the between-class variance is a sum over classes of (Σ count·centre)² / Σ count, so the best
  split into k classes extends a best split into k − 1 — O(classes·bins²) instead of skimage's
  O(bins^(classes−1)) search (4 ms → 0.1 ms). It finds the exact optimum; on the builtin images
  skimage's search ends a bin early in about a third of the cases, never better."""
  n = len(counts)
  cum_w = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
  cum_s = np.concatenate([[0.0], np.cumsum(counts * centers.astype(np.float64))])
  # score[i, j]: the class made of bins i .. j-1 (i < j), -inf elsewhere.
  w = cum_w[None, :] - cum_w[:, None]
  with np.errstate(divide="ignore", invalid="ignore"):
    score = np.where(w > 0, (cum_s[None, :] - cum_s[:, None]) ** 2 / w, 0.0)
  score[np.tril_indices(n + 1)] = -np.inf
  best = score[0]  # best[j]: bins 0 .. j-1 in one class
  splits = []
  for _ in range(classes - 1):
    total = best[:, None] + score
    splits.append(np.argmax(total, axis=0))
    best = total[splits[-1], np.arange(n + 1)]
  edges, j = [], n
  for split in reversed(splits):
    j = int(split[j])
    edges.append(j)
  return centers[np.array(edges[::-1]) - 1]


def quantize_otsu(clean: np.ndarray, classes: float, rng: np.random.Generator) -> np.ndarray:
  """Per-channel multi-level Otsu quantisation: `classes`-level Otsu thresholds
  (`multiotsu_thresholds`) on a 64-bin histogram of the channel, every pixel replaced by its
  class mean. Channels with fewer distinct values than classes are left unchanged."""
  del rng
  out = np.empty_like(clean)
  n = int(classes)
  for c in range(3):
    ch = clean[:, :, c]
    lo, hi = float(ch.min()), float(ch.max())
    # The histogram skimage would build (64 equal bins over [min, max]), by bincount: its
    # own np.histogram and digitize cost more than the threshold search. 64 bins keep
    # 5-class Otsu at milliseconds where 256 bins take seconds.
    bins = np.minimum(((ch - lo) * np.float32(_OTSU_BINS / max(hi - lo, 1e-12))).astype(np.int32),
                      _OTSU_BINS - 1)
    counts = np.bincount(bins.ravel(), minlength=_OTSU_BINS)
    if np.count_nonzero(counts) <= n or np.unique(_util.to_uint8(ch)).size <= n:
      out[:, :, c] = ch
      continue
    centers = lo + (np.arange(_OTSU_BINS) + 0.5) * (hi - lo) / _OTSU_BINS
    thresholds = multiotsu_thresholds(counts, centers, n)
    labels = np.zeros(ch.shape, np.int64)
    for t in thresholds:  # np.digitize: the number of thresholds <= the value
      labels += ch >= t
    out[:, :, c] = _replace_by_class_mean(ch, labels, n)
  return out


def quantize_histogram(clean: np.ndarray, levels: float, rng: np.random.Generator) -> np.ndarray:
  """Per-channel equal-population ("histogram") quantisation: bin edges at the channel's
  quantiles k/levels, every pixel replaced by its bin mean."""
  del rng
  n = int(levels)
  out = np.empty_like(clean)
  qs = np.linspace(0.0, 1.0, n + 1)[1:-1]
  for c in range(3):
    ch = clean[:, :, c]
    edges = np.unique(np.quantile(ch, qs))
    labels = np.searchsorted(edges, ch, side="right")
    out[:, :, c] = _replace_by_class_mean(ch, labels, n)
  return out


def quantize_median_cut(clean: np.ndarray, colors: float, rng: np.random.Generator) -> np.ndarray:
  """Palette quantisation to `colors` colours with Pillow's median-cut algorithm."""
  del rng
  im = Image.fromarray(_util.to_uint8(clean))
  # The palette is cut from every other pixel of every other row (a quarter of them, 4× less
  # work, the same colour population up to sampling), then every pixel takes its nearest
  # palette colour — which is what median cut's own mapping step does.
  sample = im.resize((max(1, im.width // 2), max(1, im.height // 2)), Image.Resampling.NEAREST)
  palette = sample.quantize(colors=int(colors), method=Image.Quantize.MEDIANCUT,
                            dither=Image.Dither.NONE)
  q = im.quantize(palette=palette, dither=Image.Dither.NONE)
  return _util.from_uint8(np.asarray(q.convert("RGB")))


def pixelate(clean: np.ndarray, block: float, rng: np.random.Generator) -> np.ndarray:
  """Pixelation (ImageNet-C `pixelate`): area-downsample by `block`, nearest-upsample back."""
  del rng
  h, w, _ = clean.shape
  small = cv2.resize(clean, (max(1, round(w / block)), max(1, round(h / block))),
                     interpolation=cv2.INTER_AREA)
  return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def bayer_mosaic(clean: np.ndarray) -> np.ndarray:
  """RGGB Bayer mosaic (16-bit, one plane): R at (even, even), B at (odd, odd), G elsewhere."""
  h, w, _ = clean.shape
  u16 = np.round(np.clip(clean, 0, 1) * 65535.0).astype(np.uint16)
  mosaic = u16[:, :, 1].copy()
  mosaic[0::2, 0::2] = u16[0::2, 0::2, 0]
  mosaic[1::2, 1::2] = u16[1::2, 1::2, 2]
  return mosaic


def demosaic_bilinear(clean: np.ndarray, unused: float, rng: np.random.Generator) -> np.ndarray:
  """Input of the demosaicing task: the RGGB mosaic of the clean image, demosaiced with
  OpenCV's bilinear interpolation (colour fringes and zippering on edges). OpenCV names
  Bayer patterns from the second row, so our RGGB layout is its `BayerBG`."""
  del unused, rng
  rgb = cv2.cvtColor(bayer_mosaic(clean), cv2.COLOR_BayerBG2RGB)
  return rgb.astype(np.float32) / 65535.0


def _resize_bicubic(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Antialiased bicubic resize of each channel with Pillow (mode 'F'), which matches MATLAB's
  `imresize` closely — the usual SR benchmark degradation."""
  w, h = size
  planes = [np.asarray(Image.fromarray(image[:, :, c]).resize((w, h), Image.Resampling.BICUBIC))
            for c in range(image.shape[2])]
  return np.stack(planes, axis=2).astype(np.float32)


def bicubic_down_up(clean: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
  """SR input at the HR size: bicubic ×1/`scale` downsampling, then bicubic upsampling back
  (GenLV works at a fixed resolution, so the LR image is presented upsampled)."""
  del rng
  h, w, _ = clean.shape
  small = _resize_bicubic(clean, (max(1, round(w / scale)), max(1, round(h / scale))))
  return _resize_bicubic(small, (w, h))

