"""The GPU suite: everything worth measuring on a lent accelerator, in one call of under 8 minutes.

    python benchmarks/accelerator_suite.py --out "$OUT"           # on the GPU machine
    python benchmarks/accelerator_suite.py --smoke --out /tmp/s   # the same code on a CPU (tests)

Sections, each writing its part of `results.json` (rewritten after every measurement, so a
kill keeps what was measured) and `results.md` (the same, for people):

  device       versions, the device, nvidia-smi's clocks, and a measured bf16 matmul rate
               (8192² jitted products, timed after warm-up): the MFU denominator; the
               published dense-bf16 peak beside it when the device kind is known.
  parity       GenLV tiny (64²) and base (256²) in float32 on the device against the PyTorch
               reference with the same weights (initialised in PyTorch, moved off their init
               values, converted by `genlv_jax.bridge.torch_to_flax`; fed BGR as the authors
               do): max abs error and relative L2 against torch on the CPU (the reference) and
               on the device (TF32 off); JAX at `highest` matmul precision (checked against the
               1e-4 of tests/test_bridge_parity.py) and, for tiny, at the default one (TF32 on
               GPUs); the bf16 model's drift from its own float32 output (max abs, PSNR).
  convergence  configs/demo.py (the tiny GenLV) for 300 steps of batch 64 at 64² with the
               project's train step, on the builtin images through the task catalogue
               (`genlv_jax.data.records`, no grain needed) or, where that cannot load, on
               structured images generated here (the results say which); the loss every 10
               steps and whether it fell.
  throughput   base / large / huge at 256², bfloat16, batch 8 / 4 / 2 (levels under nn.scan for
               short compiles; Huge rematerialised, as its config says): the forward pass and
               the project's train step (L1, clipping, AdamW; state donated), images/s, TFLOP/s
               and MFU from XLA's cost analysis of the *unrolled twin* (see FLOPs below), peak
               memory; beside the PyTorch reference in eager mode under
               `torch.autocast(bfloat16)` (L1, clipping, AdamW) and, budget permitting,
               `torch.compile`.

FLOPs: XLA counts a while loop's body once and nothing inside custom calls (cuDNN attention,
the CPU FFI kernels), so FLOPs are counted on a twin of each model that computes the same
function unrolled with XLA's own formulations (`model.scan_blocks=false`, `remat=false`,
`ops.depthwise=shifted`, `ops.windows=reshape`, `ops.conv/layer_norm/attention=xla`), lowered
on abstract shapes (nothing runs). The forward pass is counted for every model; the train step
is counted for the first model and scaled by its train/forward ratio for the others (tracing
an unrolled Huge train step takes about a minute), as each row's `flops_method` says. The
same counts serve the PyTorch rows (the same function).

Budget: `--budget-s` (default 420) is checked between measurements; an optional part (the
second and later throughput models, torch.compile) that does not fit what is left is skipped
and listed under `skipped` with the reason. A watchdog writes the results and exits (status 3)
at `--hard-limit-s` (default budget + 45 s) if one measurement overruns, and on SIGTERM.
Every section runs in a try/except that records the error in the results; the rest still run.
Without an accelerator (JAX on its CPU backend) only --smoke (or --allow-cpu) runs the plan.

------------------------------------------------------------------------------------------
On the lent H200 (the `run` tool; KINDS.md's image has jax 0.11.2 with CUDA, flax, optax,
torch 2.11 with CUDA, opencv, scipy, scikit-image/-learn; of what this suite imports it lacks
only `ml_collections`, pure Python, needing absl-py and PyYAML, both there). Once, here, in
the repository root (this venv has ml_collections==1.1.0):

    mkdir -p .git/info && echo /.whl/ >> .git/info/exclude
    .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl ml_collections==1.1.0

Then one call of the `run` tool with carry [".whl"] and timeout_s 560:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; set -o pipefail; \
    PYTHONUNBUFFERED=1 python3 benchmarks/accelerator_suite.py --out $OUT 2>&1 | tee $OUT/log.txt

$OUT brings back results.json, results.md and log.txt (3 of the 8 files allowed). A later
call with time left can add what was skipped, e.g. `--sections throughput --throughput-models
huge:2` or `--sections throughput --throughput-models base:8 --torch-compile-need-s 0`.
Not known before the first call: the image's flax version (the device section records every
version); should the model fail to build under it, carry `flax==0.12.8` (what this venv tests)
as a wheel the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import gc
import functools
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Callable, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

SECTIONS = ("device", "parity", "convergence", "throughput")
# The float32 end-to-end tolerance of tests/test_bridge_parity.py (CPU against CPU).
CPU_END_TO_END_TOL = 1e-4
# Dense bf16 tensor-core peaks from the vendors' datasheets (FLOP/s), by device-kind substring.
PUBLISHED_BF16_PEAK = (
    ("H200", 989.4e12), ("H100", 989.4e12), ("GH200", 989.4e12), ("A100", 312e12),
    ("L40S", 362.05e12), ("L4", 121e12), ("A10G", 70e12), ("B200", 2250e12),
)
# The paper's optimiser for the PyTorch side (the JAX side uses the config's: the same values).
LR, BETAS, WEIGHT_DECAY, CLIP = 1e-4, (0.9, 0.99), 1e-4, 1.0
MODEL_CONFIGS = {"tiny": "configs/tiny.py", "base": "configs/base.py",
                 "large": "configs/large.py", "huge": "configs/huge.py",
                 "giant": "configs/giant.py"}
# Throughput overrides per model, after the common ones: Huge (and Giant) do not fit a step
# without rematerialisation (launch/README.md: 161 GB at batch 1 on XLA:CPU), as their configs say.
MODEL_EXTRA = {"huge": ("remat=true",), "giant": ("remat=true",)}
# The unrolled twin on which XLA's cost analysis counts every FLOP (see the module docstring).
FLOP_TWIN = ("model.scan_blocks=false", "remat=false", "ops.depthwise=shifted",
             "ops.windows=reshape", "ops.conv=xla", "ops.layer_norm=xla", "ops.attention=xla")


@dataclasses.dataclass
class Plan:
  """What one mode measures (`--smoke` shrinks every size; the code paths are the same)."""
  matmul_n: int
  parity: tuple          # (name, config, batch, (h, w), (prompt h, prompt w))
  parity_default_precision: tuple  # models also checked at the default matmul precision
  throughput: tuple      # (name, config, batch)
  throughput_dtype: str  # the JAX compute dtype of the throughput rows
  image_size: int
  measure_s: float       # wall time per timed repeat
  repeats: int
  convergence_steps: int
  convergence_batch: int
  convergence_size: int
  convergence_log_every: int
  convergence_overrides: tuple
  torch_compile_models: tuple


FULL = Plan(
    matmul_n=8192,
    parity=(("tiny", "configs/tiny.py", 2, (64, 64), (48, 40)),
            ("base", "configs/base.py", 1, (256, 256), (192, 160))),
    parity_default_precision=("tiny",),
    throughput=(("base", "configs/base.py", 8), ("large", "configs/large.py", 4),
                ("huge", "configs/huge.py", 2)),
    throughput_dtype="bfloat16", image_size=256, measure_s=1.0, repeats=3,
    convergence_steps=300, convergence_batch=64, convergence_size=64, convergence_log_every=10,
    convergence_overrides=(), torch_compile_models=("base",))

SMOKE = Plan(
    matmul_n=256,
    parity=(("tiny", "configs/tiny.py", 2, (64, 64), (48, 40)),),
    parity_default_precision=(),   # on a CPU the default precision is the highest
    throughput=(("tiny", "configs/tiny.py", 2),),
    # XLA:CPU compiles a bf16 train step slowly (minutes on 2 cores); the parity section
    # still runs the bf16 model.
    throughput_dtype="float32", image_size=64, measure_s=0.2, repeats=2,
    # Few steps: a short warm-up so that the learning rate is up before the loss is judged.
    convergence_steps=16, convergence_batch=4, convergence_size=64, convergence_log_every=4,
    convergence_overrides=("optimizer.warmup_steps=2",), torch_compile_models=("tiny",))


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short_error(e: BaseException) -> str:
  lines = [line for line in str(e).splitlines() if line.strip()]
  return f"{type(e).__name__}: {lines[0][:400] if lines else ''}"


def _version(dist: str) -> Optional[str]:
  try:
    return importlib.metadata.version(dist)
  except importlib.metadata.PackageNotFoundError:
    return None


def _r(x: Optional[float], digits: int = 4) -> Optional[float]:
  """Rounded to `digits` significant digits (None and non-finite values kept as they are)."""
  if x is None or not isinstance(x, (int, float)) or not math.isfinite(x) or x == 0:
    return x
  return float(f"{x:.{digits}g}")


# ----------------------------------------------------------------------------- bookkeeping


class Budget:
  """Elapsed time against `--budget-s`: optional parts run only when they fit."""

  def __init__(self, budget_s: float):
    self.start = time.perf_counter()
    self.budget_s = budget_s

  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def left(self) -> float:
    return self.budget_s - self.elapsed()

  def fits(self, need_s: float) -> bool:
    return self.left() >= need_s


class Results:
  """The one results dict, written to results.json and results.md after every measurement."""

  def __init__(self, out_dir: str, meta: dict):
    self.out_dir = out_dir
    self.lock = threading.RLock()
    self.data: dict[str, Any] = {**meta, "sections": {}, "skipped": [], "complete": False}
    os.makedirs(out_dir, exist_ok=True)

  def section(self, name: str) -> dict:
    with self.lock:
      return self.data["sections"].setdefault(name, {"status": "running"})

  def skip(self, what: str, why: str) -> None:
    with self.lock:
      self.data["skipped"].append({"what": what, "why": why})
    _log(f"skipped {what}: {why}")
    self.write()

  def write(self) -> None:
    with self.lock:
      self.data["updated_utc"] = _now()
      text = json.dumps(self.data, indent=1, default=str)
      markdown = render_markdown(self.data)
      for name, content in (("results.json", text), ("results.md", markdown)):
        path = os.path.join(self.out_dir, name)
        with open(path + ".tmp", "w") as f:
          f.write(content)
        os.replace(path + ".tmp", path)


_T0 = time.perf_counter()


def _log(message: str) -> None:
  print(f"[{time.perf_counter() - _T0:7.1f}s wall {time.process_time():7.1f}s cpu] {message}",
        flush=True)


def _stop(results: Results, why: str, code: int) -> None:
  """Records why the run ends early, writes the results and ends the process at once."""
  try:
    running = [k for k, v in list(results.data["sections"].items())
               if v.get("status") == "running"]
  except RuntimeError:  # the main thread changed the dict meanwhile
    running = []
  results.data["watchdog"] = f"{why} while {', '.join(running) or 'between sections'} ran"
  results.data["elapsed_s"] = round(time.perf_counter() - _T0, 1)
  _log(results.data["watchdog"])
  for _ in range(5):
    try:
      results.write()
      break
    except RuntimeError:  # a dict changed while it was serialised: try again
      time.sleep(0.2)
  os._exit(code)


def _start_watchdog(results: Results, hard_limit_s: float) -> None:
  """Writes what was measured and exits the process if it runs past `hard_limit_s` or is sent
  SIGTERM (a measurement that overruns must not cost the whole call)."""

  def watch():
    time.sleep(max(hard_limit_s - (time.perf_counter() - _T0), 0))
    _stop(results, f"stopped at {hard_limit_s:.0f} s (--hard-limit-s)", 3)

  threading.Thread(target=watch, daemon=True, name="watchdog").start()
  signal.signal(signal.SIGTERM, lambda *_: _stop(results, "stopped by SIGTERM", 143))


# ----------------------------------------------------------------------------- timing


def _time_loop(step: Callable[[], Any], sync: Callable[[Any], None], measure_s: float,
               repeats: int, min_iters: int = 2, max_iters: int = 500) -> dict:
  """Seconds per call of `step` (already warm): one call to size the loop, then `repeats`
  loops of n back-to-back calls with one sync at the end (dispatch overlaps execution)."""
  start = time.perf_counter()
  sync(step())
  one = time.perf_counter() - start
  n = int(min(max_iters, max(min_iters, measure_s / max(one, 1e-6))))
  per_iter = []
  for _ in range(repeats):
    start = time.perf_counter()
    last = None
    for _ in range(n):
      last = step()
    sync(last)
    per_iter.append((time.perf_counter() - start) / n)
  return {"s_per_iter": statistics.median(per_iter), "iters": n, "repeats": repeats,
          "all_s_per_iter": [_r(t) for t in per_iter]}


# ----------------------------------------------------------------------------- the suite


@dataclasses.dataclass
class Ctx:
  args: argparse.Namespace
  plan: Plan
  results: Results
  budget: Budget
  jax: Any
  jnp: Any
  np: Any
  torch: Any                     # None when torch cannot be imported
  torch_device: str              # "cuda" or "cpu"
  matmul_rate: Optional[float] = None
  published_peak: Optional[float] = None

  def sync_torch(self, _=None) -> None:
    if self.torch is not None and self.torch_device == "cuda":
      self.torch.cuda.synchronize()


def section_device(ctx: Ctx, out: dict) -> None:
  jax, jnp = ctx.jax, ctx.jnp
  dev = jax.devices()[0]
  out["jax_backend"] = jax.default_backend()
  out["devices"] = [str(d) for d in jax.devices()]
  out["device_kind"] = getattr(dev, "device_kind", "")
  out["device_count"] = jax.device_count()
  out["python"] = sys.version.split()[0]
  out["host"] = {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "load_average": [round(x, 2) for x in os.getloadavg()]}
  out["versions"] = {k: _version(k) for k in (
      "jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax", "numpy",
      "ml_collections", "torch", "opencv-python-headless", "scikit-image")}
  out["torch_device"] = ctx.torch_device
  if ctx.torch is not None and ctx.torch_device == "cuda":
    props = ctx.torch.cuda.get_device_properties(0)
    out["torch_cuda"] = {"name": props.name, "multiprocessors": props.multi_processor_count,
                         "memory_gib": round(props.total_memory / 2**30, 1),
                         "cuda": ctx.torch.version.cuda}
  try:
    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,"
         "power.draw,temperature.gpu,memory.used,memory.total", "--format=csv"],
        capture_output=True, text=True, timeout=20)
    out["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
  except (OSError, subprocess.SubprocessError) as e:
    out["nvidia_smi"] = f"not available: {_short_error(e)}"
  ctx.results.write()

  # The bf16 matmul rate: n³ products, random operands (never zeros: METHOD.md), jitted,
  # three warm-ups, then back-to-back calls with one block at the end.
  n = ctx.args.matmul_n or ctx.plan.matmul_n
  if out["jax_backend"] == "cpu" and not ctx.args.matmul_n and not ctx.args.smoke:
    n = 1024  # no accelerator: 8192² bf16 products would take minutes here
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.random.normal(ka, (n, n), jnp.bfloat16)
  b = jax.random.normal(kb, (n, n), jnp.bfloat16)
  matmul = jax.jit(lambda x, y: x @ y)
  for _ in range(3):
    matmul(a, b).block_until_ready()
  timing = _time_loop(lambda: matmul(a, b), lambda r: r.block_until_ready(),
                      ctx.plan.measure_s, 5, min_iters=3)
  ctx.matmul_rate = 2 * n**3 / timing["s_per_iter"]
  out["matmul_bf16"] = {"n": n, "tflops": _r(ctx.matmul_rate / 1e12), **timing,
                        "how": f"jax.jit(a @ b), {n}x{n} bf16 normal operands, median of "
                               f"{timing['repeats']} loops of {timing['iters']} calls"}
  del a, b
  for kind, peak in PUBLISHED_BF16_PEAK:
    if kind.lower() in out["device_kind"].lower():
      ctx.published_peak = peak
      out["published_bf16_peak_tflops"] = peak / 1e12
      out["measured_over_published"] = _r(ctx.matmul_rate / peak, 3)
      break
  if ctx.torch is not None:
    torch = ctx.torch
    gen = torch.Generator(device=ctx.torch_device).manual_seed(0)
    ta = torch.randn(n, n, device=ctx.torch_device, dtype=torch.bfloat16, generator=gen)
    tb = torch.randn(n, n, device=ctx.torch_device, dtype=torch.bfloat16, generator=gen)
    for _ in range(3):
      torch.matmul(ta, tb)
    ctx.sync_torch()
    t = _time_loop(lambda: torch.matmul(ta, tb), ctx.sync_torch, ctx.plan.measure_s, 3,
                   min_iters=3)
    out["torch_matmul_bf16_tflops"] = _r(2 * n**3 / t["s_per_iter"] / 1e12)
    del ta, tb


# ---- parity


def _perturbed(name: str, value, rng):
  """Init values (LayerNorm 1/0, temperature 1, zero biases) hide layout bugs: move them
  (the rule of tests/bridge_testutil.py)."""
  import numpy as np
  leaf = name.replace(".", "/").rsplit("/", 1)[-1]
  if leaf == "temperature":
    out = rng.uniform(0.5, 2.0, value.shape)
  elif leaf == "weight" and value.ndim == 1:
    out = 1.0 + rng.normal(0.0, 0.2, value.shape)
  elif leaf == "bias":
    out = rng.normal(0.0, 0.1, value.shape)
  elif leaf in ("rel_height", "rel_width"):
    out = value + rng.normal(0.0, 0.3, value.shape)
  else:
    out = value * (1.0 + rng.normal(0.0, 0.1, value.shape))
  return np.asarray(out, np.float32)


def _torch_pair(ctx: Ctx, config, seed: int, perturb: bool):
  """(PyTorch reference on the CPU, its numpy state dict, the converted Flax params)."""
  from genlv_jax.bridge import build_torch_model, torch_to_flax
  torch, np = ctx.torch, ctx.np
  torch.manual_seed(seed)
  module = build_torch_model(config)
  state = {k: v.detach().numpy() for k, v in module.state_dict().items()}
  if perturb:
    rng = np.random.default_rng(seed)
    state = {k: _perturbed(k, v, rng) for k, v in sorted(state.items())}
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
  return module, state, torch_to_flax(state, config)


def _to_nchw(torch, x, device, flip: bool):
  x = x[..., ::-1] if flip else x
  return torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(device)


def _from_nchw(y, flip: bool):
  y = y.detach().float().cpu().numpy().transpose(0, 2, 3, 1)
  return y[..., ::-1] if flip else y


@contextlib.contextmanager
def _matmul_precision(jax, name: str):
  if hasattr(jax, "default_matmul_precision"):
    with jax.default_matmul_precision(name):
      yield
    return
  before = jax.config.jax_default_matmul_precision
  jax.config.update("jax_default_matmul_precision", name)
  try:
    yield
  finally:
    jax.config.update("jax_default_matmul_precision", before)


def _errors(np, got, want) -> dict:
  diff = np.asarray(got, np.float64) - np.asarray(want, np.float64)
  mse = float(np.mean(diff**2))
  return {"max_abs": _r(float(np.max(np.abs(diff)))), "mean_abs": _r(float(np.mean(np.abs(diff)))),
          "rel_l2": _r(float(np.linalg.norm(diff) / max(np.linalg.norm(want), 1e-30))),
          "psnr_db": _r(10 * math.log10(1.0 / mse), 5) if mse > 0 else None,
          "finite": bool(np.all(np.isfinite(got)))}


def section_parity(ctx: Ctx, out: dict) -> None:
  torch = ctx.torch
  out["tolerance_cpu_f32"] = CPU_END_TO_END_TOL
  out["reference"] = ("the PyTorch reference (genlv_jax/bridge/torch_reference.py) in float32 "
                      "on the CPU, fed BGR as the authors' weights expect; weights moved off "
                      "their init values, converted by torch_to_flax")
  out["models"] = {}
  if torch is None:
    out["status"] = "skipped"
    out["why"] = "torch is not importable here"
    return
  failed = []
  for name, path, batch, size, prompt_size in ctx.plan.parity:
    row = out["models"].setdefault(name, {})
    row.update(config=path, batch=batch, size=list(size), prompt_size=list(prompt_size))
    try:
      _parity_model(ctx, row, name, path, batch, size, prompt_size)
    except Exception as e:  # noqa: BLE001 -- the next model still runs
      row.update(error=_short_error(e), traceback=traceback.format_exc(limit=-8))
      failed.append(f"{name}: {row['error']}")
      _log(f"parity {name} failed: {row['error']}")
    ctx.results.write()
  if failed:
    raise RuntimeError("; ".join(failed))


def _parity_model(ctx: Ctx, row: dict, name: str, path: str, batch: int, size, prompt_size):
  """One model's parity numbers, written into `row` as they come."""
  from genlv_jax.config_io import load_config
  from genlv_jax.models import apply_model, build_model, ops
  jax, np, torch = ctx.jax, ctx.np, ctx.torch
  start = time.perf_counter()
  config = load_config(os.path.join(REPO, path), ["dtype=float32"])
  flip = config.model.checkpoint_channel_order == "bgr"
  module, _, params = _torch_pair(ctx, config, seed=0, perturb=True)
  rng = np.random.default_rng(1)
  image = rng.uniform(size=(batch, *size, 3)).astype(np.float32)
  ps, pt = (rng.uniform(size=(batch, *prompt_size, 3)).astype(np.float32) for _ in range(2))
  with torch.no_grad():
    want = _from_nchw(module(*(_to_nchw(torch, x, "cpu", flip) for x in (image, ps, pt))), flip)
  if ctx.torch_device != "cpu":
    allow = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
      module.to(ctx.torch_device)
      with torch.no_grad():
        on_device = _from_nchw(module(*(_to_nchw(torch, x, ctx.torch_device, flip)
                                        for x in (image, ps, pt))), flip)
      row["torch_device_f32_vs_torch_cpu"] = _errors(np, on_device, want)
    finally:
      torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = allow
      module.to("cpu")
      torch.cuda.empty_cache()
  else:
    on_device = None
  _log(f"parity {name}: torch reference done")
  ctx.results.write()

  inputs = [jax.device_put(x) for x in (image, ps, pt)]
  row["implementations"] = dataclasses.asdict(ops.resolve(ops.from_config(config.ops)))
  model = build_model(config)
  device_params = jax.device_put(params)
  with _matmul_precision(jax, "highest"):
    f32 = np.asarray(jax.jit(functools.partial(apply_model, model))(device_params, *inputs))
  row["jax_f32_highest_vs_torch_cpu"] = _errors(np, f32, want)
  row["within_cpu_tolerance"] = bool(row["jax_f32_highest_vs_torch_cpu"]["max_abs"]
                                     <= CPU_END_TO_END_TOL)
  if on_device is not None:
    row["jax_f32_highest_vs_torch_device"] = _errors(np, f32, on_device)
  _log(f"parity {name}: JAX f32 (highest) done")
  ctx.results.write()
  if name in ctx.plan.parity_default_precision:
    default = np.asarray(jax.jit(functools.partial(apply_model, model))(device_params, *inputs))
    row["jax_f32_default_precision_vs_torch_cpu"] = _errors(np, default, want)
    ctx.results.write()
  bf16_config = load_config(config, ["dtype=bfloat16"])
  bf16_model = build_model(bf16_config)
  bf16 = np.asarray(jax.jit(functools.partial(apply_model, bf16_model))(device_params, *inputs))
  row["jax_bf16_vs_jax_f32"] = _errors(np, bf16, f32)
  row["jax_bf16_vs_torch_cpu"] = _errors(np, bf16, want)
  row["elapsed_s"] = round(time.perf_counter() - start, 1)
  _log(f"parity {name}: f32 max abs {row['jax_f32_highest_vs_torch_cpu']['max_abs']}, "
       f"bf16 drift {row['jax_bf16_vs_jax_f32']['max_abs']}")


