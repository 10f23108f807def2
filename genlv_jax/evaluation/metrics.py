"""Per-task image metrics, as in the papers' tables: PSNR / SSIM (RGB, or the Y channel) for
restoration, enhancement and stylization, MAE on the 0–255 scale for feature extraction.

Two conventions for PSNR / SSIM (`CONVENTIONS`):

- `ours` (the default; what the trainer logs): dm_pix on the float images in [0, 1] (the
  prediction clipped), float32, the whole image, RGB unless `y_channel`.
- `basicsr`: the restoration papers' numbers, as BasicSR's `calculate_psnr` / `calculate_ssim`
  (basicsr/metrics/psnr_ssim.py) compute them: both images as 8-bit pictures (clipped to
  [0, 1], ×255, rounded, as BasicSR's `tensor2img` and the PNG files the papers measured),
  `crop_border` pixels cut from each edge, optionally the Y channel of MATLAB's `rgb2ycbcr`,
  then float64 arithmetic on the [0, 255] scale. PSNR of identical images is infinite, as
  there. SSIM is the MATLAB reference's: an 11×11 Gaussian window with σ 1.5 in valid
  positions only, C1 = (0.01·255)², C2 = (0.03·255)², the mean of the map, averaged over the
  channels. (BasicSR rounds the Y channel to float32; here it stays float64: about 1e-6 dB
  apart, far below the papers' two decimals.)

MAE is the same in both conventions.
"""

from __future__ import annotations

from typing import Optional

import dm_pix as pix
import jax.numpy as jnp
import numpy as np

CONVENTIONS = ("ours", "basicsr")
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def rgb_to_y(images: np.ndarray) -> np.ndarray:
  """ITU-R BT.601 luma in [0, 1] (the Y channel of the restoration literature's YCbCr)."""
  y = (65.481 * images[..., 0] + 128.553 * images[..., 1] + 24.966 * images[..., 2] + 16.0) / 255.0
  return y[..., None]


def rgb_to_y_255(images: np.ndarray) -> np.ndarray:
  """The Y channel of MATLAB's `rgb2ycbcr` for RGB images on [0, 255]: [..., H, W, 1] float64
  on [16, 235] (BasicSR's `to_y_channel`, which applies `bgr2ycbcr(y_only=True)` to its BGR
  images: the same weights, here in RGB order)."""
  x = np.asarray(images, np.float64)
  y = 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
  return y[..., None]


def to_8bit(images: np.ndarray) -> np.ndarray:
  """Float images in [0, 1] as the 8-bit values a PNG of them holds, in float64 on [0, 255]
  (BasicSR's `tensor2img`: clamp, ×255, numpy's round, half to even)."""
  return np.round(np.clip(np.asarray(images, np.float64), 0.0, 1.0) * 255.0)


