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
                  window: int = 15) -> np.ndarray:
  """Isotropic Gaussian blur with a fixed 15×15 window (PromptGIP `iso_GaussianBlur`)."""
  del rng
  return cv2.GaussianBlur(clean, (window, window), sigma)


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


def line_kernel(length: float, angle_deg: float, supersample: int = 8) -> np.ndarray:
  """Anti-aliased straight-line PSF of `length` px at `angle_deg` (uniform linear motion)."""
  half = int(np.ceil(length / 2.0)) + 1
  size = (2 * half + 1) * supersample
  canvas = np.zeros((size, size), np.float32)
  c = size / 2.0
  dx = np.cos(np.deg2rad(angle_deg)) * length * supersample / 2.0
  dy = np.sin(np.deg2rad(angle_deg)) * length * supersample / 2.0
  p0 = (int(round(c - dx)), int(round(c - dy)))
  p1 = (int(round(c + dx)), int(round(c + dy)))
  cv2.line(canvas, p0, p1, 1.0, thickness=supersample, lineType=cv2.LINE_AA)
  kernel = canvas.reshape(2 * half + 1, supersample, 2 * half + 1, supersample).sum((1, 3))
  return kernel / kernel.sum()


def motion_blur(clean: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
  """Uniform linear motion blur of `length` px in a random direction."""
  return _util.convolve(clean, line_kernel(length, rng.uniform(0.0, 180.0)))


def zoom_blur(clean: np.ndarray, max_zoom: float, rng: np.random.Generator,
              steps: int = 8) -> np.ndarray:
  """Zoom blur (ImageNet-C `zoom_blur`): the mean of the image and `steps` copies zoomed about
  a point near the centre by factors up to `max_zoom`."""
  h, w, _ = clean.shape
  cx = w / 2.0 + rng.uniform(-0.1, 0.1) * w
  cy = h / 2.0 + rng.uniform(-0.1, 0.1) * h
  acc = clean.astype(np.float32).copy()
  for z in np.linspace(1.0, max_zoom, steps + 1)[1:]:
    m = np.float32([[z, 0, (1 - z) * cx], [0, z, (1 - z) * cy]])
    acc += cv2.warpAffine(clean, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)
  return acc / (steps + 1)


def jitter_kernel(amplitude: float, rng: np.random.Generator, steps: int = 64) -> np.ndarray:
  """Camera-jitter PSF: a random-walk trajectory (Brownian, with its RMS end-to-end distance
  equal to `amplitude` px), splatted bilinearly onto a grid."""
  step = rng.standard_normal((steps, 2)) * amplitude / np.sqrt(steps)
  path = np.cumsum(step, axis=0)
  path -= path.mean(axis=0)
  half = int(np.ceil(np.abs(path).max())) + 1
  size = 2 * half + 1
  kernel = np.zeros((size, size), np.float64)
  pos = path + half
  i0 = np.floor(pos).astype(int)
  f = pos - i0
  for di in (0, 1):
    for dj in (0, 1):
      wgt = (f[:, 0] if di else 1 - f[:, 0]) * (f[:, 1] if dj else 1 - f[:, 1])
      np.add.at(kernel, (i0[:, 1] + dj, i0[:, 0] + di), wgt)
  return (kernel / kernel.sum()).astype(np.float32)


def jitter_blur(clean: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
  """Jitter (camera-shake) blur with a random-walk PSF of `amplitude` px."""
  return _util.convolve(clean, jitter_kernel(amplitude, rng))


def glass_blur(clean: np.ndarray, delta: float, rng: np.random.Generator,
               iterations: int = 2) -> np.ndarray:
  """Glass blur (ImageNet-C `glass_blur`), vectorised: Gaussian blur, then every pixel takes
  the value of a random neighbour within ±`delta` px (`iterations` times), then blur again.
  ImageNet-C swaps pixels in a Python loop; a random gather gives the same frosted look.
  The blur sigma follows ImageNet-C's pairing of sigma with delta: 0.6 + 0.22·delta."""
  h, w, _ = clean.shape
  sigma = 0.6 + 0.22 * delta
  out = cv2.GaussianBlur(clean, (0, 0), sigma)
  d = max(int(round(delta)), 1)
  grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
  for _ in range(iterations):
    off = rng.integers(-d, d + 1, size=(2, h, w)).astype(np.float32)
    map_x = np.clip(grid_x + off[0], 0, w - 1)
    map_y = np.clip(grid_y + off[1], 0, h - 1)
    out = cv2.remap(out, map_x, map_y, interpolation=cv2.INTER_NEAREST)
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


def oversharpen(clean: np.ndarray, amount: float, rng: np.random.Generator,
                sigma: float = 1.5) -> np.ndarray:
  """Over-applied unsharp masking: clean + amount·(clean − GaussianBlur(clean, sigma)),
  clipped — halos and clipped highlights along edges."""
  del rng
  return clean + amount * (clean - cv2.GaussianBlur(clean, (0, 0), sigma))