# ---- convergence


def _catalogue_batches(np, steps: int, batch: int, size: int, task_names, seed: int):
  """Batches of the training pipeline's records (builtin images, the demo's tasks), made in a
  background thread a few batches ahead of the device."""
  from genlv_jax.data import image_sources, records, task_selection
  names = task_selection.select_tasks(list(task_names))
  source = image_sources.parse_source("builtin")
  for i in range(len(source)):   # decode/generate every image once, before the threads
    source.read_rgb(i)
  held = records.holdout_indices(len(source), -1)
  train = np.setdiff1d(np.arange(len(source)), held)
  make = records.MakeBatch(records.MakeRecord(
      records.Sources(records.Split(source, train), None, {}, {}), names,
      task_selection.task_probabilities(names), seed, size))
  keys = ("prompt_source", "prompt_target", "input", "target")
  ahead: "queue.Queue" = queue.Queue(maxsize=6)

  def produce():
    try:
      for s in range(steps):
        full = make(range(s * batch, (s + 1) * batch))
        ahead.put({k: full[k] for k in keys})
    except BaseException as e:  # noqa: BLE001 -- handed to the consumer
      ahead.put(e)

  threading.Thread(target=produce, daemon=True, name="batches").start()
  description = (f"builtin image source ({len(train)} training images of {len(source)}) "
                 f"through genlv_jax.data.records, tasks {', '.join(names)}")

  def batches():
    for _ in range(steps):
      item = ahead.get()
      if isinstance(item, BaseException):
        raise item
      yield item
  return description, batches()


