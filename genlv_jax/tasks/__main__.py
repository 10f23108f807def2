"""Entry point of `python -m genlv_jax.tasks` (see `genlv_jax.tasks.cli`)."""

import sys

from genlv_jax.tasks import cli

if __name__ == "__main__":
  sys.exit(cli.main())
