"""Blur-family degradations: Gaussian, lens (defocus), motion, zoom, jitter, glass blur, ringing,
Richardson–Lucy artefacts and oversharpening (Table VI groups 2, 4 and 7).

Operators return the degraded image (unclipped). All filtering is done by OpenCV on the whole
image; the few Python loops run over zoom steps or RL iterations, never over pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import special

from genlv_jax.tasks import _util


def gaussian_blur(clean: np.ndarray, sigma: float, rng: np.random.Generator,
                  window: int | None = None) -> np.ndarray:
  """Isotropic Gaussian blur. By default as GenLV's loader blurs (x_distortion `blur_gaussian`,
  `skimage.filters.gaussian`): a kernel of radius int(4·sigma + 0.5), replicated borders.
  `window` fixes the kernel size instead, with reflected borders (PromptGIP
  `iso_GaussianBlur`, window 15, which truncates the kernel above sigma ≈ 2)."""
  del rng
  if window is not None:
    return cv2.GaussianBlur(clean, (window, window), sigma)
  size = 2 * int(4.0 * sigma + 0.5) + 1
  return cv2.GaussianBlur(clean, (size, size), sigma, borderType=cv2.BORDER_REPLICATE)


def disk_kernel(radius: float, supersample: int = 8) -> np.ndarray:
  """Anti-aliased uniform disk (the defocus PSF of a circular aperture)."""
  half = int(np.ceil(radius))
  n = (2 * half + 1) * supersample
  coords = (np.arange(n) + 0.5) / supersample - (half + 0.5)
  yy, xx = np.meshgrid(coords, coords, indexing="ij")
  inside = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float32)
  kernel = inside.reshape(2 * half + 1, supersample, 2 * half + 1, supersample).mean((1, 3))
  return kernel / kernel.sum()


def defocus_blur(clean: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
  """Lens (defocus) blur: convolution with a disk of `radius` px."""
  del rng
  return _util.convolve(clean, disk_kernel(radius))


def trail_kernel(sigma: float, angle_deg: float) -> np.ndarray:
  """Motion-trail PSF of GenLV's loader (x_distortion `blur_motion`, from imagecorruptions):
  taps i = 0, 1, … at integer offsets behind the pixel along the direction `angle_deg`,
  weighted by a one-sided Gaussian exp(−i²/2σ²). The authors stop after 2·radius + 1 taps with
  radius ≈ 1.7σ (their (radius, σ) pairs); we stop at 3.5σ, where under 0.3 % of the weight
  is left."""
  n = int(np.ceil(3.5 * sigma)) + 1
  i = np.arange(n)
  weights = np.exp(-i.astype(np.float64) ** 2 / (2.0 * sigma ** 2))
  a = np.deg2rad(angle_deg)
  # Their `shift` of tap i is by -ceil(i·p/|p| − 0.5) px in y and x: round half down.
  dy = -np.ceil(i * np.sin(a) - 0.5).astype(int)
  dx = -np.ceil(i * np.cos(a) - 0.5).astype(int)
  kernel = np.zeros((2 * n + 1, 2 * n + 1), np.float64)
  np.add.at(kernel, (n + dy, n + dx), weights)
  return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
  """Motion blur as GenLV's loader makes it: a Gaussian-weighted trail (`trail_kernel`) in a
  direction uniform in [−90°, 90°), replicated borders (their `shift` repeats the edge)."""
  kernel = trail_kernel(sigma, rng.uniform(-90.0, 90.0))
  return _util.convolve(clean, kernel, border=cv2.BORDER_REPLICATE)


def _zoom_map(n: int, z: float) -> tuple[float, float]:
  """(scale, offset) of the source coordinate `offset + scale·o` that GenLV's `clipped_zoom`
  reads for output pixel o along an axis of `n` px: scipy's `zoom` (order 1, corner-aligned
  grid) of the central ceil(n/z) px to round(ceil(n/z)·z) px, cut to the first n."""
  crop = int(np.ceil(n / float(z)))
  out = int(round(crop * z))
  return (crop - 1) / max(out - 1, 1), float((n - crop) // 2)


def zoom_blur(clean: np.ndarray, max_zoom: float, rng: np.random.Generator,
              step: float = 0.02) -> np.ndarray:
  """Zoom blur as GenLV's loader makes it (x_distortion `blur_zoom`, after ImageNet-C): the
  mean of the image and copies zoomed by 1, 1 + `step`, … up to `max_zoom` (so the unzoomed
  image counts twice), each zoom taken as theirs is (`_zoom_map`: fixed point left of and
  above the centre, where their crop cuts the zoomed image)."""
  del rng
  h, w, _ = clean.shape
  acc = clean.astype(np.float32).copy()
  zooms = np.arange(1.0, max_zoom + step / 2, step)
  for z in zooms:
    sy, ty = _zoom_map(h, z)
    sx, tx = _zoom_map(w, z)
    m = np.float32([[sx, 0, tx], [0, sy, ty]])
    acc += cv2.warpAffine(clean, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE).reshape(clean.shape)
  return acc / (len(zooms) + 1)


def displace_pixels(image: np.ndarray, spread: float, rng: np.random.Generator) -> np.ndarray:
  """Every pixel takes the value of a random neighbour, at offsets round(U(−spread, spread))
  in y and x (clamped at the border).

  GenLV's loader scrambles pixels with `shuffle_pixels_njit`, a sequential Numba loop of pair
  swaps within `shift` px — a loop over every pixel, too slow here without Numba. A random
  gather scrambles alike; since chained swaps carry values further than one gather, the
  catalogue sets `spread` per level to their input PSNR (tests/test_severities.py).
  """
  h, w = image.shape[:2]
  grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
  off = np.rint(rng.uniform(-spread, spread, size=(2, h, w))).astype(np.float32)
  map_x = np.clip(grid_x + off[0], 0, w - 1)
  map_y = np.clip(grid_y + off[1], 0, h - 1)
  return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_NEAREST).reshape(image.shape)


def jitter_blur(clean: np.ndarray, spread: float, rng: np.random.Generator) -> np.ndarray:
  """Jitter as GenLV's loader makes it (x_distortion `blur_jitter`, after KADID-10k): pixels
  scrambled locally (`displace_pixels`), no filtering."""
  return displace_pixels(clean, spread, rng)


def glass_blur(clean: np.ndarray, delta: float, rng: np.random.Generator,
               iterations: int = 2) -> np.ndarray:
  """Glass blur (GenLV x_distortion `blur_glass`, after ImageNet-C), vectorised: Gaussian blur,
  pixels scrambled within ±`delta` px (`displace_pixels`, `iterations` times), blur again. The
  blur sigma follows ImageNet-C's pairing of sigma with the shift: 0.6 + 0.22·delta."""
  sigma = 0.6 + 0.22 * delta
  out = cv2.GaussianBlur(clean, (0, 0), sigma)
  for _ in range(iterations):
    out = displace_pixels(out, delta, rng)
  return cv2.GaussianBlur(out, (0, 0), sigma)