def _structured_batches(np, steps: int, batch: int, size: int, seed: int):
  """Fallback data made here: smooth random colour fields with random rectangles, and three
  tasks (Gaussian denoising, darkening, 3x3 box deblurring) shown by a prompt pair of the same
  task and strength on another image."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size

  def images(n):
    out = np.zeros((n, size, size, 3), np.float32)
    for i in range(n):
      for c in range(3):
        f, a, p = rng.uniform(1, 6), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        out[i, :, :, c] = 0.5 + 0.3 * np.sin(2 * np.pi * f * (np.cos(a) * xx + np.sin(a) * yy) + p)
      for _ in range(3):
        y0, x0 = rng.integers(0, size - 8, 2)
        h, w = rng.integers(4, size // 2, 2)
        out[i, y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1, 3)
    return out

  def degrade(x, task, strength):
    if task == 0:
      return np.clip(x + rng.normal(0, 0.05 + 0.15 * strength, x.shape), 0, 1).astype(np.float32)
    if task == 1:
      return x * (0.7 - 0.4 * strength)
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return sum(padded[i:i + size, j:j + size] for i in range(3) for j in range(3)) / 9

  def batches():
    for _ in range(steps):
      clean_p, clean_i = images(batch), images(batch)
      out = {k: np.empty((batch, size, size, 3), np.float32)
             for k in ("prompt_source", "prompt_target", "input", "target")}
      for j in range(batch):
        task, strength = int(rng.integers(3)), float(rng.random())
        out["prompt_source"][j] = degrade(clean_p[j], task, strength)
        out["prompt_target"][j] = clean_p[j]
        out["input"][j] = degrade(clean_i[j], task, strength)
        out["target"][j] = clean_i[j]
      yield out
  return "structured images generated in the suite (3 tasks)", batches()


def section_convergence(ctx: Ctx, out: dict) -> None:
  from genlv_jax.config_io import load_config
  from genlv_jax.models import build_model, init_params
  from genlv_jax.training.train_step import create_train_state, make_optimizer, make_train_step
  jax, np, plan = ctx.jax, ctx.np, ctx.plan
  steps = ctx.args.convergence_steps or plan.convergence_steps
  batch = ctx.args.convergence_batch or plan.convergence_batch
  size, every = plan.convergence_size, plan.convergence_log_every
  overrides = [f"batch_size={batch}", f"image_size={size}", f"total_steps={steps}",
               *plan.convergence_overrides, *ctx.args.convergence_set]
  config = load_config(os.path.join(REPO, "configs/demo.py"), overrides)
  out.update(config="configs/demo.py", overrides=overrides, steps=steps, batch=batch,
             image_size=size, dtype=config.dtype, learning_rate=config.optimizer.learning_rate,
             warmup_steps=config.optimizer.warmup_steps, schedule=config.optimizer.schedule)
  spec = importlib.util.spec_from_file_location("_demo_config", os.path.join(REPO, "configs/demo.py"))
  demo = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(demo)
  try:
    out["data"], batches = _catalogue_batches(np, steps, batch, size, demo.DEMO_TASKS, config.seed)
  except Exception as e:  # noqa: BLE001 -- no cv2/scipy/skimage there: the fallback data
    out["catalogue_unavailable"] = _short_error(e)
    out["data"], batches = _structured_batches(np, steps, batch, size, config.seed)
  _log(f"convergence: data from {out['data'][:60]}")
  model, tx = build_model(config), make_optimizer(config)
  params = init_params(model, config, jax.random.key(config.seed, impl=config.prng_impl))
  _log("convergence: params initialised")
  state = create_train_state(params, tx, config.optimizer.ema_decay > 0)
  step_fn = jax.jit(make_train_step(model, tx, config), donate_argnums=(0,))
  losses, nonfinite, compile_s, data_wait = [], 0, None, 0.0
  out["loss_every"], out["log_every"] = [], every
  start = time.perf_counter()
  pending = []
  for s in range(steps):
    t = time.perf_counter()
    data = next(batches)
    data_wait += time.perf_counter() - t
    state, metrics = step_fn(state, data)
    if s == 0:
      jax.block_until_ready(metrics)
      compile_s = time.perf_counter() - start
      out["first_step_s_with_compile"] = round(compile_s, 2)
      _log(f"convergence: first step (with compile) {compile_s:.1f} s")
      train_start = time.perf_counter()
    pending.append(metrics)
    if (s + 1) % every == 0 or s + 1 == steps:
      fetched = jax.device_get(pending)
      pending = []
      window = [float(m["train/loss"]) for m in fetched]
      nonfinite += sum(int(m["train/nonfinite"]) for m in fetched)
      losses.extend(window)
      out["loss_every"].append({"step": s + 1, "loss": _r(window[-1]),
                                "window_mean": _r(float(np.mean(window)))})
      out["nonfinite_steps"] = nonfinite
      ctx.results.write()
  elapsed = time.perf_counter() - train_start
  first, last = out["loss_every"][0]["window_mean"], out["loss_every"][-1]["window_mean"]
  judged = len(out["loss_every"]) >= 2  # one window cannot show a trend
  out.update(first_window_mean=first, last_window_mean=last, final_loss=_r(losses[-1]),
             loss_ratio_last_over_first=_r(last / first, 3),
             loss_falls=bool(last < first and nonfinite == 0) if judged else None,
             steps_per_s_after_compile=_r((steps - 1) / max(elapsed, 1e-9), 3),
             images_per_s_after_compile=_r((steps - 1) * batch / max(elapsed, 1e-9), 4),
             data_wait_s=round(data_wait, 2))
  _log(f"convergence: loss {first} -> {last} over {steps} steps ({out['data'][:40]}...)")


# ---- throughput


def _flops(ctx: Ctx, config_path: str, overrides: list, batch: int, size: int,
           train: bool) -> float:
  """XLA's FLOP count of one forward (or train step) of the unrolled twin, nothing run."""
  from genlv_jax.config_io import load_config
  from genlv_jax.models import abstract_params, apply_to_batch, build_model
  from genlv_jax.training.train_step import create_train_state, make_optimizer, make_train_step
  jax, jnp = ctx.jax, ctx.jnp
  config = load_config(os.path.join(REPO, config_path), [*overrides, *FLOP_TWIN])
  model = build_model(config)
  abstract = abstract_params(model, config)
  x = jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32)
  data = {"prompt_source": x, "prompt_target": x, "input": x, "target": x}
  if train:
    tx = make_optimizer(config)
    state = jax.eval_shape(lambda p: create_train_state(p, tx, False), abstract)
    lowered = jax.jit(make_train_step(model, tx, config)).lower(state, data)
  else:
    lowered = jax.jit(lambda p, d: apply_to_batch(model, p, d)).lower(abstract, data)
  cost = lowered.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["flops"])


