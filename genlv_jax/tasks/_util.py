"""Small image helpers shared by the task families (host code: numpy / OpenCV only).

Conventions used throughout `genlv_jax.tasks`: images are HxWx3 float32 arrays in [0, 1],
RGB channel order (OpenCV's BGR only appears inside the functions that call cv2 codecs).
"""

from __future__ import annotations

import cv2
import numpy as np

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


def finish(image: np.ndarray) -> np.ndarray:
  """Clips to [0, 1] and returns contiguous float32 (the contract of every synthesize)."""
  out = np.clip(np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
  return np.ascontiguousarray(out, dtype=np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
  """[0, 1] float → uint8 with rounding (PromptGIP's `single2uint`)."""
  return np.clip(np.round(np.asarray(image, np.float32) * 255.0), 0, 255).astype(np.uint8)


def from_uint8(image: np.ndarray) -> np.ndarray:
  """uint8 → float32 in [0, 1]."""
  return image.astype(np.float32) / 255.0


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


def convolve(image: np.ndarray, kernel: np.ndarray,
             border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
  """True 2-D convolution of every channel with `kernel` (cv2.filter2D correlates, so flip)."""
  kernel = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)
  out = cv2.filter2D(np.ascontiguousarray(image, np.float32), -1, kernel, borderType=border)
  return out.reshape(image.shape)


def smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
  """Gaussian-smoothed white noise normalised to zero mean, unit standard deviation."""
  field = rng.standard_normal(shape).astype(np.float32)
  field = cv2.GaussianBlur(field, (0, 0), sigmaX=max(sigma, 0.1), borderType=cv2.BORDER_REFLECT)
  field -= field.mean()
  return field / max(float(field.std()), 1e-6)
