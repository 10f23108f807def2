"""The compiled XLA:CPU depthwise-conv kernel: it builds where a compiler exists, "auto" picks it
only where it can run, and everything falls back to the shifted form where it cannot.

Its numbers are checked in test_layers.py (against a direct loop and lax's grouped conv) and
test_bridge_parity.py (against PyTorch).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from genlv_jax.models import build, cpu_kernels

_COMPILER = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")

_RESOLVE = (
    "import json, jax; from genlv_jax.models import build, cpu_kernels; "
    "print(json.dumps([jax.device_count(), cpu_kernels.available(), "
    "build.resolve_implementations('auto', 'auto')[0]]))")


def _resolve_in_subprocess(tmp_path, **env):
  """(device count, kernel available, what "auto" resolves to) in a fresh process."""
  env = {**os.environ, "GENLV_KERNEL_CACHE": str(tmp_path / "cache"), **env}
  out = subprocess.run([sys.executable, "-c", _RESOLVE], env=env, capture_output=True, text=True,
                       check=True)
  return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


@pytest.mark.skipif(_COMPILER is None, reason="no C++ compiler on this machine")
def test_kernel_builds_and_auto_picks_it_on_one_cpu_device():
  assert cpu_kernels.available()
  assert build.resolve_implementations("auto", "auto") == ("cpu_kernel", "reshape")
  built = list(cpu_kernels._cache_dir().glob("cpu_kernels-*.so"))
  assert built, "the build should be cached for later processes"


def test_without_a_working_compiler_auto_falls_back_to_shifted(tmp_path):
  (devices, available, impl), stderr = _resolve_in_subprocess(tmp_path, CXX="/bin/false")
  assert (devices, available, impl) == (1, False, "shifted")
  assert "Could not build the CPU kernels" in stderr


def test_opt_out_and_several_devices_keep_the_shifted_form(tmp_path):
  (_, available, impl), _ = _resolve_in_subprocess(tmp_path, GENLV_CPU_KERNELS="0")
  assert (available, impl) == (False, "shifted")
  if _COMPILER is not None:
    # XLA's partitioner cannot split an FFI call along the batch: data-parallel CPU runs keep
    # the shifted form even though the kernel is available.
    (devices, available, impl), _ = _resolve_in_subprocess(
        tmp_path, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert (devices, available, impl) == (2, True, "shifted")
