"""Training throughput on this machine: steps/s, images/s per device, compile time (unrolled vs
`nn.scan`), and XLA's peak temporary memory with and without remat.

    python benchmarks/train_throughput.py --configs base,large,huge --image-size 64 --batch 1 --json
    # the launch README's memory figure: Huge at 256², bf16, scan+remat, the TPU/GPU ops
    python benchmarks/train_throughput.py --configs huge --image-size 256 --batch 1 --no-run \
        --variants scan_remat --set dtype=bfloat16 --set ops.depthwise=grouped \
        --set ops.windows=patches --set ops.conv=xla --set ops.layer_norm=xla \
        --set ops.attention=xla --json

Prints one JSON object per (config, scan, remat) variant. Memory comes from the compiled
program's memory analysis (temp + argument + output bytes), so it needs no profiler.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from genlv_jax import host_tuning  # noqa: E402

# The trainer's CPU process settings (see genlv_jax/host_tuning.py), unless --no-host-tuning.
if __name__ == "__main__" and "--no-host-tuning" not in sys.argv:
  host_tuning.reexec_tuned_for_cpu()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from genlv_jax import api  # noqa: E402
from genlv_jax.config_io import load_config  # noqa: E402
from genlv_jax.models import build_model  # noqa: E402
from genlv_jax.training.train_step import (  # noqa: E402
    create_train_state, make_optimizer, make_train_step)


VARIANTS = {"unrolled": (False, False), "scan": (True, False), "scan_remat": (True, True)}


def measure(config_name: str, image_size: int, batch: int, scan: bool, remat: bool,
            steps: int, run: bool, overrides: tuple = ()) -> dict:
  config = load_config(f"configs/{config_name}.py", [
      f"model.scan_blocks={scan}", f"remat={remat}", "dtype=float32", f"batch_size={batch}",
      f"image_size={image_size}", *overrides])
  model, tx = build_model(config), make_optimizer(config)
  rng = jax.random.key(0, impl="rbg")
  abstract = jax.eval_shape(lambda p: create_train_state(p, tx, False),
                            api.abstract_params(model, config))
  step_fn = jax.jit(make_train_step(model, tx, config), donate_argnums=(0,))
  x = jax.ShapeDtypeStruct((batch, image_size, image_size, 3), jnp.float32)
  batch_spec = {"prompt_source": x, "prompt_target": x, "input": x, "target": x}
  start = time.perf_counter()
  compiled = step_fn.lower(abstract, batch_spec).compile()
  compile_s = time.perf_counter() - start
  memory = compiled.memory_analysis()
  result = {
      "config": config_name, "overrides": list(overrides), "image_size": image_size,
      "batch": batch, "scan": scan, "remat": remat, "compile_s": round(compile_s, 1),
      "peak_temp_gib": round(memory.temp_size_in_bytes / 2 ** 30, 3) if memory else None,
      # What XLA's cost model sees: without the work inside FFI calls (the compiled CPU kernels)
      # and with a scanned body counted once, hence unrolled only.
      "xla_visible_gflop_per_step": round(float(compiled.cost_analysis()["flops"]) / 1e9, 1)
      if not scan else None,
  }
  if run:
    state = create_train_state(api.init_params(model, config, rng), tx, False)
    data = {k: jnp.asarray(np.random.default_rng(0).random(x.shape, np.float32)) for k in batch_spec}
    state, metrics = compiled(state, data)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
      start = time.perf_counter()
      state, metrics = compiled(state, data)
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - start)
    step_s = float(np.median(times))
    result.update(step_s=round(step_s, 3), steps_per_s=round(1 / step_s, 3),
                  images_per_s_per_device=round(batch / step_s / jax.device_count(), 2))
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--configs", default="base,large,huge")
  parser.add_argument("--image-size", type=int, default=64)
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--no-run", action="store_true", help="compile only (memory, compile time)")
  parser.add_argument("--variants", default=",".join(VARIANTS),
                      help=f"comma-separated, of {', '.join(VARIANTS)}")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="config override applied after the variant's (repeatable)")
  parser.add_argument("--json", action="store_true")
  parser.add_argument("--no-host-tuning", action="store_true",
                      help="run without genlv_jax.host_tuning's CPU process settings")
  args = parser.parse_args()
  for name in args.configs.split(","):
    for variant in args.variants.split(","):
      scan, remat = VARIANTS[variant]
      result = measure(name, args.image_size, args.batch, scan, remat, args.steps,
                       run=not args.no_run and not (scan and not remat),
                       overrides=tuple(args.set))
      print(json.dumps(result) if args.json else result, flush=True)


if __name__ == "__main__":
  main()
