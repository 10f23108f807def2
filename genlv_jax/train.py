"""`python -m genlv_jax.train --config configs/huge.py --workdir DIR [--config.field=value …]`.

Trains the config in DIR (resuming from its latest checkpoint): `genlv_jax.training.trainer`.
Multi-process runs initialise themselves on TPU pods and SLURM, or take
`--coordinator_address/--num_processes/--process_id`.

Ctrl-C saves the run at the end of the current step and exits with status 130 after one line
naming the step saved and the command that resumes it (the same command); a second Ctrl-C
aborts at once. SIGTERM (preemption) saves likewise and exits 0.

The console shows this package's lines (config, progress with steps/s and ETA, checkpoints,
the final `done:` line), the metrics, and every library's warnings; other libraries' INFO lines
(orbax's checkpointing details, jax's backend probing) go only to the log file that
`--log_dir=DIR` asks for. `-v 1` shows everything on the console.
"""

from __future__ import annotations

import logging as pylogging
import os
import shlex
import sys

from absl import app, flags, logging
from absl.logging import converter
from ml_collections import config_flags

from genlv_jax import cli, host_tuning
from genlv_jax.errors import UserError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/base.py.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints and metrics go (local or gs://).")
flags.DEFINE_string("coordinator_address", None,
                    "host:port of process 0, for explicit multi-process runs.")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --coordinator_address).")
flags.DEFINE_integer("process_id", None, "This process's index (with --coordinator_address).")

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# clu's console metric writer: the metrics lines.
_CONSOLE_METRICS = os.path.join("clu", "metric_writers", "logging_writer.py")


class ConsoleFilter(pylogging.Filter):
  """Passes what a person watching a run needs: this package's lines, the metric lines of clu's
  console writer, and every warning or error."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    return (record.levelno >= pylogging.WARNING
            or os.path.abspath(record.pathname).startswith(_PACKAGE_DIR)
            or record.pathname.endswith(_CONSOLE_METRICS))


class _NotEchoedByAbsl(pylogging.Filter):
  """Drops the records absl's handler already copies to stderr next to its log file."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    threshold = converter.string_to_standard(FLAGS.stderrthreshold)
    return not (FLAGS.alsologtostderr or record.levelno >= threshold)


def configure_logging() -> None:
  """Sets up the console and log file of an absl entry point (train, demo) after flag parsing.

  `--log_dir=DIR`: every line goes to absl's log file in DIR, the console gets `ConsoleFilter`'s
  lines. Without it, the console gets `ConsoleFilter`'s lines only. `-v 1` (or more) keeps every
  line on the console.
  """
  handler = logging.get_absl_handler()
  if FLAGS.log_dir and not FLAGS.logtostderr:
    handler.use_absl_log_file()  # absl writes a log file only when asked to
    console = pylogging.StreamHandler(sys.stderr)
    console.setFormatter(handler.python_handler.formatter)
    console.addFilter(_NotEchoedByAbsl())
    if FLAGS.verbosity < 1:
      console.addFilter(ConsoleFilter())
    pylogging.getLogger().addHandler(console)
  elif FLAGS.verbosity < 1:
    handler.addFilter(ConsoleFilter())


def resume_command(module: str) -> str:
  """The command line of this process as a user would type it again (`python -m module …`)."""
  return shlex.join(["python", "-m", module, *sys.argv[1:]])


@cli.user_errors_exit
def main(argv) -> None:
  configure_logging()
  # Imported here, after host_tuning's re-exec, so that jax, grain and orbax load once.
  from genlv_jax.training import trainer  # pylint: disable=import-outside-toplevel
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.config is None or not FLAGS.workdir:
    raise UserError("--config and --workdir are required")
  overrides = [a for a in sys.argv[1:] if a.startswith("--config.")]
  logging.info("config %s%s", config_flags.get_config_filename(FLAGS["config"]),
               f" with {' '.join(overrides)}" if overrides else "")
  trainer.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes,
                                 FLAGS.process_id)
  try:
    trainer.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except trainer.TrainingInterrupted as e:
    print(f"{e}; resume with the same command: {resume_command('genlv_jax.train')}",
          file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
  host_tuning.reexec_tuned_for_cpu()
  app.run(main, flags_parser=cli.absl_flags_parser)
