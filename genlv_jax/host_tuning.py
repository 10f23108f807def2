"""Process settings that make XLA:CPU training much cheaper, applied by re-executing the entry point.

Two facts measured on this project's model (GenLV-Base, one 128x128 training step, 2-core VM;
`benchmarks/model_speed.py` reports both ways, see BENCHMARKS.md):

* XLA:CPU allocates each execution's scratch buffer (4.7 GB for that step) with a single
  `malloc`. glibc serves a request that large with a fresh `mmap` and unmaps it on `free`, so the
  kernel zero-fills every page again on every step: 1.2-1.5 M page faults and 3-4 s of system
  time per step. Keeping freed memory in the process (one arena, no mmap, no trimming) removes
  them. glibc reads these settings once at start-up, hence the re-exec.
* XLA's default concurrency-optimised scheduler on CPU keeps more buffers alive at once (5.8 GB
  of scratch instead of 4.7 GB for that step) for no measurable speed gain on two cores.

Both only matter when the computation runs on the CPU; on GPU/TPU hosts nothing is changed.
Opt out with `GENLV_HOST_TUNING=0`; settings the user already made (`GLIBC_TUNABLES`, the XLA
flag) are left as they are.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from typing import Mapping, MutableMapping, Optional, Sequence

# `trim_threshold` is a size_t here (mallopt's int argument caps it at 2 GiB: too small).
GLIBC_TUNABLES = ("glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:"
                  "glibc.malloc.trim_threshold=1099511627776")
XLA_CPU_FLAGS = ("--xla_cpu_enable_concurrency_optimized_scheduler=false",)
OPT_OUT_VARIABLE = "GENLV_HOST_TUNING"
APPLIED_MARKER = "GENLV_HOST_TUNED"

# Plugins whose presence makes an accelerator, not the CPU, jax's default backend.
_ACCELERATOR_MODULES = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin",
                        "jax_rocm7_plugin", "libtpu")


def runs_on_cpu(environ: Mapping[str, str]) -> bool:
  """Whether jax will compute on the CPU in a process with this environment (jax not imported)."""
  platforms = environ.get("JAX_PLATFORMS", "").strip()
  if platforms:
    return platforms.split(",")[0].strip() == "cpu"
  return not any(importlib.util.find_spec(name) is not None for name in _ACCELERATOR_MODULES)


def tuned_environment(environ: Mapping[str, str]) -> dict:
  """`environ` plus the CPU settings, keeping any choice the user already made."""
  env = dict(environ)
  if "GLIBC_TUNABLES" not in env:
    env["GLIBC_TUNABLES"] = GLIBC_TUNABLES
  flags = env.get("XLA_FLAGS", "")
  for flag in XLA_CPU_FLAGS:
    if flag.split("=")[0] not in flags:
      flags = f"{flags} {flag}".strip()
  env["XLA_FLAGS"] = flags
  env[APPLIED_MARKER] = "1"
  return env


def should_reexec(environ: Mapping[str, str]) -> bool:
  """True when this process should restart itself with `tuned_environment`."""
  return (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
          and environ.get(OPT_OUT_VARIABLE, "1") != "0"
          and APPLIED_MARKER not in environ
          and runs_on_cpu(environ))


def reexec_tuned_for_cpu(environ: Optional[MutableMapping[str, str]] = None,
                         argv: Optional[Sequence[str]] = None) -> None:
  """Restarts the current command with the CPU settings when they apply; returns otherwise.

  Call it first thing under `if __name__ == "__main__":`, before jax is imported or anything is
  started: the process image is replaced, with the same interpreter, flags and arguments.
  """
  environ = os.environ if environ is None else environ
  if not should_reexec(environ):
    return
  argv = list(sys.orig_argv if argv is None else argv)
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *argv[1:]], tuned_environment(environ))
