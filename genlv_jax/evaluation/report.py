"""Reports: the evaluation as JSON and Markdown tables, and a labelled grid of sample images.

Non-finite metrics stay visible: strict JSON has no NaN or Infinity, so they are `null` there,
while the Markdown shows `∞` (the PSNR of identical images) and `NaN` (a model whose
predictions were not finite) apart.
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Optional

import numpy as np

from genlv_jax.data import image_io
from genlv_jax.errors import UserError
from genlv_jax.evaluation import grids
from genlv_jax.evaluation.samples import EvalSamples

_LABELS = {"psnr": "PSNR (dB) ↑", "ssim": "SSIM ↑", "mae": "MAE (0–255) ↓",
           "lpips": "LPIPS (AlexNet) ↓"}


def markdown_table(report: Mapping) -> str:
  """The per-task table of `markdown_report` (what `evaluate` prints): one row per task and
  metric with the model's mean ± std over the prompt pairs, the identity baseline and Δ."""
  k = report["num_prompts"]
  lines = [f"| task | category | metric | model (mean ± std over {k} prompts) | identity | Δ |",
           "|---|---|---|---|---|---|"]
  for name, r in report["tasks"].items():
    for metric, spread in r["metrics"].items():
      base = r["identity"][metric]
      mean, std = spread["mean"], spread["std"]
      delta = None if mean is None or base is None else mean - base
      lines.append(f"| {name} ({r['paper_name']}) | {r['category']} | {_LABELS[metric]} | "
                   f"{_number(mean, 4)} ± {_number(std, 4)} | {_number(base, 4)} | "
                   f"{_number(delta, 4, '+')} |")
  return "\n".join(lines) + "\n"


def markdown_report(report: Mapping) -> str:
  """The report as Markdown tables (per-task metrics; mismatch matrices when present)."""
  k = report["num_prompts"]
  lines = [f"# GenLV evaluation\n\n{report.get('checkpoint', '')} on `{report['source']}`: "
           f"{report['num_images']} test images × {k} prompt pairs per task, {report['crop']} px "
           f"centre crops, {report['color']}, {_convention(report)}, seed {report['seed']}."
           + (f" LPIPS: AlexNet v0.1, weights `{report['lpips_weights']}`."
              if report.get("lpips_weights") else "") + "\n",
           markdown_table(report).rstrip("\n")]
  for name, count in report.get("non_finite_predictions", {}).items():
    lines.append(f"\n{name}: {count} prediction value(s) were not finite (NaN or infinity); "
                 "its metrics are not meaningful.")
  for name, why in report.get("skipped", {}).items():
    lines.append(f"\nSkipped {name}: {why}.")
  cells = report.get("mismatch")
  if cells:
    rows = list(dict.fromkeys(c["prompt_task"] for c in cells))
    cols = list(dict.fromkeys(c["input_task"] for c in cells))
    table = {(c["prompt_task"], c["input_task"]): c for c in cells}
    lines.append("\n## Mismatch test: the prompt of the row's task on the column's inputs")
    for title, pick in (
        ("PSNR(prediction, input) in dB: high means the input was left alone, the ideal "
         "answer to a prompt of another task", lambda c: _number(c["vs_input"]["psnr"])),
        ("Against the input task's own target: PSNR in dB (MAE for feature extraction), "
         "identity in brackets", lambda c: "{} ({})".format(
             *[_number(c[s].get("psnr", c[s].get("mae"))) for s in ("vs_target", "identity")]))):
      lines += [f"\n{title}\n", "| prompt \\ input | " + " | ".join(cols) + " |",
                "|---" * (len(cols) + 1) + "|"]
      lines += [f"| {r} | " + " | ".join(pick(table[(r, c)]) for c in cols) + " |" for r in rows]
  return "\n".join(lines) + "\n"


def _convention(report: Mapping) -> str:
  """How PSNR/SSIM were computed, for the report's first line."""
  if report.get("convention", "ours") == "basicsr":
    return (f"PSNR/SSIM in BasicSR's convention (8-bit, float64, {report.get('crop_border', 0)} "
            "px border cut)")
  return "PSNR/SSIM in our convention (float images, dm_pix)"


def _number(value: Optional[float], digits: int = 2, sign: str = "") -> str:
  """A metric for Markdown: `∞` / `−∞` for infinities (the PSNR of identical images), `NaN`,
  and `–` for None (a non-finite value read back from the JSON, where it cannot be told
  apart)."""
  if value is None:
    return "–"
  if np.isnan(value):
    return "NaN"
  if np.isinf(value):
    return "∞" if value > 0 else "−∞"
  return f"{value:{sign}.{digits}f}"


def finite_tree(tree):
  """Non-finite floats → None (strict JSON has no Infinity: PSNR of identical images)."""
  if isinstance(tree, Mapping):
    return {k: finite_tree(v) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return [finite_tree(v) for v in tree]
  return None if isinstance(tree, float) and not np.isfinite(tree) else tree


def markdown_path(output: str) -> str:
  """Where `write_report` puts the Markdown beside the JSON `output`."""
  return os.path.splitext(output)[0] + ".md"


def check_report_output(output: str) -> tuple[str, str]:
  """Checks (and creates the folder of) both report files before any work; returns their
  paths.

  Raises:
    UserError: `output` would be the Markdown file itself (the JSON would be overwritten), or
      a location cannot be written (`image_io.prepare_output_file`).
  """
  md_path = markdown_path(output)
  if os.path.abspath(md_path) == os.path.abspath(output):
    raise UserError(f"--output {output}: give the JSON report's path (e.g. report.json); "
                    f"the Markdown tables are written beside it as {md_path}")
  image_io.prepare_output_file(output, "--output")
  image_io.prepare_output_file(md_path, "the Markdown report")
  return output, md_path


def write_report(report: Mapping, output: str) -> tuple[str, str]:
  """Writes `output` (JSON) and the Markdown table beside it; returns both paths."""
  md_path = markdown_path(output)
  if os.path.abspath(md_path) == os.path.abspath(output):
    raise UserError(f"cannot write the report {output}: the Markdown beside it would be the "
                    "same file; give a .json path")
  try:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
      json.dump(finite_tree(report), f, indent=2, allow_nan=False)
    with open(md_path, "w") as f:
      f.write(markdown_report(report))
  except OSError as e:
    raise UserError(f"cannot write the report {output}: {e.strerror or e}") from e
  return output, md_path


def sample_grid(samples: EvalSamples, predictions: Mapping[str, np.ndarray],
                border: int = 2, min_cell: int = grids.MIN_CELL) -> np.ndarray:
  """The demo's and the trainer's picture: one row per task, labelled with its name (its
  first test image with prompt pair 0), under the column titles prompt input, prompt target,
  input, output, target; the input and output captioned with their PSNR to the target (MAE
  for feature extraction). Cells are at least `min_cell` px (`grids.labelled_grid`), `border`
  px apart.

  Returns:
    float32 HxWx3 in [0, 1] (what the metric writers and `image_io.write_image` take).
  """
  rows, labels, metrics = [], [], []
  for name, task_samples in samples.tasks.items():
    prompt_source, prompt_target = task_samples.prompts(0)
    rows.append([prompt_source[0], prompt_target[0], task_samples.inputs[0],
                 predictions[name][0], task_samples.targets[0]])
    labels.append(name)
    metrics.append("mae" if task_samples.task.category == "feature_extraction" else "psnr")
  grid = grids.prediction_grid(rows, labels, min_cell, metrics=metrics, gap=border)
  return grid.astype(np.float32) / 255.0