def _jax_memory(ctx: Ctx, compiled) -> dict:
  out = {}
  try:
    m = compiled.memory_analysis()
    out["xla_temp_gib"] = _r(m.temp_size_in_bytes / 2**30)
    out["xla_args_out_temp_gib"] = _r((m.temp_size_in_bytes + m.argument_size_in_bytes
                                       + m.output_size_in_bytes - m.alias_size_in_bytes) / 2**30)
  except Exception as e:  # noqa: BLE001 -- not every backend has it
    out["xla_memory_analysis"] = _short_error(e)
  try:
    stats = ctx.jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
      out["device_peak_gib_so_far"] = _r(stats["peak_bytes_in_use"] / 2**30)
  except Exception:  # noqa: BLE001
    pass
  return out


def _rate_fields(ctx: Ctx, flops: Optional[float], s_per_iter: float, batch: int) -> dict:
  out = {"s_per_iter": _r(s_per_iter), "images_per_s": _r(batch / s_per_iter)}
  if flops:
    achieved = flops / s_per_iter
    out["tflops"] = _r(achieved / 1e12)
    if ctx.matmul_rate:
      out["mfu_vs_measured_matmul"] = _r(achieved / ctx.matmul_rate, 3)
    if ctx.published_peak:
      out["mfu_vs_published_peak"] = _r(achieved / ctx.published_peak, 3)
  return out


