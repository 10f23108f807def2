"""`python -m genlv_jax.demo --config configs/demo.py --workdir DIR`: train, then report.

Trains (resuming if DIR has a checkpoint), then evaluates the final params on held-out builtin
images per task and prints PSNR(input, target) beside PSNR(prediction, target) (MAE for
feature extraction), and writes `DIR/demo_grid.png` (prompt pair, input, prediction, target).
"""

from __future__ import annotations

import logging as pylogging
import os

import jax
import numpy as np
from absl import app, logging
from PIL import Image

from genlv_jax import evaluation, host_tuning, input_pipeline
from genlv_jax.cli import USER_ERRORS, report_user_error
from genlv_jax.models import build_model
from genlv_jax.train import FLAGS, train_and_evaluate


def report(config, params, workdir: str) -> str:
  """The per-task table (Markdown) of the trained params; writes the sample grid PNG."""
  model = build_model(config)
  samples = input_pipeline.make_eval_samples(config, None, config.eval_images, seed=config.seed + 1)
  use_prompt = bool(config.model.use_prompt)  # X-Restormer takes the input only

  @jax.jit
  def forward(p, b):
    prompts = (b["prompt_source"], b["prompt_target"]) if use_prompt else ()
    return model.apply({"params": p}, b["input"], *prompts)

  metrics, predictions = evaluation.evaluate_tasks(lambda b: forward(params, b), samples)
  lines = ["| task | PSNR input (dB) | PSNR prediction (dB) | gain |", "|---|---|---|---|"]
  for name in samples:
    before, after = metrics[f"eval/{name}/identity_psnr"], metrics[f"eval/{name}/psnr"]
    lines.append(f"| {name} | {before:.2f} | {after:.2f} | {after - before:+.2f} |")
  grid = evaluation.sample_grid(samples, predictions)
  Image.fromarray((np.clip(grid, 0, 1) * 255).round().astype(np.uint8)).save(
      os.path.join(workdir, "demo_grid.png"))
  return "\n".join(lines)


class _DemoLogFilter(pylogging.Filter):
  """Keeps the demo's console readable: our own logs, progress and metrics, and warnings."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    return (record.levelno >= pylogging.WARNING or "genlv_jax" in record.pathname
            or record.pathname.endswith("logging_writer.py"))


def main(argv) -> None:
  del argv
  logging.get_absl_handler().addFilter(_DemoLogFilter())
  if FLAGS.config is None or not FLAGS.workdir:
    report_user_error("--config and --workdir are required")
  try:
    state = train_and_evaluate(FLAGS.config, FLAGS.workdir)
    table = report(FLAGS.config, jax.device_get(state.params), FLAGS.workdir)
  except USER_ERRORS as e:
    report_user_error(e)
  print(f"\nGenLV demo after {int(state.step)} steps ({FLAGS.workdir}):\n{table}\n"
        f"sample grid: {os.path.join(FLAGS.workdir, 'demo_grid.png')}")


if __name__ == "__main__":
  host_tuning.reexec_tuned_for_cpu()
  app.run(main)
