"""Side-by-side speed of the JAX model and the PyTorch reference: forward and one training step.

    python benchmarks/model_speed.py --config configs/base.py --image-size 128 --batch 1 --json

One process, same weights on both sides (initialised in PyTorch, converted with the bridge):
  - JAX: `jax.jit`, compile time measured apart (lower + compile), then the median of
    `--repeats` warm runs; the train step is L1 + optax.adamw with params/state donated.
  - PyTorch eager: forward under `torch.no_grad`, train step L1 + torch.optim.AdamW.
  - torch.compile (inductor) when it works here; otherwise the reason is reported.
Forward runs are interleaved (JAX, then PyTorch, per repeat) so that the noise of a shared machine
hits both alike; the train steps run one framework after the other, because both at once may not
fit in host memory (XLA's temp buffers and peak RSS are reported). The load average before and
after is part of the output. Results go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import functools
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from typing import Callable, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _threads_from_argv() -> int:
  pre = argparse.ArgumentParser(add_help=False)
  pre.add_argument("--threads", type=int, default=0)
  return pre.parse_known_args()[0].threads


# The CPU process settings of the trainer (genlv_jax/host_tuning.py), unless --no-host-tuning:
# the same process runs both frameworks, so both get them.
if "--no-host-tuning" not in sys.argv:
  from genlv_jax import host_tuning  # noqa: E402
  host_tuning.reexec_tuned_for_cpu()

# XLA reads its thread settings when jax is imported: apply --threads before that.
if _threads_from_argv() == 1:
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                             " intra_op_parallelism_threads=1").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402

from genlv_jax.bridge import build_torch_model, torch_to_flax  # noqa: E402
from genlv_jax.config_io import load_config  # noqa: E402
from genlv_jax.models import apply_model, build_model  # noqa: E402
from genlv_jax.models import ops  # noqa: E402

# The paper's recipe (§IV-A): AdamW beta (0.9, 0.99), lr 1e-4; weight decay as configs' default.
LR, BETAS, WEIGHT_DECAY = 1e-4, (0.9, 0.99), 1e-4


def _timed(fn: Callable[[], object]) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def _peak_rss_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kilobytes


def _release_host_memory() -> None:
  """Returns freed heap to the OS so the next phase starts from a low resident size."""
  gc.collect()
  try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
  except OSError:  # not glibc: nothing to do
    pass


def _median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list]:
  fn()  # warm-up: first-call allocations, oneDNN primitive creation
  times = [_timed(fn) for _ in range(repeats)]
  return statistics.median(times), times


def _timed_train_steps(fn: Callable[[], object], repeats: int) -> tuple[float, list, int]:
  """`_median_time`, plus the minor page faults per step (memory the allocator maps afresh):
  those of the warm-up call and the timed ones, divided by `repeats` (as in BENCHMARKS.md)."""
  faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  median, times = _median_time(fn, repeats)
  faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
  return median, times, round(faults / repeats)


def _jax_forward(model, params, inputs):
  """The compiled JAX forward, its compile time and XLA's temp-buffer size."""
  forward = jax.jit(functools.partial(apply_model, model))
  start = time.perf_counter()
  compiled = forward.lower(params, *inputs).compile()
  compile_s = time.perf_counter() - start
  temp = compiled.memory_analysis().temp_size_in_bytes

  def run():
    compiled(params, *inputs).block_until_ready()
  return run, compile_s, temp


def _jax_train_step(model, params, inputs, target):
  """The compiled JAX train step (L1 + AdamW, params and state donated), compile time, temp."""
  optimizer = optax.adamw(LR, b1=BETAS[0], b2=BETAS[1], weight_decay=WEIGHT_DECAY)

  def train_step(p, opt_state, target, *a):
    def loss_fn(p):
      out = apply_model(model, p, *a)
      return jnp.mean(jnp.abs(out.astype(jnp.float32) - target))
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, opt_state = optimizer.update(grads, opt_state, p)
    return optax.apply_updates(p, updates), opt_state, loss

  state = {"params": jax.tree.map(jnp.array, params)}
  state["opt"] = optimizer.init(state["params"])
  start = time.perf_counter()
  compiled = jax.jit(train_step, donate_argnums=(0, 1)).lower(
      state["params"], state["opt"], target, *inputs).compile()
  compile_s = time.perf_counter() - start
  temp = compiled.memory_analysis().temp_size_in_bytes

  def run():
    state["params"], state["opt"], loss = compiled(state["params"], state["opt"], target, *inputs)
    loss.block_until_ready()
  return run, compile_s, temp


def _torch_functions(module, inputs, target):
  """PyTorch forward and train step closures for `module` (eager or compiled)."""
  optimizer = torch.optim.AdamW(module.parameters(), lr=LR, betas=BETAS,
                                weight_decay=WEIGHT_DECAY)

  def run_forward():
    module.eval()
    with torch.no_grad():
      module(*inputs)

  def run_train():
    module.train()
    optimizer.zero_grad(set_to_none=True)
    loss = torch.mean(torch.abs(module(*inputs) - target))
    loss.backward()
    optimizer.step()

  return run_forward, run_train