def _jax_rows(ctx: Ctx, name: str, config, params, batch: int, size: int, flops: dict,
              emit: Callable[[dict], None]) -> None:
  from genlv_jax.models import apply_to_batch, build_model, ops
  from genlv_jax.training.train_step import create_train_state, make_optimizer, make_train_step
  jax, jnp = ctx.jax, ctx.jnp
  model = build_model(config)
  keys = jax.random.split(jax.random.key(7), 4)
  data = {k: jax.random.uniform(key, (batch, size, size, 3), jnp.float32)
          for k, key in zip(("prompt_source", "prompt_target", "input", "target"), keys)}
  impls = dataclasses.asdict(ops.resolve(ops.from_config(config.ops)))
  common = {"model": name, "framework": "jax", "batch": batch, "image_size": size,
            "dtype": config.dtype, "implementations": impls,
            "scan_blocks": bool(config.model.scan_blocks), "remat": bool(config.remat)}

  forward = jax.jit(lambda p, d: apply_to_batch(model, p, d))
  start = time.perf_counter()
  compiled = forward.lower(params, data).compile()
  compile_s = time.perf_counter() - start
  compiled(params, data).block_until_ready()
  timing = _time_loop(lambda: compiled(params, data), lambda r: r.block_until_ready(),
                      ctx.plan.measure_s, ctx.plan.repeats)
  emit({**common, "pass": "forward", "compile_s": round(compile_s, 1),
        **_rate_fields(ctx, flops.get("forward"), timing["s_per_iter"], batch),
        **_jax_memory(ctx, compiled), "timing": timing})
  del compiled

  tx = make_optimizer(config)
  state = {"s": create_train_state(params, tx, False)}
  step = jax.jit(make_train_step(model, tx, config), donate_argnums=(0,))
  start = time.perf_counter()
  compiled = step.lower(state["s"], data).compile()
  compile_s = time.perf_counter() - start

  def run():
    state["s"], metrics = compiled(state["s"], data)
    return metrics["train/loss"]
  for _ in range(2):
    run().block_until_ready()
  timing = _time_loop(run, lambda r: r.block_until_ready(), ctx.plan.measure_s, ctx.plan.repeats)
  emit({**common, "pass": "train_step", "compile_s": round(compile_s, 1),
        "step": "genlv_jax.training.train_step (L1, clip 1.0, AdamW, non-finite guard; "
                "state donated)",
        **_rate_fields(ctx, flops.get("train_step"), timing["s_per_iter"], batch),
        **_jax_memory(ctx, compiled), "timing": timing})
  del compiled, state


