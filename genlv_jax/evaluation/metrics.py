"""Per-task image metrics, as in the papers' tables: PSNR / SSIM (RGB, or the Y channel) for
restoration, enhancement and stylization, MAE on the 0–255 scale for feature extraction."""

from __future__ import annotations

import dm_pix as pix
import jax.numpy as jnp
import numpy as np


def rgb_to_y(images: np.ndarray) -> np.ndarray:
  """ITU-R BT.601 luma in [0, 1] (the Y channel of the restoration literature's YCbCr)."""
  y = (65.481 * images[..., 0] + 128.553 * images[..., 1] + 24.966 * images[..., 2] + 16.0) / 255.0
  return y[..., None]


def image_metrics(prediction: np.ndarray, target: np.ndarray, category: str,
                  y_channel: bool = False) -> dict[str, np.ndarray]:
  """Per-image metrics of a batch (N, H, W, 3) in [0, 1]; keys psnr+ssim or mae."""
  prediction = np.clip(np.asarray(prediction, np.float32), 0.0, 1.0)
  target = np.asarray(target, np.float32)
  if category == "feature_extraction":
    return {"mae": np.mean(np.abs(prediction - target), axis=(1, 2, 3)) * 255.0}
  if y_channel:
    prediction, target = rgb_to_y(prediction), rgb_to_y(target)
  a, b = jnp.asarray(prediction), jnp.asarray(target)
  return {"psnr": np.asarray(pix.psnr(a, b)), "ssim": np.asarray(pix.ssim(a, b))}