def _prepare_255(img: np.ndarray, img2: np.ndarray, crop_border: int, test_y_channel: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Both images as [..., H, W, C] float64 on [0, 255], border cut, Y channel if asked."""
  img, img2 = np.asarray(img, np.float64), np.asarray(img2, np.float64)
  if img.shape != img2.shape:
    raise ValueError(f"images of different shapes: {img.shape} and {img2.shape}")
  if img.ndim < 3:
    raise ValueError(f"images must be [..., H, W, C], got shape {img.shape}")
  if crop_border < 0:
    raise ValueError(f"crop_border must be at least 0, got {crop_border}")
  if crop_border:
    if 2 * crop_border >= min(img.shape[-3:-1]):
      raise ValueError(f"crop_border {crop_border} leaves nothing of a "
                       f"{img.shape[-3]}x{img.shape[-2]} image")
    window = (slice(crop_border, -crop_border), slice(crop_border, -crop_border), slice(None))
    img, img2 = img[(Ellipsis, *window)], img2[(Ellipsis, *window)]
  if test_y_channel and img.shape[-1] == 3:
    img, img2 = rgb_to_y_255(img), rgb_to_y_255(img2)
  return img, img2


def basicsr_psnr(img: np.ndarray, img2: np.ndarray, crop_border: int = 0,
                 test_y_channel: bool = False) -> np.ndarray:
  """PSNR in dB as BasicSR's `calculate_psnr`, per image.

  Args:
    img: [H, W, C] or [N, H, W, C] on [0, 255] (any dtype; computed in float64), RGB.
    img2: the reference, same shape.
    crop_border: pixels cut from each edge before measuring.
    test_y_channel: measure the Y channel of `rgb_to_y_255` instead of RGB.

  Returns:
    float64 PSNR per image (a 0-d array for one image); +inf where the images are equal.
  """
  img, img2 = _prepare_255(img, img2, crop_border, test_y_channel)
  mse = np.mean((img - img2) ** 2, axis=(-3, -2, -1))
  with np.errstate(divide="ignore"):
    return 10.0 * np.log10(255.0 * 255.0 / mse)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
  """The normalised 1-D Gaussian of `cv2.getGaussianKernel(size, sigma)`, float64; SSIM's 2-D
  window is its outer product with itself."""
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  g = np.exp(-x * x / (2.0 * sigma * sigma))
  return g / np.sum(g)


def _valid_filter(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """[..., H, W, C] filtered by outer(kernel, kernel) over H and W in valid positions only:
  `cv2.filter2D(x, -1, window)[5:-5, 5:-5]` for an 11-tap window (the window is symmetric, so
  correlation and convolution agree), as two 1-D passes."""
  k = len(kernel)
  h, w = x.shape[-3] - k + 1, x.shape[-2] - k + 1
  rows = sum(kernel[i] * x[..., i:i + h, :, :] for i in range(k))
  return sum(kernel[j] * rows[..., :, j:j + w, :] for j in range(k))


def basicsr_ssim(img: np.ndarray, img2: np.ndarray, crop_border: int = 0,
                 test_y_channel: bool = False) -> np.ndarray:
  """SSIM as BasicSR's `calculate_ssim` (the MATLAB reference of Wang et al.), per image.

  Args:
    img: [H, W, C] or [N, H, W, C] on [0, 255] (any dtype; computed in float64), RGB.
    img2: the reference, same shape.
    crop_border: pixels cut from each edge before measuring.
    test_y_channel: measure the Y channel of `rgb_to_y_255` instead of RGB.

  Returns:
    float64 SSIM per image (a 0-d array for one image): the mean of the SSIM map of each
    channel, averaged over the channels.

  Raises:
    ValueError: what is left after `crop_border` is smaller than the 11×11 window.
  """
  img, img2 = _prepare_255(img, img2, crop_border, test_y_channel)
  if min(img.shape[-3:-1]) < SSIM_WINDOW:
    raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the border "
                     f"is cut, got {img.shape[-3]}x{img.shape[-2]}")
  c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
  kernel = gaussian_window()
  mu1, mu2 = _valid_filter(img, kernel), _valid_filter(img2, kernel)
  mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
  sigma1_sq = _valid_filter(img * img, kernel) - mu1_sq
  sigma2_sq = _valid_filter(img2 * img2, kernel) - mu2_sq
  sigma12 = _valid_filter(img * img2, kernel) - mu1_mu2
  ssim_map = (((2.0 * mu1_mu2 + c1) * (2.0 * sigma12 + c2))
              / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)))
  # The mean per channel, then over channels: equal to the mean of the whole map, since every
  # channel's map has the same size.
  return np.mean(ssim_map, axis=(-3, -2, -1))


def check_convention(convention: str, crop_border: int = 0) -> None:
  """Raises ValueError for an unknown convention or a crop that only `basicsr` applies."""
  if convention not in CONVENTIONS:
    raise ValueError(f"unknown metric convention {convention!r}; one of {', '.join(CONVENTIONS)}")
  if crop_border < 0:
    raise ValueError(f"crop_border must be at least 0, got {crop_border}")
  if crop_border and convention != "basicsr":
    raise ValueError("crop_border applies to the basicsr convention only")


def image_metrics(prediction: np.ndarray, target: np.ndarray, category: str,
                  y_channel: bool = False, convention: str = "ours",
                  crop_border: int = 0) -> dict[str, np.ndarray]:
  """Per-image metrics of a batch (N, H, W, 3) in [0, 1]; keys psnr+ssim or mae.

  Args:
    prediction: the model's output (clipped to [0, 1] here).
    target: the reference.
    category: the task's category; `feature_extraction` gives MAE (0–255), the others PSNR
      and SSIM.
    y_channel: PSNR / SSIM on the Y channel instead of RGB.
    convention: `ours` or `basicsr` (see the module docstring).
    crop_border: pixels cut from each edge; `basicsr` only.
  """
  check_convention(convention, crop_border)
  prediction = np.clip(np.asarray(prediction, np.float32), 0.0, 1.0)
  target = np.asarray(target, np.float32)
  if category == "feature_extraction":
    return {"mae": np.mean(np.abs(prediction - target), axis=(1, 2, 3)) * 255.0}
  if convention == "basicsr":
    a, b = to_8bit(prediction), to_8bit(target)
    return {"psnr": basicsr_psnr(a, b, crop_border, y_channel),
            "ssim": basicsr_ssim(a, b, crop_border, y_channel)}
  if y_channel:
    prediction, target = rgb_to_y(prediction), rgb_to_y(target)
  a, b = jnp.asarray(prediction), jnp.asarray(target)
  return {"psnr": np.asarray(pix.psnr(a, b)), "ssim": np.asarray(pix.ssim(a, b))}


def default_y_channel(convention: str, y_channel: Optional[bool] = None) -> bool:
  """`y_channel` when given, else the convention's default: the Y channel for `basicsr` (as
  the restoration papers report), RGB for `ours`."""
  return (convention == "basicsr") if y_channel is None else bool(y_channel)
