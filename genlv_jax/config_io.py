"""Loading config files (`configs/*.py`, optionally `path.py:arg`) outside of absl flags."""

from __future__ import annotations

import importlib.util
import inspect
import os
from typing import Iterable, Union

import ml_collections

from genlv_jax.errors import UserError

ConfigLike = Union[str, os.PathLike, ml_collections.ConfigDict]


class ConfigError(UserError):
  """A config path, argument or override that cannot be used (a user mistake)."""


def load_config(config: ConfigLike, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
  """Returns the ConfigDict of a config file (`get_config()` or `get_config(arg)` for `file.py:arg`).

  `overrides` are `field.sub=value` strings as on the command line (`--config.` prefix optional).
  A ConfigDict is returned as a copy with the overrides applied.
  """
  if isinstance(config, ml_collections.ConfigDict):
    cfg = ml_collections.ConfigDict(config.to_dict())
  else:
    path, _, arg = str(config).partition(":")
    if os.path.isdir(path):
      raise ConfigError(f"config {path} is a folder: give a config file such as configs/base.py")
    if not os.path.isfile(path):
      raise ConfigError(f"config file not found: {path}")
    if not path.endswith(".py"):
      raise ConfigError(f"config {path} is not a Python file: give a config such as "
                        "configs/base.py (a file with get_config())")
    spec = importlib.util.spec_from_file_location(f"_genlv_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
      spec.loader.exec_module(module)
    except Exception as e:  # a broken config file is the user's to fix: say which and why
      raise ConfigError(f"cannot load config {path}: {type(e).__name__}: {e}") from e
    if not hasattr(module, "get_config"):
      raise ConfigError(f"config {path} has no get_config()")
    takes = inspect.signature(module.get_config).parameters
    if arg and not takes:
      raise ConfigError(f"config {path} takes no argument (got {path}:{arg})")
    if not arg and any(p.default is inspect.Parameter.empty for p in takes.values()):
      raise ConfigError(f"config {path} needs an argument: {path}:ARG")
    cfg = module.get_config(arg) if arg else module.get_config()
  for override in overrides:
    apply_override(cfg, override)
  return cfg


def apply_override(cfg: ml_collections.ConfigDict, override: str) -> None:
  """Applies one `a.b=value` override, parsing value with the type of the existing field."""
  key, sep, raw = override.removeprefix("--").removeprefix("config.").partition("=")
  if not sep:
    raise ConfigError(f"override {override!r} is not of the form field=value")
  *parents, leaf = key.split(".")
  node = cfg
  for name in parents:
    if name not in node:
      raise ConfigError(f"unknown config field {key!r}")
    node = node[name]
  if leaf not in node:
    raise ConfigError(f"unknown config field {key!r}")
  current = node[leaf]
  if isinstance(current, ml_collections.ConfigDict):
    raise ConfigError(f"config field {key!r} is a group of fields: set one of them "
                      f"(--config.{key}.FIELD=VALUE)")
  try:
    if isinstance(current, bool):
      value = {"true": True, "false": False, "1": True, "0": False}[raw.lower()]
    elif isinstance(current, (tuple, list)):
      items = [s for s in raw.strip("()[] ").split(",") if s.strip()]
      kind = type(current[0]) if current else str
      value = tuple(kind(s.strip()) for s in items)
    elif current is None:
      value = raw
    else:
      value = type(current)(raw)
  except (KeyError, ValueError) as e:
    raise ConfigError(f"cannot set {key}={raw!r}: expected {type(current).__name__}") from e
  node[leaf] = value
