"""Layer and occlusion degradations: PromptGIP's additive rain, inpainting strokes, spatter,
synthetic reflection and watermarks (Table VI groups 4, 8, 9 and 11).

Pixel-sized parameters from PromptGIP (streak length, stroke thickness) are given for ~256 px
images and rescaled with the image's shorter side (`_util.pixel_scale`).
"""

from __future__ import annotations

import cv2
import numpy as np

from genlv_jax.tasks import _util

_RAIN_SEED_KERNEL = np.array([[0, 0.1, 0], [0.1, 8, 0.1], [0, 0.1, 0]], np.float32)


def rain_streaks(shape: tuple[int, int], value: float, rng: np.random.Generator) -> np.ndarray:
  """PromptGIP `get_noise` + `rain_blur`: sparse seeds (a fraction value/25600 of the pixels,
  seed values in [256 − v, 256), v = value/100), a small cross kernel, a rotated diagonal
  streak kernel of length 30–40 px (scaled to the image) at −45°..45°, Gaussian-widened
  (width 3–11 px), min–max normalised to [0, 255]. Returns an HxW float32 layer in [0, 1]."""
  h, w = shape
  scale = _util.pixel_scale(shape)
  v = value * 0.01
  seeds = rng.random((h, w), dtype=np.float32) * np.float32(256.0)
  seeds[seeds < 256 - v] = 0
  if not seeds.any():  # tiny images: keep at least one drop so the pair always differs
    seeds[rng.integers(h), rng.integers(w)] = 255.0
  seeds = cv2.filter2D(seeds, -1, _RAIN_SEED_KERNEL)
  length = max(3, int(round(rng.integers(30, 41) * scale)))
  angle = float(rng.integers(-45, 45))
  width = int(rng.choice([3, 5, 7, 9, 11]))
  width = max(1, int(round(width * scale)) | 1)
  rot = cv2.getRotationMatrix2D((length / 2, length / 2), angle - 45, 1 - length / 100.0)
  kernel = cv2.warpAffine(np.diag(np.ones(length, np.float32)), rot, (length, length))
  kernel = cv2.GaussianBlur(kernel, (width, width), 0)
  streaks = _util.correlate(seeds, kernel)  # cv2.filter2D, by FFT for these 30-40 px kernels
  lo, hi = float(streaks.min()), float(streaks.max())
  streaks = (streaks - lo) / max(hi - lo, 1e-6)
  # PromptGIP casts the normalised layer to uint8 before adding it.
  return np.floor(streaks * 255.0) / 255.0


def add_rain(clean: np.ndarray, value: float, rng: np.random.Generator) -> np.ndarray:
  """Simple additive rain (PromptGIP `add_rain`, value ∈ [40, 200] for its training)."""
  return clean + rain_streaks(clean.shape[:2], value, rng)[:, :, None]


def stroke_mask(shape: tuple[int, int], num: int, thickness: int,
                rng: np.random.Generator) -> np.ndarray:
  """HxW uint8 mask of `num` straight strokes between random points (PromptGIP `inpainting`)."""
  h, w = shape
  mask = np.zeros((h, w), np.uint8)
  pts = np.stack([rng.integers(0, w + 1, (num, 2)), rng.integers(0, h + 1, (num, 2))], axis=2)
  cv2.polylines(mask, [p.reshape(-1, 1, 2).astype(np.int32) for p in pts], False, 1,
                max(1, thickness))
  return mask


def inpainting_strokes(clean: np.ndarray, strokes: float, rng: np.random.Generator) -> np.ndarray:
  """PromptGIP `inpainting`: `strokes` lines of thickness `strokes` px (both 5–10 in PromptGIP,
  thickness scaled to the image), painted white or black (random per image)."""
  scale = _util.pixel_scale(clean.shape)
  mask = stroke_mask(clean.shape[:2], int(round(strokes)), int(round(strokes * scale)), rng)
  color = 1.0 if rng.random() < 0.5 else 0.0
  return np.where(mask[:, :, None] > 0, np.float32(color), clean)


