"""genlv_jax.host_tuning: the environment it builds, when it re-executes, and that it works."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from genlv_jax import host_tuning

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tuned_environment_adds_the_settings_and_a_marker():
  env = host_tuning.tuned_environment({"PATH": "/bin", "XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
  assert env["PATH"] == "/bin"
  assert env["GLIBC_TUNABLES"] == host_tuning.GLIBC_TUNABLES
  assert env["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=8",
                                      *host_tuning.XLA_CPU_FLAGS]
  assert env[host_tuning.APPLIED_MARKER] == "1"


def test_tuned_environment_keeps_the_users_choices():
  user = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4",
          "XLA_FLAGS": "--xla_cpu_enable_concurrency_optimized_scheduler=true"}
  env = host_tuning.tuned_environment(user)
  assert env["GLIBC_TUNABLES"] == user["GLIBC_TUNABLES"]
  assert env["XLA_FLAGS"] == user["XLA_FLAGS"]


@pytest.mark.parametrize("platforms, expected", [("cpu", True), ("cpu,cuda", True),
                                                 ("cuda", False), ("tpu,cpu", False)])
def test_runs_on_cpu_follows_jax_platforms(platforms, expected):
  assert host_tuning.runs_on_cpu({"JAX_PLATFORMS": platforms}) is expected


def test_no_reexec_when_already_tuned_opted_out_or_on_an_accelerator():
  if not host_tuning.should_reexec({"JAX_PLATFORMS": "cpu"}):
    pytest.skip("not a glibc Linux host")
  assert not host_tuning.should_reexec({"JAX_PLATFORMS": "cpu", host_tuning.APPLIED_MARKER: "1"})
  assert not host_tuning.should_reexec({"JAX_PLATFORMS": "cpu", host_tuning.OPT_OUT_VARIABLE: "0"})
  assert not host_tuning.should_reexec({"JAX_PLATFORMS": "cuda"})


# A program whose scratch buffer is tens of MB: with glibc's defaults each call maps it afresh
# and faults every page in; with the settings the freed memory is reused.
_PROBE = textwrap.dedent("""
    import json, os, resource, sys
    sys.path.insert(0, {root!r})
    from genlv_jax import host_tuning
    if sys.argv[1] == "tuned":
      host_tuning.reexec_tuned_for_cpu()
    import jax, jax.numpy as jnp
    x = jnp.linspace(0, 1, 8 * 2 ** 20)
    f = jax.jit(lambda x: jnp.sort(jnp.sin(x) * x)[::7].sum() + jnp.sort(jnp.cos(x))[::5].sum())
    f(x).block_until_ready()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
      f(x).block_until_ready()
    print(json.dumps({{"argv": sys.argv[1:], "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before,
                      "marker": os.environ.get(host_tuning.APPLIED_MARKER),
                      "tunables": os.environ.get("GLIBC_TUNABLES")}}))
""")


def _probe(tmp_path, mode: str) -> dict:
  script = tmp_path / "probe.py"
  script.write_text(_PROBE.format(root=ROOT))
  env = {k: v for k, v in os.environ.items()
         if k not in ("GLIBC_TUNABLES", host_tuning.APPLIED_MARKER, host_tuning.OPT_OUT_VARIABLE)}
  env["JAX_PLATFORMS"] = "cpu"
  out = subprocess.run([sys.executable, str(script), mode, "extra-arg"], env=env, check=True,
                       capture_output=True, text=True, timeout=300).stdout
  return json.loads(out.strip().splitlines()[-1])


def test_reexec_keeps_the_arguments_and_removes_the_page_faults(tmp_path):
  if not host_tuning.should_reexec({"JAX_PLATFORMS": "cpu"}):
    pytest.skip("not a glibc Linux host")
  plain, tuned = _probe(tmp_path, "plain"), _probe(tmp_path, "tuned")
  assert plain["marker"] is None and plain["tunables"] is None
  assert tuned["argv"] == ["tuned", "extra-arg"]
  assert tuned["marker"] == "1" and tuned["tunables"] == host_tuning.GLIBC_TUNABLES
  # The default run faults its scratch memory in on every call (8 M floats: 8k pages per copy).
  assert plain["faults"] > 3 * 8192
  assert tuned["faults"] < plain["faults"] / 4
