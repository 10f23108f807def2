"""Shared plumbing for the command-line entry points: user mistakes become one line, exit 2."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable, NoReturn

from genlv_jax.checkpointing import CheckpointMismatchError
from genlv_jax.config_io import ConfigError

# Exceptions that mean "the user asked for something that cannot be done", not "we have a bug".
USER_ERRORS = (ConfigError, CheckpointMismatchError, FileNotFoundError, NotADirectoryError,
               PermissionError, ValueError)


def report_user_error(error: BaseException | str) -> NoReturn:
  """Prints `error: <one line>` (and, for a checkpoint mismatch, the key list) and exits 2."""
  if isinstance(error, CheckpointMismatchError):
    print(f"error: {error.summary}", file=sys.stderr)
    if error.problems:
      print("\n".join("  " + p for p in error.problems), file=sys.stderr)
  else:
    text = str(error)
    message = text.splitlines()[0] if text else type(error).__name__
    print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def user_errors_exit(main: Callable[..., int | None]) -> Callable[..., int | None]:
  """Wraps a `main` so that a user mistake is reported by `report_user_error`."""

  @functools.wraps(main)
  def wrapper(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except USER_ERRORS as e:
      report_user_error(e)

  return wrapper


def add_model_arguments(parser: argparse.ArgumentParser, random_init_help: str) -> None:
  """`--config` and one of `--checkpoint` / `--random-init`: how every CLI that runs a model
  names its weights (`genlv_jax.api.load_model` takes the same checkpoint kinds)."""
  parser.add_argument("--config", required=True, help="config file, e.g. configs/base.py")
  weights = parser.add_mutually_exclusive_group(required=True)
  weights.add_argument("--checkpoint", help="orbax params dir, training workdir, .pth or "
                                            ".safetensors")
  weights.add_argument("--random-init", action="store_true", help=random_init_help)
