"""Shared plumbing for the command-line entry points: user mistakes become one line, exit 2."""

from __future__ import annotations

import functools
import sys
from typing import Callable

from genlv_jax.checkpointing import CheckpointMismatchError
from genlv_jax.config_io import ConfigError

# Exceptions that mean "the user asked for something that cannot be done", not "we have a bug".
USER_ERRORS = (ConfigError, CheckpointMismatchError, FileNotFoundError, NotADirectoryError,
               PermissionError, ValueError)


def user_errors_exit(main: Callable[..., int | None]) -> Callable[..., int | None]:
  """Wraps a `main` so that a user mistake prints `error: <one line>` (plus details) and exits 2."""

  @functools.wraps(main)
  def wrapper(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except USER_ERRORS as e:
      if isinstance(e, CheckpointMismatchError):
        print(f"error: {e.summary}", file=sys.stderr)
        print("\n".join("  " + p for p in e.problems), file=sys.stderr)
      else:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {message}", file=sys.stderr)
      sys.exit(2)

  return wrapper