def _torch_rows(ctx: Ctx, name: str, module, batch: int, size: int, flops: dict,
                emit: Callable[[dict], None], compiled: bool) -> None:
  torch, device = ctx.torch, ctx.torch_device
  gen = torch.Generator(device=device).manual_seed(7)
  ps, pt, x, target = (torch.rand(batch, 3, size, size, device=device, generator=gen)
                       for _ in range(4))
  module = module.to(device)
  run_module = torch.compile(module) if compiled else module
  kind = "torch_compile" if compiled else "torch_eager"
  common = {"model": name, "framework": kind, "batch": batch, "image_size": size,
            "dtype": "autocast bfloat16 (params float32)", "device": device}
  cuda = device == "cuda"

  def peak() -> dict:
    return ({"device_peak_gib": _r(torch.cuda.max_memory_allocated() / 2**30)} if cuda else {})

  def forward():
    with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16):
      return run_module(x, ps, pt)

  def measure(name: str, fn, extra: dict) -> None:
    """First call (compile/warm-up) timed apart, then the timing loop; one row."""
    if cuda:
      torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    fn()
    ctx.sync_torch()
    first_s = time.perf_counter() - start
    fn()
    timing = _time_loop(fn, ctx.sync_torch, ctx.plan.measure_s, ctx.plan.repeats)
    emit({**common, "pass": name, "first_call_s": round(first_s, 1), **extra,
          **_rate_fields(ctx, flops.get(name), timing["s_per_iter"], batch), **peak(),
          "timing": timing})

  module.eval()
  measure("forward", forward, {})

  try:
    optimizer = torch.optim.AdamW(module.parameters(), lr=LR, betas=BETAS,
                                  weight_decay=WEIGHT_DECAY, fused=cuda)
  except (RuntimeError, TypeError):
    optimizer = torch.optim.AdamW(module.parameters(), lr=LR, betas=BETAS,
                                  weight_decay=WEIGHT_DECAY)

  def train():
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
      out = run_module(x, ps, pt)
    loss = torch.mean(torch.abs(out.float() - target))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(module.parameters(), CLIP)
    optimizer.step()
    return loss

  module.train()
  measure("train_step", train, {"step": "L1, clip_grad_norm_ 1.0, AdamW"
                                        + (" (fused)" if cuda else "")})
  del optimizer, run_module


