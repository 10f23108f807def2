"""`python -m genlv_jax.demo --config configs/demo.py --workdir DIR`: train, then report.

Trains (resuming if DIR has a checkpoint), then evaluates the final params with the evaluation
library (the held-out builtin images of every trained task, the config's `eval_images` and
`eval_prompts`: what `python -m genlv_jax.evaluate` reports for DIR with those settings), prints
PSNR(input, target) beside PSNR(prediction, target) (MAE for feature extraction), writes
`DIR/demo_grid.png` (`evaluation.sample_grid`: column titles prompt input, prompt target,
input, output, target; one row per task, labelled with its name; the input and output
captioned with their PSNR) and prints where it is.
"""

from __future__ import annotations

import os
import sys

from absl import app

from genlv_jax import cli, host_tuning
from genlv_jax.errors import UserError
from genlv_jax.train import EXIT_INTERRUPTED, FLAGS, configure_logging, resume_command


def grid_path(workdir: str) -> str:
  """Where the demo writes its picture."""
  return os.path.join(workdir, "demo_grid.png")


def report(config, params, workdir: str) -> str:
  """The per-task table (Markdown) of `params`; writes the labelled sample grid
  `workdir/demo_grid.png` (`grid_path`)."""
  # Imported here, after host_tuning's re-exec, so that jax, grain and orbax load once.
  from genlv_jax import evaluation  # pylint: disable=import-outside-toplevel
  from genlv_jax.data import image_io  # pylint: disable=import-outside-toplevel
  from genlv_jax.models import Predictor, build_model  # pylint: disable=import-outside-toplevel
  predictor = Predictor(build_model(config), params, config)
  samples = evaluation.make_samples(config, str(config.eval_tasks) or None,
                                    num_images=int(config.eval_images))
  result, predictions = evaluation.evaluate(predictor, samples, int(config.eval_prompts),
                                            batch_size=int(config.eval_batch_size))
  lines = ["| task | metric | input | prediction | gain |", "|---|---|---|---|---|"]
  for name, task in result["tasks"].items():
    metric = "psnr" if "psnr" in task["metrics"] else "mae"
    before, after = task["identity"][metric], task["metrics"][metric]["mean"]
    label = "PSNR (dB)" if metric == "psnr" else "MAE (0-255)"
    lines.append(f"| {name} | {label} | {before:.2f} | {after:.2f} | {after - before:+.2f} |")
  image_io.write_image(grid_path(workdir), evaluation.sample_grid(samples, predictions))
  return "\n".join(lines)


@cli.user_errors_exit
def main(argv) -> None:
  del argv
  configure_logging()
  if FLAGS.config is None or not FLAGS.workdir:
    raise UserError("--config and --workdir are required")
  from genlv_jax.training import trainer  # pylint: disable=import-outside-toplevel
  try:
    state = trainer.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except trainer.TrainingInterrupted as e:
    print(f"{e}; resume with the same command: {resume_command('genlv_jax.demo')}",
          file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)
  if int(state.step) < int(FLAGS.config.total_steps):
    # SIGTERM: the run is saved; evaluating a half-trained model would only delay the exit.
    print(f"stopped at step {int(state.step)} of {int(FLAGS.config.total_steps)}, saved; "
          f"resume with the same command: {resume_command('genlv_jax.demo')}", file=sys.stderr)
    return
  params = state.ema_params if float(FLAGS.config.optimizer.ema_decay) > 0 else state.params
  table = report(FLAGS.config, params, FLAGS.workdir)
  print(f"\nGenLV demo after {int(state.step)} steps ({FLAGS.workdir}):\n{table}\n"
        f"sample grid (titled columns, one row per task): {grid_path(FLAGS.workdir)}")


if __name__ == "__main__":
  host_tuning.reexec_tuned_for_cpu()
  app.run(main, flags_parser=cli.absl_flags_parser)