def benchmark(config_path: str, image_size: int, batch: int, repeats: int,
              torch_compile: bool = True, train: bool = True, overrides: Sequence[str] = ()
              ) -> dict:
  """Runs every measurement once and returns the result as a JSON-able dict (seconds, GB)."""
  config = load_config(config_path, overrides)
  torch.manual_seed(config.seed)
  torch_model = build_torch_model(config)
  params = torch_to_flax({k: v.numpy() for k, v in torch_model.state_dict().items()}, config)
  model = build_model(config)

  rng = np.random.default_rng(0)
  shape = (batch, image_size, image_size, 3)
  n_inputs = 3 if config.model.use_prompt else 1
  inputs = [rng.uniform(size=shape).astype(np.float32) for _ in range(n_inputs)]
  out_size = image_size * config.model.scale
  target = rng.uniform(size=(batch, out_size, out_size, 3)).astype(np.float32)
  t_inputs = [torch.from_numpy(x.transpose(0, 3, 1, 2).copy()) for x in inputs]
  t_target = torch.from_numpy(target.transpose(0, 3, 1, 2).copy())
  j_inputs, j_target = [jnp.asarray(x) for x in inputs], jnp.asarray(target)

  result = {
      "config": config_path, "overrides": list(overrides), "image_size": image_size, "batch": batch, "repeats": repeats,
      "date": time.strftime("%Y-%m-%d"),
      "implementations": dataclasses.asdict(ops.resolve(ops.from_config(config.ops))),
      "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                  "jax": jax.__version__, "jax_backend": jax.default_backend(),
                  "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                  "xla_flags": os.environ.get("XLA_FLAGS", ""),
                  "glibc_tunables": os.environ.get("GLIBC_TUNABLES", "")},
      "load_average_before": os.getloadavg()[0], "jax": {}, "torch_eager": {}, "times_s": {}}
  jax_r, torch_r = result["jax"], result["torch_eager"]

  # Forward: JAX and PyTorch interleaved per repeat, so machine noise hits both alike.
  jax_fwd, jax_r["compile_forward_s"], temp = _jax_forward(model, params, j_inputs)
  jax_r["forward_temp_gb"] = temp / 1e9
  torch_fwd, torch_train = _torch_functions(torch_model, t_inputs, t_target)
  jax_fwd(), torch_fwd()
  fwd_times = {"jax_forward": [], "torch_forward": []}
  for _ in range(repeats):
    fwd_times["jax_forward"].append(_timed(jax_fwd))
    fwd_times["torch_forward"].append(_timed(torch_fwd))
  jax_r["forward_s"] = statistics.median(fwd_times["jax_forward"])
  torch_r["forward_s"] = statistics.median(fwd_times["torch_forward"])
  result["times_s"].update(fwd_times)

  if train:
    # Train steps one framework after the other: together they may not fit in host memory.
    torch_r["train_step_s"], result["times_s"]["torch_train"], torch_r[
        "page_faults_per_train_step"] = _timed_train_steps(torch_train, repeats)
    torch_r["peak_rss_gb"] = _peak_rss_gb()
    _release_host_memory()
    jax_train, jax_r["compile_train_step_s"], temp = _jax_train_step(
        model, params, j_inputs, j_target)
    jax_r["train_step_temp_gb"] = temp / 1e9
    jax_r["train_step_s"], result["times_s"]["jax_train"], jax_r[
        "page_faults_per_train_step"] = _timed_train_steps(jax_train, repeats)
    jax_r["peak_rss_gb"] = _peak_rss_gb()
    del jax_train
    _release_host_memory()

  result["speedup_vs_torch_eager"] = {
      k: torch_r[f"{k}_s"] / jax_r[f"{k}_s"] for k in ("forward", "train_step") if f"{k}_s" in jax_r}
  result["torch_compile"] = (_torch_compile(torch_model, t_inputs, t_target, repeats, train)
                             if torch_compile else {"skipped": "--no-torch-compile"})
  result["load_average_after"] = os.getloadavg()[0]
  return result


def _torch_compile(torch_model, t_inputs, t_target, repeats: int, train: bool) -> dict:
  """torch.compile'd (inductor) forward and train step, or the reason it does not work here."""
  try:
    compiled = torch.compile(torch_model)
    fwd, train_fn = _torch_functions(compiled, t_inputs, t_target)
    out = {"compile_forward_s": _timed(fwd)}
    out["forward_s"], _ = _median_time(fwd, repeats)
    if train:
      out["compile_train_step_s"] = _timed(train_fn)
      out["train_step_s"], _ = _median_time(train_fn, repeats)
    return out
  except Exception as e:  # noqa: BLE001 -- any failure is a result to report, not a crash
    lines = [line for line in str(e).splitlines() if line.strip()]
    return {"error": f"{type(e).__name__}: {lines[0][:300] if lines else ''}"}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--image-size", type=int, default=128)
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--json", action="store_true", help="print only the JSON object")
  parser.add_argument("--no-torch-compile", action="store_true")
  parser.add_argument("--no-train", action="store_true", help="forward pass only")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="config override, e.g. --set remat=true --set model.scan_blocks=true")
  parser.add_argument("--no-host-tuning", action="store_true",
                      help="run without genlv_jax.host_tuning's CPU process settings")
  parser.add_argument("--threads", type=int, default=0,
                      help="0: each framework's default (all cores); 1: one thread for both "
                           "(a comparison that other processes on a shared machine disturb less)")
  args = parser.parse_args()
  if args.threads:
    torch.set_num_threads(args.threads)
  result = benchmark(args.config, args.image_size, args.batch, args.repeats,
                     not args.no_torch_compile, not args.no_train, args.set)
  if args.json:
    print(json.dumps(result, indent=1))
    return
  j, t = result["jax"], result["torch_eager"]
  print(f"{args.config} {' '.join(args.set)} {args.batch}x{args.image_size}^2 on {result['machine']}")
  for k in ("forward", "train_step"):
    if f"{k}_s" in j:
      print(f"{k:11s} jax {j[f'{k}_s']:.3f}s  torch eager {t[f'{k}_s']:.3f}s  "
            f"x{result['speedup_vs_torch_eager'][k]:.2f}  (jax compile {j[f'compile_{k}_s']:.1f}s)")
  print(f"torch.compile: {result['torch_compile']}")


if __name__ == "__main__":
  main()
