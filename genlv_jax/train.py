"""`python -m genlv_jax.train --config configs/huge.py --workdir DIR [--config.field=value …]`.

Trains the config in DIR (resuming from its latest checkpoint): `genlv_jax.training.trainer`.
Multi-process runs initialise themselves on TPU pods and SLURM, or take
`--coordinator_address/--num_processes/--process_id`.
"""

from __future__ import annotations

from absl import app, flags
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


@cli.user_errors_exit
def main(argv) -> None:
  # Imported here, after host_tuning's re-exec, so that jax, grain and orbax load once.
  from genlv_jax.training import trainer  # pylint: disable=import-outside-toplevel
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.config is None or not FLAGS.workdir:
    raise UserError("--config and --workdir are required")
  trainer.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes,
                                 FLAGS.process_id)
  trainer.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  host_tuning.reexec_tuned_for_cpu()
  app.run(main, flags_parser=cli.absl_flags_parser)
