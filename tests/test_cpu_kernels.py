"""The compiled XLA:CPU kernels: they build where a compiler exists, `ops.resolve()` picks them
only where they can run, everything falls back to XLA's formulations where they cannot, and
nothing is built before an op is first traced (importing the package or collecting the tests
builds nothing).

Their numbers are checked in test_layers.py (each op against the other formulations and
numpy), test_model.py (the whole model) and test_bridge_parity.py (against PyTorch).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from genlv_jax.models import cpu_kernels, ops

_COMPILER = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WARNING = "Could not build the CPU kernels"

# Resolves twice, and traces an op, so that a second build attempt or warning would show.
_RESOLVE = """
import dataclasses, json, jax, jax.numpy as jnp
from genlv_jax.models import cpu_kernels, ops
first = ops.resolve()
with ops.use(None):
  jax.jit(ops.depthwise_conv3x3).lower(jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 2)))
assert ops.resolve() == first
try:
  ops.resolve(ops.Implementations(depthwise="cpu_kernel"))
  explicit = "accepted"
except ValueError:
  explicit = "refused"
print(json.dumps([jax.device_count(), cpu_kernels.available(), dataclasses.asdict(first),
                  explicit]))
"""

KERNELS = dict(depthwise="cpu_kernel", windows="reshape", attention="matmul", conv="cpu_kernel",
               layer_norm="cpu_kernel")
FALLBACK = dict(depthwise="shifted", windows="reshape", attention="matmul", conv="xla",
                layer_norm="xla")


def _env(cache, **extra):
  env = {k: v for k, v in os.environ.items() if k not in ("CXX", "GENLV_CPU_KERNELS", "XLA_FLAGS")}
  return {**env, "GENLV_KERNEL_CACHE": str(cache), "JAX_PLATFORMS": "cpu", **extra}


def _resolve_in_subprocess(cache, **env):
  """(device count, kernels available, what "auto" resolves to, whether an explicit
  "cpu_kernel" is accepted) in a fresh process with that kernel cache; and its stderr."""
  out = subprocess.run([sys.executable, "-c", _RESOLVE], env=_env(cache, **env),
                       capture_output=True, text=True, cwd=_REPO)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def _built(cache):
  return sorted(p.name for p in cache.rglob("*")) if cache.exists() else []


@pytest.mark.skipif(_COMPILER is None, reason="no C++ compiler on this machine")
def test_kernels_build_and_auto_picks_them_on_one_cpu_device():
  assert cpu_kernels.available()
  assert ops.resolve() == ops.Implementations(**KERNELS)
  assert ops.resolve(ops.Implementations(depthwise="grouped", layer_norm="xla")) == \
      ops.Implementations(**{**KERNELS, "depthwise": "grouped", "layer_norm": "xla"})
  built = list(cpu_kernels._cache_dir().glob("cpu_kernels-*.so"))
  assert built, "the build should be cached for later processes"


def test_without_a_working_compiler_auto_falls_back_with_one_warning(tmp_path):
  (devices, available, resolved, explicit), stderr = _resolve_in_subprocess(
      tmp_path / "cache", CXX="/bin/false")
  assert (devices, available, resolved) == (1, False, FALLBACK)
  assert explicit == "refused"  # "cpu_kernel" asked for explicitly is an error, not a fallback
  assert stderr.count(_WARNING) == 1, stderr[-3000:]


def test_opting_out_builds_nothing_and_falls_back_silently(tmp_path):
  (devices, available, resolved, explicit), stderr = _resolve_in_subprocess(
      tmp_path / "cache", GENLV_CPU_KERNELS="0")
  assert (devices, available, resolved, explicit) == (1, False, FALLBACK, "refused")
  assert _WARNING not in stderr
  assert _built(tmp_path / "cache") == []


@pytest.mark.skipif(_COMPILER is None, reason="no C++ compiler on this machine")
def test_several_devices_keep_the_xla_formulations():
  # XLA's partitioner cannot split an FFI call along the batch: data-parallel CPU runs keep
  # XLA's formulations even though the kernels are available. (This process's cache: the
  # build is tested above.)
  assert cpu_kernels.available()
  (devices, available, resolved, _), _ = _resolve_in_subprocess(
      cpu_kernels._cache_dir(), XLA_FLAGS="--xla_force_host_platform_device_count=2")
  assert (devices, available, resolved) == (2, True, FALLBACK)


_IMPORT_AND_BUILD_A_MODEL = """
import json, os, sys
sys.path.insert(0, "tests")
import genlv_jax, genlv_jax.models
from genlv_jax.config_io import load_config
from genlv_jax.models import build_model, cpu_kernels
from conftest import config_path
for name in ("tiny", "base", "giant", "xrestormer"):
  build_model(load_config(config_path(name)))
print(json.dumps(cpu_kernels.available.cache_info().misses))
"""


def test_importing_the_package_and_building_models_builds_no_kernel(tmp_path):
  cache = tmp_path / "cache"
  out = subprocess.run([sys.executable, "-c", _IMPORT_AND_BUILD_A_MODEL], env=_env(cache),
                       capture_output=True, text=True, cwd=_REPO)
  assert out.returncode == 0, out.stderr[-3000:]
  assert json.loads(out.stdout.strip().splitlines()[-1]) == 0  # available() never asked
  assert _built(cache) == []


def test_collecting_the_tests_builds_no_kernel(tmp_path):
  cache = tmp_path / "cache"
  out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "tests"],
                       env=_env(cache), capture_output=True, text=True, cwd=_REPO)
  # (Collection errors elsewhere are other tests' business; this one needs tests collected.)
  assert "test_cpu_kernels.py::" in out.stdout, (out.stdout + out.stderr)[-3000:]
  assert _built(cache) == []