# Above this coverage the spatter is mud, below it water: GenLV's loader draws water at its
# severities 1–3 and mud at 4–5, whose coverages (the catalogue's levels) lie either side.
MUD_ABOVE_COVERAGE = 0.3


def spatter(clean: np.ndarray, coverage: float, rng: np.random.Generator) -> np.ndarray:
  """Spatter (after GenLV's and ImageNet-C's `spatter`), vectorised: a smooth random field
  thresholded so that a fraction `coverage` of the image is hit; 'water' drops (blurred,
  brightened, bluish translucent) up to `MUD_ABOVE_COVERAGE`, 'mud' (dark brown, mostly
  opaque) above it."""
  h, w, _ = clean.shape
  scale = _util.pixel_scale(clean.shape)
  field = _util.smooth_noise((h, w), 3.0 * scale, rng)
  thr = float(np.quantile(field, 1.0 - coverage))
  soft = np.clip((field - thr) / 0.25, 0.0, 1.0)
  soft = cv2.GaussianBlur(soft, (0, 0), max(0.5, scale))[:, :, None]
  if coverage <= MUD_ABOVE_COVERAGE:  # water: refraction blur + a bright, slightly blue sheen
    under = cv2.GaussianBlur(clean, (0, 0), max(1.0, 2.0 * scale))
    drop = 0.6 * under + 0.4 * np.array([0.80, 0.88, 0.95], np.float32)
    alpha = 0.8
  else:  # mud
    drop = np.array([0.36, 0.25, 0.15], np.float32) * (0.8 + 0.4 * soft)
    alpha = 0.8
  return clean * (1.0 - alpha * soft) + drop * alpha * soft


def reflection(clean: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
  """Synthetic reflection: (1 − α)·T + α·R, with R a blurred (sigma 1.5–4 px, scaled),
  mirrored and shifted copy of the scene — a defocused ghost as behind a window pane
  (the usual T + blur(R) model; we reuse the scene for R because the operator sees one image)."""
  h, w, _ = clean.shape
  refl = clean[::-1, ::-1] if rng.random() < 0.5 else clean[:, ::-1]
  refl = np.roll(refl, (rng.integers(0, h), rng.integers(0, w)), axis=(0, 1))
  sigma = rng.uniform(1.5, 4.0) * _util.pixel_scale(clean.shape)
  refl = cv2.GaussianBlur(np.ascontiguousarray(refl), (0, 0), max(sigma, 0.5))
  return (1.0 - alpha) * clean + alpha * refl


_WATERMARK_TEXTS = ("SAMPLE", "GenLV", "(c) PHOTO", "PREVIEW", "STOCK", "DRAFT")


def watermark_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
  """HxW float mask of a tiled, rotated text watermark (anti-aliased)."""
  h, w = shape
  side = int(np.ceil(np.hypot(h, w)))
  canvas = np.zeros((side, side), np.uint8)
  text = str(rng.choice(_WATERMARK_TEXTS))
  font_scale = max(0.3, min(h, w) / 256.0 * rng.uniform(0.8, 1.4))
  thick = max(1, int(round(2 * font_scale)))
  (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
  step_x, step_y = int(tw * 1.5) + 1, int(th * 3.0) + 1
  off = rng.integers(0, step_x)
  for row, y in enumerate(range(th, side, step_y)):
    for x in range(-off - (row % 2) * step_x // 2, side, step_x):
      cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, 255, thick,
                  cv2.LINE_AA)
  rot = cv2.getRotationMatrix2D((side / 2, side / 2), float(rng.uniform(-45, 45)), 1.0)
  canvas = cv2.warpAffine(canvas, rot, (side, side))
  y0, x0 = (side - h) // 2, (side - w) // 2
  return canvas[y0:y0 + h, x0:x0 + w].astype(np.float32) / 255.0


def watermark(clean: np.ndarray, opacity: float, rng: np.random.Generator) -> np.ndarray:
  """Semi-transparent tiled text watermark (white or black) of `opacity`."""
  mask = watermark_mask(clean.shape[:2], rng)[:, :, None] * opacity
  color = np.float32(1.0 if rng.random() < 0.7 else 0.0)
  return clean * (1.0 - mask) + color * mask
