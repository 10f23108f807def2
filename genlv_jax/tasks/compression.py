"""Compression, quantisation, sampling degradations: JPEG, JPEG 2000, colour quantisation
(multi-Otsu, histogram, median cut), pixelation, Bayer mosaicking and bicubic down/up-sampling
for super-resolution (Table VI groups 1, 4, 5, 6), as GenLV's own loader makes them
(x_distortion, `mosaic_CFA_Bayer`, 'SRx2'/'SRx4'; see each function).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from genlv_jax.tasks import _util


def jpeg(clean: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
  """JPEG round trip through OpenCV at `quality` (PromptGIP `add_JPEG_noise`: cv2.imencode on
  the 8-bit BGR image; we convert our RGB to BGR so that chroma is handled identically).
  GenLV's x_distortion `compression_jpeg` encodes with Pillow instead; both use libjpeg's
  standard tables and 4:2:0 chroma, so the same quality gives the same loss."""
  del rng
  bgr = cv2.cvtColor(_util.to_uint8(clean), cv2.COLOR_RGB2BGR)
  ok, buf = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
  if not ok:
    raise RuntimeError("cv2.imencode failed for JPEG")
  return _util.from_uint8(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


def jpeg2000(clean: np.ndarray, psnr_db: float, rng: np.random.Generator) -> np.ndarray:
  """JPEG 2000 round trip through Pillow/OpenJPEG with one quality layer whose target is
  `psnr_db` dB (GenLV x_distortion `compression_jpeg_2000`: `quality_mode='dB'`,
  `quality_layers=[29 … 23]`); OpenJPEG stops coding when the layer reaches that PSNR."""
  del rng
  buf = io.BytesIO()
  Image.fromarray(_util.to_uint8(clean)).save(buf, format="JPEG2000", quality_mode="dB",
                                               quality_layers=[float(psnr_db)])
  buf.seek(0)
  with Image.open(buf) as im:
    return _util.from_uint8(np.asarray(im.convert("RGB")))


# GenLV's loader computes its thresholds on a 30-bin histogram (x_distortion
# `quantization_otsu`, `threshold_multiotsu(..., nbins=30)`).
_OTSU_BINS = 30


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
  """Per-channel multi-level Otsu quantisation as GenLV's loader does it (x_distortion
  `quantization_otsu`): `classes`-level Otsu thresholds (`multiotsu_thresholds`) on a 30-bin
  histogram over the channel's [min, max]; class i is shown at min + i·(max − min)/classes —
  evenly spaced levels from the minimum that never reach the maximum, so the quantised image
  is also darker. Channels with fewer distinct values than classes are left unchanged."""
  del rng
  out = np.empty_like(clean)
  n = int(classes)
  for c in range(3):
    ch = clean[:, :, c]
    lo, hi = float(ch.min()), float(ch.max())
    # The histogram skimage would build (equal bins over [min, max]), by bincount: its own
    # np.histogram and digitize cost more than the threshold search.
    bins = np.minimum(((ch - lo) * np.float32(_OTSU_BINS / max(hi - lo, 1e-12))).astype(np.int32),
                      _OTSU_BINS - 1)
    counts = np.bincount(bins.ravel(), minlength=_OTSU_BINS)
    if np.count_nonzero(counts) <= n or np.unique(_util.to_uint8(ch)).size <= n:
      out[:, :, c] = ch
      continue
    centers = lo + (np.arange(_OTSU_BINS) + 0.5) * (hi - lo) / _OTSU_BINS
    thresholds = multiotsu_thresholds(counts, centers, n)
    labels = np.zeros(ch.shape, np.float32)
    for t in thresholds:  # np.digitize: the number of thresholds <= the value
      labels += ch >= t
    out[:, :, c] = lo + labels * np.float32((hi - lo) / n)
  return out


def quantize_histogram(clean: np.ndarray, levels: float, rng: np.random.Generator) -> np.ndarray:
  """Histogram quantisation as GenLV's loader does it (x_distortion `quantization_hist`): the
  8-bit values (all channels together) are rounded to `levels` evenly spaced levels, and level
  i is shown at the normalised cumulative count of bin i of a `levels`-bin histogram of the
  image — coarse quantisation plus a global, equalising tone change."""
  del rng
  n = int(levels)
  u8 = _util.to_uint8(clean)
  hist = np.histogram(u8, bins=n, range=(0, 255))[0]
  cdf = np.cumsum(hist).astype(np.float64)
  nonzero = cdf[cdf > 0]
  lo, hi = float(nonzero.min()), float(nonzero.max())
  # Theirs masks empty leading bins (cumulative count 0) and fills them with 0 afterwards,
  # then truncates to uint8.
  mapped = np.where(cdf > 0, (cdf - lo) * 255.0 / max(hi - lo, 1e-12), 0.0).astype(np.uint8)
  index = np.round(u8 / 255.0 * (n - 1)).astype(np.intp)
  return _util.from_uint8(mapped[index])


def quantize_median_cut(clean: np.ndarray, colors: float, rng: np.random.Generator) -> np.ndarray:
  """Per-channel median-cut quantisation to `colors` grey levels with Pillow, as GenLV's loader
  does it (x_distortion `quantization_median`)."""
  del rng
  u8 = _util.to_uint8(clean)
  out = np.empty_like(u8)
  for c in range(3):
    plane = Image.fromarray(np.ascontiguousarray(u8[:, :, c]))
    out[:, :, c] = np.asarray(
        plane.quantize(colors=int(colors), method=Image.Quantize.MEDIANCUT).convert("L"))
  return _util.from_uint8(out)


def pixelate(clean: np.ndarray, block: float, rng: np.random.Generator) -> np.ndarray:
  """Pixelation as GenLV's loader makes it (x_distortion `pixelate`, after ImageNet-C): Pillow
  BOX-downsampling to int(size/`block`), NEAREST-upsampling back (per channel, in float)."""
  del rng
  h, w, _ = clean.shape
  # Their int(w·c) with c = 1/block: the epsilon keeps 128·0.4 = 51.2 from becoming 51.19….
  small = (max(1, int(w / block + 1e-6)), max(1, int(h / block + 1e-6)))
  planes = []
  for c in range(3):
    plane = Image.fromarray(np.ascontiguousarray(clean[:, :, c]))
    plane = plane.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.NEAREST)
    planes.append(np.asarray(plane))
  return np.stack(planes, axis=2).astype(np.float32)


def bayer_mosaic(clean: np.ndarray, unused: float, rng: np.random.Generator) -> np.ndarray:
  """Input of the demosaicing task as GenLV's loader makes it (`mosaic_CFA_Bayer` in
  extended_version/dataset/image_operators.py): the 8-bit Bayer samples left in their own
  channel and zeros elsewhere — no interpolation. Their 'RGGB' masks act on OpenCV's BGR
  image, so in RGB order the layout is BGGR: B at (even, even), R at (odd, odd), G elsewhere."""
  del unused, rng
  rgb = _util.quantize8(clean)
  out = np.zeros_like(rgb)
  out[0::2, 0::2, 2] = rgb[0::2, 0::2, 2]
  out[0::2, 1::2, 1] = rgb[0::2, 1::2, 1]
  out[1::2, 0::2, 1] = rgb[1::2, 0::2, 1]
  out[1::2, 1::2, 0] = rgb[1::2, 1::2, 0]
  return out


def _downscale_bicubic(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Antialiased bicubic downscaling of each channel with Pillow (mode 'F'), which matches
  MATLAB's `imresize` (the authors use BasicSR's port of it) closely."""
  w, h = size
  planes = [np.asarray(Image.fromarray(image[:, :, c]).resize((w, h), Image.Resampling.BICUBIC))
            for c in range(image.shape[2])]
  return np.stack(planes, axis=2).astype(np.float32)


def bicubic_down_up(clean: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
  """SR input at the HR size, as GenLV's loader makes it ('SRx2', 'SRx4'): antialiased bicubic
  ×1/`scale` downsampling, then OpenCV bicubic (`INTER_CUBIC`) upsampling back (GenLV works at
  a fixed resolution, so the LR image is presented upsampled)."""
  del rng
  h, w, _ = clean.shape
  small = _downscale_bicubic(clean, (max(1, round(w / scale)), max(1, round(h / scale))))
  return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).reshape(clean.shape)
