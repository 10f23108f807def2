"""benchmarks/data_throughput.py: per-task rates, each task's share of the mix's CPU time, and
what a pod host consumes for a config beside the cores the mix needs to feed it."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_shares_and_host_consumption():
  out = subprocess.run(
      [sys.executable, os.path.join(REPO, "benchmarks", "data_throughput.py"), "--tasks",
       "gaussian_denoising,canny", "--seconds", "0.3", "--workers", "0", "--no-naive",
       "--image-size", "64", "--consumer", os.path.join(REPO, "configs", "tiny.py"), "--json"],
      env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO), capture_output=True,
      text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  report = json.loads(out.stdout)
  rates = {n: r["samples_per_s_per_core"] for n, r in report["tasks"].items()}
  shares = {n: r["cpu_share"] for n, r in report["tasks"].items()}
  assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
  slower = min(rates, key=rates.get)  # the slower task takes the larger share of CPU time
  assert shares[slower] == max(shares.values())
  consumption = report["consumption"]
  flops = consumption["train_step_flops_per_image"]
  for host, (chips, peak) in {"TPU v4-32": (4, 275.0), "TPU v5p-64": (4, 459.0)}.items():
    row = consumption["hosts"][host]
    assert row["samples_per_s_per_host"] == pytest.approx(chips * peak * 1e12 * 0.4 / flops,
                                                          rel=0.01)
    assert row["cores_needed_per_host"] == pytest.approx(
        row["samples_per_s_per_host"] / report["mix"]["samples_per_s_per_core"], rel=0.02)
