"""Per-task image metrics, as in the papers' tables: PSNR / SSIM (RGB, or the Y channel) for
restoration, enhancement and stylization, MAE on the 0–255 scale for feature extraction."""

from __future__ import annotations

from typing import Callable, Mapping

import dm_pix as pix
import jax.numpy as jnp
import numpy as np

from genlv_jax.tasks import get_task


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


def evaluate_tasks(predict: Callable[[Mapping[str, np.ndarray]], np.ndarray],
                   samples: Mapping[str, Mapping[str, np.ndarray]],
                   y_channel: bool = False) -> tuple[dict[str, float], dict[str, np.ndarray]]:
  """Runs `predict` on each task's samples; returns flat metrics and the predictions.

  Metrics are `eval/<task>/<metric>` (model) and `eval/<task>/identity_<metric>` (the input
  taken as the output: the baseline every table needs).
  """
  metrics, predictions = {}, {}
  for name, batch in samples.items():
    category = get_task(name).category
    prediction = np.asarray(predict(batch))
    predictions[name] = prediction
    for key, values in image_metrics(prediction, batch["target"], category, y_channel).items():
      metrics[f"eval/{name}/{key}"] = float(np.mean(values))
    for key, values in image_metrics(batch["input"], batch["target"], category, y_channel).items():
      metrics[f"eval/{name}/identity_{key}"] = float(np.mean(values))
  return metrics, predictions


def sample_grid(samples: Mapping[str, Mapping[str, np.ndarray]],
                predictions: Mapping[str, np.ndarray], border: int = 2) -> np.ndarray:
  """One row per task (first sample): prompt source, prompt target, input, prediction, target."""
  rows = []
  for name, batch in samples.items():
    cells = [batch["prompt_source"][0], batch["prompt_target"][0], batch["input"][0],
             np.clip(predictions[name][0], 0, 1), batch["target"][0]]
    h = max(c.shape[0] for c in cells)
    cells = [np.pad(c, ((0, h - c.shape[0] + border), (0, border), (0, 0)), constant_values=1.0)
             for c in cells]
    rows.append(np.concatenate(cells, axis=1))
  width = max(r.shape[1] for r in rows)
  rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
  return np.concatenate(rows, axis=0).astype(np.float32)
