"""Procedural stylizations of Table VIII: pencil drawing, photographic style and RTV, plus the
enhancement filters LLF and MTM of Table VII (their operators live in `edge_aware`).

ACMMM §4.1: "Data of the first three styles [pencil drawing, photographic style, RTV] are
implemented via available toolkit". We implement the published algorithms ourselves,
simplified where noted, so that pairs can be made on the fly from any clean image.
"""

from __future__ import annotations

import cv2
import numpy as np

from genlv_jax.tasks import _util, edge_aware


# ---- Pencil drawing (Lu, Xu & Jia 2012, "Combining sketch and tone for pencil drawing
# production") --------------------------------------------------------------------------------

def _line_kernels(length: int, directions: int = 8) -> np.ndarray:
  """`directions` anti-aliased line segments of `length` px through the centre."""
  size = length | 1
  kernels = np.zeros((directions, size, size), np.float32)
  c = size // 2
  for i in range(directions):
    theta = np.pi * i / directions
    dx, dy = np.cos(theta) * c, np.sin(theta) * c
    cv2.line(kernels[i], (int(round(c - dx)), int(round(c - dy))),
             (int(round(c + dx)), int(round(c + dy))), 1.0, 1, cv2.LINE_AA)
    kernels[i] /= kernels[i].sum()
  return kernels


def pencil_stroke(gray: np.ndarray, length: int) -> np.ndarray:
  """Stroke layer S in [0, 1] (1 = paper): gradient magnitude classified by the direction of
  the strongest line response, each class re-drawn with its line kernel (Lu et al. Sec. 3.1)."""
  gx = np.diff(gray, axis=1, append=gray[:, -1:])
  gy = np.diff(gray, axis=0, append=gray[-1:, :])
  grad = np.sqrt(gx ** 2 + gy ** 2).astype(np.float32)
  kernels = _line_kernels(length)
  responses = np.stack([cv2.filter2D(grad, -1, k) for k in kernels])
  best = np.argmax(responses, axis=0)
  strokes = sum(cv2.filter2D(np.where(best == i, grad, 0.0).astype(np.float32), -1, k)
                for i, k in enumerate(kernels))
  strokes = strokes / max(float(strokes.max()), 1e-6)
  return 1.0 - np.clip(strokes * 1.5, 0.0, 1.0)


def _pencil_tone_cdf() -> np.ndarray:
  """CDF over 256 levels of Lu et al.'s tone model: a bright Laplacian layer, a uniform
  mid-tone layer and a dark Gaussian layer, weights 52 : 37 : 11 (their Eq. 5 parameters:
  σb = 9, ua = 105, ub = 225, μd = 90, σd = 11)."""
  v = np.arange(256, dtype=np.float64)
  bright = np.exp(-(255 - v) / 9.0) / 9.0
  mid = ((v >= 105) & (v <= 225)) / (225 - 105)
  dark = np.exp(-((v - 90) ** 2) / (2 * 11 ** 2)) / np.sqrt(2 * np.pi * 11 ** 2)
  pdf = 0.52 * bright + 0.37 * mid + 0.11 * dark
  cdf = np.cumsum(pdf)
  return cdf / cdf[-1]


def match_to_cdf(gray: np.ndarray, target_cdf: np.ndarray) -> np.ndarray:
  """Histogram specification of a [0, 1] image onto a 256-level target CDF."""
  u8 = _util.to_uint8(gray)
  hist = np.bincount(u8.ravel(), minlength=256).astype(np.float64)
  src_cdf = np.cumsum(hist) / hist.sum()
  lut = np.searchsorted(target_cdf, src_cdf, side="left").clip(0, 255)
  return lut[u8].astype(np.float32) / 255.0


def pencil_drawing(clean: np.ndarray, unused: float = 0.0,
                   rng: np.random.Generator | None = None) -> np.ndarray:
  """Gray pencil drawing = stroke layer × tone layer. Simplification of Lu et al.: the tone
  map (histogram-matched to their tone model, then lightly smoothed) replaces the rendering
  with a scanned pencil texture, which we do not ship."""
  del unused, rng
  gray = _util.luminance(clean)
  length = max(3, int(round(min(gray.shape) / 30)))
  tone = cv2.GaussianBlur(match_to_cdf(gray, _pencil_tone_cdf()), (0, 0), 1.0)
  return _util.gray3(pencil_stroke(gray, length) * tone)


# ---- Photographic style (Bae, Paris & Durand 2006 look, rendered with a local Laplacian
# filter as in Aubry et al. 2014, ref. [2] of the ACMMM paper) ---------------------------------

def _photographic_cdf() -> np.ndarray:
  """A fixed high-contrast black-and-white model histogram (deep blacks, bright whites, a
  broad mid-tone), standing in for the model photograph of the style transfer."""
  v = np.arange(256, dtype=np.float64) / 255.0
  pdf = 0.25 * np.exp(-v / 0.08) + 0.25 * np.exp(-(1 - v) / 0.08) + 0.5 * np.exp(
      -((v - 0.45) ** 2) / (2 * 0.2 ** 2))
  cdf = np.cumsum(pdf)
  return cdf / cdf[-1]


def photographic_style(clean: np.ndarray, unused: float = 0.0,
                       rng: np.random.Generator | None = None) -> np.ndarray:
  """Black-and-white 'photographic' look: luminance detail enhanced by LLF (alpha 0.5,
  sigma_r 0.25, 8 reference levels — the tone matching that follows hides the difference from
  12, and it keeps this task above 50 samples/s), then the global tones matched to a fixed
  high-contrast model histogram."""
  del unused, rng
  gray = _util.luminance(clean)[:, :, None]
  detail = edge_aware.local_laplacian(gray, sigma_r=0.25, alpha=0.5, beta=1.0,
                                      num_refs=8)[:, :, 0]
  return _util.gray3(match_to_cdf(np.clip(detail, 0, 1), _photographic_cdf()))


def llf_enhance(clean: np.ndarray, unused: float = 0.0,
                rng: np.random.Generator | None = None) -> np.ndarray:
  """Local Laplacian detail enhancement of the colour image (sigma_r 0.2, alpha 0.5, beta 1),
  the 'LLF' enhancement task (PromptGIP trains it on FiveK expert-C images)."""
  del unused, rng
  return edge_aware.local_laplacian(clean, sigma_r=0.2, alpha=0.5, beta=1.0)


def mtm_enhance(clean: np.ndarray, unused: float = 0.0,
                rng: np.random.Generator | None = None) -> np.ndarray:
  """Multi-scale tone manipulation (Farbman et al. 2008), detail boosts 2.0 / 1.6 / 1.2."""
  del unused, rng
  return edge_aware.multiscale_tone(clean)


def rtv_smooth(clean: np.ndarray, unused: float = 0.0,
               rng: np.random.Generator | None = None) -> np.ndarray:
  """RTV structure extraction with the authors' defaults (λ 0.01, σ 3, 4 iterations)."""
  del unused, rng
  return edge_aware.relative_total_variation(clean)