def section_throughput(ctx: Ctx, out: dict) -> None:
  from genlv_jax.bridge import build_torch_model, torch_to_flax
  from genlv_jax.config_io import load_config
  jax, plan, args = ctx.jax, ctx.plan, ctx.args
  size = args.image_size or plan.image_size
  models = plan.throughput
  if args.throughput_models:
    models = tuple((n, MODEL_CONFIGS[n], int(b)) for n, b in
                   (item.split(":") for item in args.throughput_models.split(",")))
  overrides = [f"dtype={plan.throughput_dtype}", "model.scan_blocks=true", "remat=false"]
  out.update(image_size=size, overrides=overrides, per_model_overrides=dict(MODEL_EXTRA),
             command_line_overrides=list(args.throughput_set), rows=[], flops={},
             flops_method=("XLA cost analysis (lowered, not run) of the unrolled twin: " +
                           ", ".join(FLOP_TWIN) + "; the forward pass counted for each model, "
                           "the train step for the first and scaled by its train/forward ratio "
                           "for the others unless --exact-train-flops; model FLOPs (a remat "
                           "step recomputes each block's forward on top)"),
             torch_settings="eager NCHW, cudnn.benchmark on CUDA, autocast bf16, no activation "
                            "checkpointing; AdamW fused on CUDA; run before JAX's rows of the "
                            "same model (JAX keeps the memory it has grown into)",
             timing="median of repeats of back-to-back calls, one sync per repeat, after warm-up")

  def emit(row: dict) -> None:
    out["rows"].append(row)
    _log(f"throughput {row['model']} {row['framework']} {row.get('pass', '')}: "
         f"{row.get('images_per_s')} img/s, {row.get('tflops')} TFLOP/s, "
         f"MFU {row.get('mfu_vs_measured_matmul')} {row.get('error', '')}")
    ctx.results.write()

  def free_torch_memory() -> None:
    gc.collect()
    if ctx.torch is not None and ctx.torch_device == "cuda":
      ctx.torch.cuda.empty_cache()

  if ctx.torch is not None and ctx.torch_device == "cuda":
    ctx.torch.backends.cudnn.benchmark = True
  # JAX on an accelerator but torch without CUDA: its CPU rows would take the whole budget.
  torch_on_host_only = ("not run: this torch has no CUDA (JAX runs on "
                        f"{jax.default_backend()})" if jax.default_backend() != "cpu"
                        and ctx.torch_device == "cpu" else "")
  train_ratio = None
  modules = {}
  previous_s = None
  for index, (name, path, batch) in enumerate(models):
    if index > 0 and previous_s is not None and not ctx.budget.fits(
        1.3 * previous_s + args.reserve_s):
      ctx.results.skip(f"throughput {name}",
                       f"{ctx.budget.left():.0f} s of the budget left; the previous model took "
                       f"{previous_s:.0f} s")
      continue
    start = time.perf_counter()
    model_overrides = [*overrides, *MODEL_EXTRA.get(name, ()), *args.throughput_set]
    try:
      config = load_config(os.path.join(REPO, path), [f"batch_size={batch}",
                                                      f"image_size={size}", *model_overrides])
      counts = {}
      try:
        counts["forward"] = _flops(ctx, path, model_overrides, batch, size, train=False)
        if train_ratio is None or args.exact_train_flops:
          counts["train_step"] = _flops(ctx, path, model_overrides, batch, size, train=True)
          train_ratio = train_ratio or counts["train_step"] / counts["forward"]
          method = "counted"
        else:
          counts["train_step"] = counts["forward"] * train_ratio
          method = f"forward x {train_ratio:.4f} (the first model's counted ratio)"
        out["flops"][name] = {"batch": batch, "forward_tflop": _r(counts["forward"] / 1e12),
                              "train_step_tflop": _r(counts["train_step"] / 1e12),
                              "forward_gmacs_per_image": _r(counts["forward"] / 2e9 / batch),
                              "train_step_method": method}
      except Exception as e:  # noqa: BLE001 -- rates without FLOPs are still rates
        out["flops"][name] = {"error": _short_error(e)}
      _log(f"throughput {name}: FLOPs {out['flops'][name]}")
      ctx.results.write()
      if ctx.torch is not None:
        ctx.torch.manual_seed(0)
        module = build_torch_model(config)
        params = torch_to_flax({k: v.detach().numpy() for k, v in module.state_dict().items()},
                               config)
        if torch_on_host_only:
          emit({"model": name, "framework": "torch_eager", "error": torch_on_host_only})
        else:
          try:
            _torch_rows(ctx, name, module, batch, size, counts, emit, compiled=False)
          except Exception as e:  # noqa: BLE001 -- out of memory, say: a row, not the end
            emit({"model": name, "framework": "torch_eager", "error": _short_error(e),
                  "traceback": traceback.format_exc(limit=-6)})
        module.zero_grad(set_to_none=True)
        module.to("cpu")
        free_torch_memory()
        if name in plan.torch_compile_models:
          modules[name] = (module, batch, counts)
        else:
          del module
      else:
        from genlv_jax.models import build_model, init_params
        params = init_params(build_model(config), config, jax.random.key(0))
      params = jax.device_put(params)
      try:
        _jax_rows(ctx, name, config, params, batch, size, counts, emit)
      except Exception as e:  # noqa: BLE001
        emit({"model": name, "framework": "jax", "error": _short_error(e),
              "traceback": traceback.format_exc(limit=-6)})
      del params
      gc.collect()
    finally:
      previous_s = time.perf_counter() - start
      out.setdefault("model_elapsed_s", {})[name] = round(previous_s, 1)
      ctx.results.write()

  want_compile = args.torch_compile
  if want_compile == "auto":
    want_compile = "off" if args.smoke else "on"
  if ctx.torch is None or torch_on_host_only:
    return
  if want_compile == "off":
    ctx.results.skip("torch.compile", "--torch-compile off" if args.torch_compile == "off" else
                     "--smoke: inductor's C++ compile of the model takes minutes on this CPU")
    return
  for name, (module, batch, counts) in modules.items():
    if not ctx.budget.fits(args.torch_compile_need_s):
      ctx.results.skip(f"torch.compile {name}",
                       f"{ctx.budget.left():.0f} s of the budget left, it needs about "
                       f"{args.torch_compile_need_s:.0f} s (--torch-compile-need-s)")
      continue
    try:
      _torch_rows(ctx, name, module, batch, size, counts, emit, compiled=True)
    except Exception as e:  # noqa: BLE001
      emit({"model": name, "framework": "torch_compile", "error": _short_error(e),
            "traceback": traceback.format_exc(limit=-6)})
    module.zero_grad(set_to_none=True)
    module.to("cpu")
    free_torch_memory()


# ----------------------------------------------------------------------------- report


def _cell(v) -> str:
  if v is None:
    return "–"
  if isinstance(v, float):
    return f"{v:.4g}"
  return str(v)


