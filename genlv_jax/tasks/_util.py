"""Small image helpers shared by the task families (host code: numpy / OpenCV only).

Conventions used throughout `genlv_jax.tasks`: images are HxWx3 float32 arrays in [0, 1],
RGB channel order (OpenCV's BGR only appears inside the functions that call cv2 codecs).
"""

from __future__ import annotations

import collections
import threading

import cv2
import numpy as np
from scipy import fft

# ITU-R BT.601 luma weights: the ones cv2.COLOR_RGB2GRAY uses, so that our gray images match
# PromptGIP's cv2-based edge detectors (PromptGIP dataset/image_operators.py).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
  """Validates an HxWx3 image and returns it as contiguous float32 (values are not clipped)."""
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[2] != 3:
    raise ValueError(f"{what} must be HxWx3, got shape {image.shape}")
  if image.shape[0] < 2 or image.shape[1] < 2:
    raise ValueError(f"{what} is too small: {image.shape}")
  if not np.issubdtype(image.dtype, np.floating):
    raise ValueError(f"{what} must be float in [0, 1], got dtype {image.dtype}")
  return np.ascontiguousarray(image, dtype=np.float32)


def finish(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
  """Clips to [0, 1] (NaN → 0, −inf → 0, +inf → 1) into a new contiguous float32 array, or
  into `out` (the contract of every synthesize). fmax/fmin drop NaNs, so two passes do what
  nan_to_num + clip did in five."""
  result = np.fmax(image, np.float32(0.0), out=out, dtype=np.float32)
  np.fmin(result, np.float32(1.0), out=result)
  return result if out is not None else np.ascontiguousarray(result)


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
  """i.i.d. N(0, 1) float32 noise of `shape`, deterministic given `rng`'s state.

  Drawn by OpenCV's generator (a multiply-with-carry ziggurat; thread-local, so grain's
  threads do not share it) seeded from `rng`: about 3× faster than numpy's, and a noise task
  draws two full images of it per sample.
  """
  out = np.empty(shape, np.float32)
  cv2.setRNGSeed(int(rng.integers(1, 2**31)))
  cv2.randn(out.reshape(-1, 1), 0.0, 1.0)
  return out


def to_uint8(image: np.ndarray) -> np.ndarray:
  """[0, 1] float → uint8 with rounding (PromptGIP's `single2uint`)."""
  return np.clip(np.round(np.asarray(image, np.float32) * 255.0), 0, 255).astype(np.uint8)


def from_uint8(image: np.ndarray) -> np.ndarray:
  """uint8 → float32 in [0, 1]."""
  return image.astype(np.float32) / 255.0


def quantize8(image: np.ndarray) -> np.ndarray:
  """round(clip(x, 0, 1)·255)/255 as float32: what storing the image in 8 bits does
  (PromptGIP rounds after every degradation). OpenCV's saturating conversion rounds like
  np.round (half to even) in two passes where numpy needs five."""
  clipped = np.clip(np.asarray(image, np.float32), np.float32(0.0), np.float32(1.0))
  u8 = cv2.convertScaleAbs(clipped, alpha=255.0).reshape(clipped.shape)
  return np.divide(u8, np.float32(255.0), dtype=np.float32)


def luminance(image: np.ndarray) -> np.ndarray:
  """HxWx3 → HxW luma (BT.601)."""
  return image @ LUMA_WEIGHTS


def gray3(plane: np.ndarray) -> np.ndarray:
  """HxW → HxWx3 by replication (feature maps and gray stylisations are 3-channel targets)."""
  return np.repeat(plane[:, :, None], 3, axis=2).astype(np.float32)


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
  """Inverse sRGB transfer function (IEC 61966-2-1)."""
  image = np.clip(image, 0.0, 1.0)
  return np.where(image <= 0.04045, image / 12.92, ((image + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(image: np.ndarray) -> np.ndarray:
  """sRGB transfer function (IEC 61966-2-1)."""
  image = np.clip(image, 0.0, 1.0)
  return np.where(image <= 0.0031308, image * 12.92, 1.055 * image ** (1 / 2.4) - 0.055)


def pixel_scale(shape: tuple[int, ...], reference: int = 256) -> float:
  """Factor that rescales a pixel-sized parameter given at `reference`×`reference`.

  PromptGIP's pixel sizes (stroke thickness, streak length) were chosen for ~256 px crops; we
  scale them with the shorter side so that a 64 px test image and a 512 px photo look alike.
  """
  return min(shape[0], shape[1]) / float(reference)


# Above this many taps an FFT beats OpenCV's direct filter2D (which does not switch to a DFT
# for float images on the CPU): 21×21 at 256² takes ~6.5 ms direct, ~1.5 ms by FFT.
_FFT_MIN_TAPS = 144


_KERNEL_FFTS: "collections.OrderedDict[tuple, np.ndarray]" = collections.OrderedDict()
_KERNEL_FFTS_LOCK = threading.Lock()


def _kernel_fft(kernel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """rfft2 of the flipped kernel at `size`, memoised (LRU of 64): fixed kernels such as the
  ringing filter at one cutoff recur, and their transform costs as much as the image's."""
  key = (kernel.shape, size, kernel.tobytes())
  with _KERNEL_FFTS_LOCK:  # grain may call from several threads
    kf = _KERNEL_FFTS.get(key)
    if kf is not None:
      _KERNEL_FFTS.move_to_end(key)
      return kf
  kf = fft.rfft2(kernel[::-1, ::-1], s=size)
  with _KERNEL_FFTS_LOCK:
    _KERNEL_FFTS[key] = kf
    if len(_KERNEL_FFTS) > 64:
      _KERNEL_FFTS.popitem(last=False)
  return kf


def correlate(image: np.ndarray, kernel: np.ndarray,
              border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
  """`cv2.filter2D(image, -1, kernel, borderType=border)` on float32 (anchor at the kernel
  centre, every channel), by FFT for large kernels — same result up to float rounding."""
  image = np.ascontiguousarray(image, np.float32)
  kernel = np.ascontiguousarray(kernel, dtype=np.float32)
  kh, kw = kernel.shape
  if kh * kw < _FFT_MIN_TAPS:
    return cv2.filter2D(image, -1, kernel, borderType=border).reshape(image.shape)
  ay, ax = kh // 2, kw // 2
  padded = cv2.copyMakeBorder(image, ay, kh - 1 - ay, ax, kw - 1 - ax, border)
  padded = padded.reshape(padded.shape[:2] + image.shape[2:])
  size = (fft.next_fast_len(padded.shape[0], True), fft.next_fast_len(padded.shape[1], True))
  # Correlation = convolution with the flipped kernel; the circular result equals the linear
  # one on the valid region because the transform is at least as large as the padded image.
  kf = _kernel_fft(kernel, size)
  if padded.ndim == 3:
    kf = kf[:, :, None]
  full = fft.irfft2(fft.rfft2(padded, s=size, axes=(0, 1)) * kf, s=size, axes=(0, 1))
  h, w = image.shape[:2]
  return np.ascontiguousarray(full[kh - 1:kh - 1 + h, kw - 1:kw - 1 + w], dtype=np.float32)


def convolve(image: np.ndarray, kernel: np.ndarray,
             border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
  """True 2-D convolution of every channel with `kernel` (cv2.filter2D correlates, so flip)."""
  return correlate(image, kernel[::-1, ::-1], border)


def smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
  """Gaussian-smoothed white noise normalised to zero mean, unit standard deviation."""
  field = standard_normal(rng, shape)
  field = cv2.GaussianBlur(field, (0, 0), sigmaX=max(sigma, 0.1), borderType=cv2.BORDER_REFLECT)
  field -= field.mean()
  return field / max(float(field.std()), 1e-6)