def circular_lowpass_kernel(cutoff: float, kernel_size: int = 15, pad_to: int = 21) -> np.ndarray:
  """2-D sinc (ideal circular low-pass) kernel, as in PromptGIP/BasicSR's
  `circular_lowpass_kernel`: cutoff in radians (π = Nyquist)."""
  r = np.arange(kernel_size) - (kernel_size - 1) / 2.0
  rr = np.sqrt(r[:, None] ** 2 + r[None, :] ** 2)
  with np.errstate(divide="ignore", invalid="ignore"):
    kernel = cutoff * special.j1(cutoff * rr) / (2 * np.pi * rr)
  kernel[rr == 0] = cutoff ** 2 / (4 * np.pi)
  kernel /= kernel.sum()
  if pad_to > kernel_size:
    p = (pad_to - kernel_size) // 2
    kernel = np.pad(kernel, p)
  return kernel.astype(np.float32)


def ringing(clean: np.ndarray, omega_c: float, rng: np.random.Generator) -> np.ndarray:
  """Ringing artefacts: sinc filter (size 15 padded to 21, reflect borders), then rounding to
  8 bits (PromptGIP `add_ringing`, which fixes omega_c = 1.2)."""
  del rng
  # Cutoff rounded to 0.01 rad, as PromptGIP writes it (round(1.2, 2)): the kernel's
  # transform is then reused (`_util.correlate` memoises it) across samples of one cutoff.
  out = _util.convolve(clean, circular_lowpass_kernel(round(float(omega_c), 2)))
  return _util.quantize8(out)


def richardson_lucy(clean: np.ndarray, psf_size: float, rng: np.random.Generator,
                    num_iter: int = 1, pad: int = 7) -> np.ndarray:
  """Richardson–Lucy deconvolution artefacts (PromptGIP `r_l`): RL with a `psf_size`² box PSF
  applied to the clean image after 'linear_ramp' padding of 7 px, as
  `skimage.restoration.richardson_lucy` computes it (start at 0.5, zero-padded 'same'
  convolutions, clip to [-1, 1])."""
  del rng
  k = int(psf_size) | 1  # odd
  img = np.pad(clean.astype(np.float32), ((pad, pad), (pad, pad), (0, 0)), mode="linear_ramp")
  est = np.full(img.shape, 0.5, np.float32)
  for _ in range(num_iter):
    # A box PSF is symmetric: its zero-padded 'same' convolution is a normalised box filter.
    conv = cv2.boxFilter(est, -1, (k, k), borderType=cv2.BORDER_CONSTANT) + np.float32(1e-12)
    est = est * cv2.boxFilter(img / conv, -1, (k, k), borderType=cv2.BORDER_CONSTANT)
  return np.clip(est, -1.0, 1.0)[pad:-pad, pad:-pad]


def oversharpen(clean: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
  """Over-applied unsharp masking as GenLV's loader does it (x_distortion `oversharpen`):
  (1 + amount)·clean − amount·GaussianBlur(clean, 5×5, sigma 1.1 — OpenCV's default for a
  5-tap kernel) — halos and clipped highlights along edges."""
  del rng
  return clean + amount * (clean - cv2.GaussianBlur(clean, (5, 5), 0))
