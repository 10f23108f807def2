"""Shared fixtures: the tiny config and its initialised params, built once per session."""

import os
import sys

import tempfile

import jax
import pytest

from genlv_jax.models import cpu_kernels

# Identical programs compiled by different tests (and by reruns) come from a persistent cache:
# XLA:CPU compiles dominate this suite's time.
jax.config.update("jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), "genlv_jax_test_xla_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")


# Tests of the compiled CPU kernels are skipped, not failed, where they cannot be built
# (test_cpu_kernels.py fails instead if a compiler exists and the build does not work). The
# check runs when such a test is set up, never at collection: collecting builds nothing.
requires_cpu_kernel = pytest.mark.cpu_kernel
CPU_KERNEL = pytest.param("cpu_kernel", marks=requires_cpu_kernel)


def pytest_runtest_setup(item):
  if item.get_closest_marker("cpu_kernel") and not cpu_kernels.available():
    pytest.skip("the CPU kernels could not be built here")


def config_path(name: str) -> str:
  """Absolute path of `configs/<name>.py`."""
  return os.path.join(CONFIGS, f"{name}.py")


@pytest.fixture(scope="session")
def repo_root() -> str:
  return REPO


@pytest.fixture(scope="session")
def python() -> str:
  return sys.executable


def user_error(capsys, main, argv) -> str:
  """Runs a CLI `main(argv)` that must stop on a user mistake: exit status 2 and one stderr line
  starting with "error: " (no traceback). Returns that line."""
  with pytest.raises(SystemExit) as exit_info:
    main(list(argv))
  err = capsys.readouterr().err
  assert exit_info.value.code == 2, err[-2000:]
  assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err[-2000:]
  return err