def render_markdown(data: dict) -> str:
  """results.md: the results as tables (the JSON holds every number)."""
  s = data.get("sections", {})
  lines = [f"# GenLV accelerator suite ({data.get('mode')})", "",
           f"Started {data.get('started_utc')}, updated {data.get('updated_utc')}; "
           f"elapsed {data.get('elapsed_s', '–')} s of a {data.get('budget_s')} s budget; "
           f"complete: {data.get('complete')}."]
  if data.get("watchdog"):
    lines += ["", f"**Watchdog:** {data['watchdog']}"]
  dev = s.get("device", {})
  if dev:
    mm = dev.get("matmul_bf16", {})
    lines += ["", "## Device", "",
              f"- {dev.get('device_kind')} ({dev.get('jax_backend')}, {dev.get('device_count')} "
              f"device(s)); torch on {dev.get('torch_device')}",
              f"- versions: {json.dumps(dev.get('versions', {}))}",
              f"- bf16 matmul {mm.get('n')}²: **{mm.get('tflops')} TFLOP/s** measured (JAX), "
              f"torch {dev.get('torch_matmul_bf16_tflops')}; published peak "
              f"{dev.get('published_bf16_peak_tflops', '–')} TFLOP/s",
              f"- nvidia-smi: {str(dev.get('nvidia_smi', '–'))!r}"]
  par = s.get("parity", {})
  if par.get("models"):
    lines += ["", "## Parity (max abs error; outputs in [0, 1])", "",
              "| model | size | JAX f32 highest vs torch CPU | rel L2 | vs torch on device | "
              "JAX f32 default precision vs torch CPU | torch device vs CPU | bf16 vs own f32 "
              "(max abs / PSNR dB) | within 1e-4 |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, row in par["models"].items():
      g = lambda k, f="max_abs": row.get(k, {}).get(f)  # noqa: E731
      lines.append(
          f"| {name} | {'x'.join(map(str, row.get('size', [])))} | "
          f"{_cell(g('jax_f32_highest_vs_torch_cpu'))} | "
          f"{_cell(g('jax_f32_highest_vs_torch_cpu', 'rel_l2'))} | "
          f"{_cell(g('jax_f32_highest_vs_torch_device'))} | "
          f"{_cell(g('jax_f32_default_precision_vs_torch_cpu'))} | "
          f"{_cell(g('torch_device_f32_vs_torch_cpu'))} | "
          f"{_cell(g('jax_bf16_vs_jax_f32'))} / {_cell(g('jax_bf16_vs_jax_f32', 'psnr_db'))} | "
          f"{_cell(row.get('within_cpu_tolerance'))} |")
  thr = s.get("throughput", {})
  if thr.get("rows"):
    lines += ["", f"## Throughput ({thr.get('image_size')}², JAX {thr.get('overrides')}, "
              "PyTorch under autocast bf16)", "",
              "| model | batch | framework | pass | s/iter | images/s | TFLOP/s | MFU (measured "
              "matmul) | MFU (published peak) | memory GiB | compile / first call s |",
              "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in thr["rows"]:
      if "error" in row:
        lines.append(f"| {row['model']} | | {row['framework']} | error | {row['error']} "
                     "| | | | | | |")
        continue
      mem = row.get("device_peak_gib", row.get("xla_args_out_temp_gib"))
      framework = row["framework"] + (" (remat)" if row.get("remat") else "")
      lines.append(
          f"| {row['model']} | {row['batch']} | {framework} | {row['pass']} | "
          f"{_cell(row.get('s_per_iter'))} | {_cell(row.get('images_per_s'))} | "
          f"{_cell(row.get('tflops'))} | {_cell(row.get('mfu_vs_measured_matmul'))} | "
          f"{_cell(row.get('mfu_vs_published_peak'))} | {_cell(mem)} | "
          f"{_cell(row.get('compile_s', row.get('first_call_s')))} |")
    lines += ["", f"FLOPs: {thr.get('flops_method')}.", "",
              "Memory: JAX rows give XLA's memory analysis of the program (arguments + output "
              "+ temporaries); `device_peak_gib_so_far` in the JSON is the process's peak. "
              "PyTorch rows give torch.cuda.max_memory_allocated."]
  conv = s.get("convergence", {})
  if conv.get("loss_every"):
    lines += ["", "## Convergence", "",
              f"{conv.get('config')} {conv.get('overrides')}, data: {conv.get('data')}.", "",
              f"Loss (mean of each {conv.get('log_every')}-step window): " +
              ", ".join(f"{e['step']}: {e['window_mean']}" for e in conv["loss_every"]), "",
              f"Falls: **{conv.get('loss_falls')}** ({conv.get('first_window_mean')} -> "
              f"{conv.get('last_window_mean')}); {conv.get('steps_per_s_after_compile')} "
              f"steps/s after compile."]
  errors = [(k, v["error"]) for k, v in s.items() if v.get("error")]
  if errors or data.get("skipped"):
    lines += ["", "## Errors and skipped parts", ""]
    lines += [f"- {k}: error {e}" for k, e in errors]
    lines += [f"- {x['what']}: skipped, {x['why']}" for x in data.get("skipped", [])]
  return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def parse_args(argv) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.environ.get("OUT") or "accelerator_out")
  parser.add_argument("--smoke", action="store_true",
                      help="tiny sizes on the CPU (the same code paths; `make test` runs it)")
  parser.add_argument("--budget-s", type=float, default=420.0)
  parser.add_argument("--hard-limit-s", type=float, default=0.0,
                      help="the watchdog's limit (default: budget + 45 s)")
  parser.add_argument("--sections", default=",".join(SECTIONS),
                      help=f"comma-separated, of {', '.join(SECTIONS)} (device always runs: "
                           "its matmul rate is the MFU denominator)")
  parser.add_argument("--throughput-models", default="",
                      help="e.g. base:8,large:4,huge:2 (name:batch; names tiny base large huge "
                           "giant)")
  parser.add_argument("--throughput-set", action="append", default=[], metavar="FIELD=VALUE",
                      help="config override for the throughput models (after dtype=bfloat16 "
                           "(float32 with --smoke) model.scan_blocks=true remat=false)")
  parser.add_argument("--image-size", type=int, default=0, help="throughput image size")
  parser.add_argument("--exact-train-flops", action="store_true",
                      help="count every model's train step (slow to trace for large/huge)")
  parser.add_argument("--torch-compile", choices=("auto", "on", "off"), default="auto",
                      help="auto: on, except with --smoke")
  parser.add_argument("--torch-compile-need-s", type=float, default=150.0,
                      help="budget a torch.compile row set needs before it is tried")
  parser.add_argument("--reserve-s", type=float, default=10.0,
                      help="kept free when deciding whether the next throughput model fits")
  parser.add_argument("--convergence-steps", type=int, default=0)
  parser.add_argument("--convergence-batch", type=int, default=0)
  parser.add_argument("--convergence-set", action="append", default=[], metavar="FIELD=VALUE")
  parser.add_argument("--matmul-n", type=int, default=0)
  parser.add_argument("--allow-cpu", action="store_true",
                      help="run the full plan even where JAX finds no accelerator")
  args = parser.parse_args(argv)
  unknown = set(args.sections.split(",")) - set(SECTIONS)
  if unknown:
    parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
  return args


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  plan = SMOKE if args.smoke else FULL
  if args.smoke:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
  # Two frameworks share the GPU: JAX allocates as it goes instead of taking 75% up front.
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  budget = Budget(args.budget_s)
  results = Results(args.out, {
      "suite": "benchmarks/accelerator_suite.py", "mode": "smoke" if args.smoke else "full",
      "argv": list(sys.argv[1:] if argv is None else argv), "started_utc": _now(),
      "budget_s": args.budget_s, "plan": dataclasses.asdict(plan)})
  _start_watchdog(results, args.hard_limit_s or args.budget_s + 45)
  _log(f"accelerator suite ({results.data['mode']}), results in {os.path.abspath(args.out)}")

  import jax  # noqa: E402 -- after the environment above
  import jax.numpy as jnp  # noqa: E402
  import numpy as np  # noqa: E402
  try:
    jax.devices()  # initialise the backend before torch loads its CUDA libraries
  except Exception as e:  # noqa: BLE001 -- say so in the results, not only in a traceback
    results.data.update(jax_init_error=_short_error(e), traceback=traceback.format_exc())
    results.write()
    raise
  try:
    import torch  # noqa: E402
    torch_device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    if args.smoke:
      torch.set_num_threads(1)  # a shared 2-core test machine: see tests/bridge_testutil.py
  except Exception as e:  # noqa: BLE001 -- ImportError, or CUDA libraries that do not load
    torch, torch_device = None, "none"
    results.data["torch_unavailable"] = _short_error(e)
  ctx = Ctx(args, plan, results, budget, jax, jnp, np, torch, torch_device)

  wanted = ["device"] + [s for s in args.sections.split(",") if s != "device"]
  wanted = [s for s in SECTIONS if s in wanted]
  functions = {"device": section_device, "parity": section_parity,
               "convergence": section_convergence, "throughput": section_throughput}
  failed = False
  for name in wanted:
    out = results.section(name)
    if name != "device" and jax.default_backend() == "cpu" and not (args.smoke or args.allow_cpu):
      out.update(status="skipped", why="JAX found no accelerator (backend cpu): the full plan "
                 "needs one; use --smoke on a CPU, or --allow-cpu")
      results.skip(name, out["why"])
      continue
    start = time.perf_counter()
    _log(f"section {name}")
    try:
      functions[name](ctx, out)
      if out.get("status") == "running":
        out["status"] = "ok"
    except Exception as e:  # noqa: BLE001 -- a failed section is a result; the rest still run
      failed = True
      out.update(status="error", error=_short_error(e),
                 traceback=traceback.format_exc(limit=-12))
      _log(f"section {name} failed: {out['error']}")
    out["elapsed_s"] = round(time.perf_counter() - start, 1)
    results.data["elapsed_s"] = round(budget.elapsed(), 1)
    results.write()
  results.data.update(complete=True, finished_utc=_now(), elapsed_s=round(budget.elapsed(), 1))
  results.write()
  print(render_markdown(results.data), flush=True)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
