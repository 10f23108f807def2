"""Shared plumbing of the command-line entry points: a `UserError` becomes one line and exit 2;
any other exception keeps its traceback."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable, NoReturn, Optional, Sequence

from genlv_jax.errors import UserError

EXIT_USER_ERROR = 2


def report_user_error(error: BaseException | str) -> NoReturn:
  """Prints `error: <one line>` (and the `problems` list a checkpoint mismatch carries), exits 2."""
  text = str(error)
  message = text.splitlines()[0] if text else type(error).__name__
  print(f"error: {getattr(error, 'summary', message)}", file=sys.stderr)
  problems = getattr(error, "problems", None)
  if problems:
    print("\n".join("  " + p for p in problems), file=sys.stderr)
  sys.exit(EXIT_USER_ERROR)


def user_errors_exit(main: Callable[..., int | None]) -> Callable[..., int | None]:
  """Wraps a `main` so that a `UserError` is reported by `report_user_error` (and nothing else
  is: an internal error keeps its traceback)."""

  @functools.wraps(main)
  def wrapper(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except UserError as e:
      report_user_error(e)

  return wrapper


class Parser(argparse.ArgumentParser):
  """argparse that reports a bad command line as a `UserError` (one line, exit 2) instead of
  printing the usage block."""

  def error(self, message: str) -> NoReturn:  # type: ignore[override]
    raise UserError(f"{self.prog}: {message}")


def parse_with_overrides(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]
                         ) -> tuple[argparse.Namespace, list[str]]:
  """Parses `argv`, returning the `--config.field=value` overrides apart; any other unknown
  argument is an error."""
  args, rest = parser.parse_known_args(argv)
  bad = [a for a in rest if not a.startswith("--config.")]
  if bad:
    parser.error(f"unrecognised arguments: {' '.join(bad)}")
  return args, rest


def add_model_arguments(parser: argparse.ArgumentParser, random_init_help: str) -> None:
  """`--config` and one of `--checkpoint` / `--random-init`: how every CLI that runs a model
  names its weights (`genlv_jax.load_model` takes the same checkpoint kinds)."""
  parser.add_argument("--config", help="config file, e.g. configs/base.py (fields can be "
                      "overridden with --config.FIELD=VALUE); default for a training workdir "
                      "--checkpoint: the config it recorded")
  weights = parser.add_mutually_exclusive_group(required=True)
  weights.add_argument("--checkpoint", help="orbax params dir, training workdir, fine-tuning "
                                            "workdir, .pth or .safetensors")
  weights.add_argument("--random-init", action="store_true", help=random_init_help)


def absl_flags_parser(argv: list[str]) -> list[str]:
  """`app.run(main, flags_parser=...)` for the absl entry points (train, demo): a bad config file,
  config override or flag is one line and exit 2, like every other CLI.

  The config and its `--config.FIELD=VALUE` overrides are loaded once with `load_config` first:
  ml_collections' flag reports a missing file only when the config is first used, and an
  unknown field as a bare AttributeError.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  from genlv_jax.config_io import load_config  # pylint: disable=import-outside-toplevel
  path, overrides = None, []
  for i, arg in enumerate(argv[1:], start=1):
    if arg == "--config" and i + 1 < len(argv):
      path = argv[i + 1]
    elif arg.startswith("--config="):
      path = arg.split("=", 1)[1]
    elif arg.startswith("--config.") and "=" in arg:
      overrides.append(arg)
  try:
    if path is not None:
      load_config(path, overrides)
    return flags.FLAGS(argv)
  except UserError as e:
    report_user_error(e)
  except flags.Error as e:
    cause = e.__cause__ or e.__context__
    detail = f": {cause}" if cause is not None and str(cause) not in str(e) else ""
    report_user_error(f"{e}{detail}")
