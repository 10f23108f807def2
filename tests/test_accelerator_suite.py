"""benchmarks/accelerator_suite.py, the GPU suite, run in its --smoke mode on the CPU.

The smoke run is the GPU run's code with tiny sizes (the tiny model at 64², a few steps): every
section must finish and write numbers, so that the one call on a lent GPU does not die on a
bug that a CPU could have shown. It compiles with XLA's cheap backend options (its timings are
not measurements) and through the test suite's persistent compilation cache.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE = os.path.join(REPO, "benchmarks", "accelerator_suite.py")
# The float32 end-to-end tolerance of tests/test_bridge_parity.py.
END_TO_END_TOL = 1e-4


def _load_suite():
  spec = importlib.util.spec_from_file_location("accelerator_suite", SUITE)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # its dataclasses look their module up there
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
  pytest.importorskip("torch", reason="the suite compares against the PyTorch reference "
                                      "(the `bridge` extra)")
  out = tmp_path_factory.mktemp("accelerator_suite")
  env = {k: v for k, v in os.environ.items() if k not in ("OUT", "XLA_FLAGS")}
  env.update(
      JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
      # Compile time is most of this test: XLA:CPU's cheap backend settings halve it.
      XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
      JAX_COMPILATION_CACHE_DIR=os.path.join(tempfile.gettempdir(),
                                             "genlv_jax_test_xla_cache"),
      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="1")
  proc = subprocess.run([sys.executable, SUITE, "--smoke", "--out", str(out)], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=900)
  log = proc.stdout[-6000:] + proc.stderr[-6000:]
  assert proc.returncode == 0, log
  with open(out / "results.json") as f:
    results = json.load(f)
  return results, (out / "results.md").read_text(), log


def _positive(x) -> bool:
  return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_every_section_ran_and_wrote_its_results(smoke):
  results, markdown, log = smoke
  assert results["complete"] and results["mode"] == "smoke", log
  assert "watchdog" not in results
  for name in ("device", "parity", "convergence", "throughput"):
    section = results["sections"][name]
    assert section["status"] == "ok", (name, section.get("error"), section.get("traceback"))
  for heading in ("## Device", "## Parity", "## Throughput", "## Convergence"):
    assert heading in markdown
  # The optional part a smoke run leaves out is listed with its reason.
  assert any(s["what"] == "torch.compile" and s["why"] for s in results["skipped"])


def test_device_section_measures_a_matmul_rate(smoke):
  device = smoke[0]["sections"]["device"]
  assert device["jax_backend"] == "cpu"
  assert _positive(device["matmul_bf16"]["tflops"])
  assert _positive(device["torch_matmul_bf16_tflops"])


def test_parity_of_the_tiny_model_is_within_the_cpu_tolerance(smoke):
  tiny = smoke[0]["sections"]["parity"]["models"]["tiny"]
  f32 = tiny["jax_f32_highest_vs_torch_cpu"]
  assert f32["finite"] and 0 <= f32["max_abs"] <= END_TO_END_TOL
  assert tiny["within_cpu_tolerance"] is True
  # bf16 computes something else, but close: its drift is measured, nonzero and small.
  drift = tiny["jax_bf16_vs_jax_f32"]
  assert drift["finite"] and 0 < drift["max_abs"] < 0.1 and drift["psnr_db"] > 30


def test_throughput_rows_have_rates_flops_and_mfu(smoke):
  section = smoke[0]["sections"]["throughput"]
  flops = section["flops"]["tiny"]
  assert _positive(flops["forward_tflop"]) and flops["train_step_method"] == "counted"
  assert 2.0 < flops["train_step_tflop"] / flops["forward_tflop"] < 4.0
  rows = {(r["framework"], r["pass"]): r for r in section["rows"]}
  assert set(rows) == {(f, p) for f in ("jax", "torch_eager") for p in ("forward", "train_step")}
  for row in rows.values():
    assert "error" not in row, row
    for key in ("s_per_iter", "images_per_s", "tflops", "mfu_vs_measured_matmul"):
      assert _positive(row[key]), (row, key)
  assert rows[("jax", "train_step")]["xla_temp_gib"] > 0


def test_convergence_loss_falls(smoke):
  conv = smoke[0]["sections"]["convergence"]
  assert conv["data"].startswith("builtin image source")
  assert len(conv["loss_every"]) == conv["steps"] // conv["log_every"]
  assert all(_positive(e["loss"]) for e in conv["loss_every"])
  assert conv["nonfinite_steps"] == 0
  assert conv["loss_falls"] and conv["last_window_mean"] < conv["first_window_mean"]


def test_arguments_and_report_of_a_partial_run():
  suite = _load_suite()
  with pytest.raises(SystemExit):
    suite.parse_args(["--sections", "parity,nonsense"])
  args = suite.parse_args(["--sections", "throughput", "--throughput-models", "base:8,huge:2"])
  assert args.budget_s == 420 and args.torch_compile == "auto"
  # A run cut short: a failed section and a skipped part still render.
  text = suite.render_markdown({
      "mode": "full", "budget_s": 420, "watchdog": "stopped at 465 s",
      "sections": {"device": {"status": "ok", "matmul_bf16": {"n": 8192, "tflops": 780.0}},
                   "parity": {"status": "error", "error": "RuntimeError: boom"}},
      "skipped": [{"what": "throughput huge", "why": "12 s of the budget left"}]})
  assert "RuntimeError: boom" in text and "throughput huge" in text and "780" in text
