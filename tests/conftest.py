"""Shared fixtures: the tiny config and its initialised params, built once per session."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")


def config_path(name: str) -> str:
  """Absolute path of `configs/<name>.py`."""
  return os.path.join(CONFIGS, f"{name}.py")


@pytest.fixture(scope="session")
def repo_root() -> str:
  return REPO


@pytest.fixture(scope="session")
def python() -> str:
  return sys.executable
