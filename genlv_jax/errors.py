"""The one exception family for user mistakes.

A `UserError` means "what was asked for cannot be done as asked": a missing file, a config
field that does not exist, a checkpoint that does not fit the config, a tile size the model
cannot use. It is raised where input is validated, with a message that fits on one line and
names the fix. The command-line tools catch `UserError` only: they print `error: <message>` and
exit with status 2. Every other exception is a bug (ours or a library's) and keeps its
traceback.

Subclasses keep the built-in type that callers of the Python API may already catch
(`ValueError`; `FileNotFoundError` for a path that does not exist).
"""

from __future__ import annotations


class UserError(ValueError):
  """A mistake in what the user asked for (a path, a flag, a config value, an input file)."""


class PathNotFoundError(UserError, FileNotFoundError):
  """A file or folder the user named does not exist."""

  def __init__(self, message: str):
    # FileNotFoundError(message) would leave errno and filename unset either way; keep str().
    super().__init__(message)

  def __str__(self) -> str:
    return str(self.args[0]) if self.args else ""
