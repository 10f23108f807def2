"""Communication of the sharded train step, by simulation: collectives counted in the compiled
HLO on simulated CPU devices, set beside the step's compute on real accelerators.

    python benchmarks/sharding_comms.py --config configs/huge.py --devices 16 \
        --mesh data=4,fsdp=4 [--image-size 64] [--batch-per-device 1] [--json]

The train step of the config (its dtype, remat and sharding rules; levels unrolled so that
every block's collectives appear in the program, and the XLA formulations of `config.ops` that
"auto" picks on a TPU pod, which GSPMD partitions — the CPU kernels are opaque calls it cannot)
is compiled
for `--devices` simulated CPU devices on the given mesh. Every all-gather, reduce-scatter,
all-reduce, all-to-all and collective-permute of the compiled program is counted with the bytes
one device sends for it under the ring algorithm (all-gather: output × (n−1)/n; reduce-scatter:
input × (n−1)/n; all-reduce: 2 × size × (n−1)/n; all-to-all: size × (n−1)/n; permute: size,
for a group of n devices). Parameter and gradient collectives do not depend on the image size,
so a small `--image-size` keeps the compile cheap; activation collectives (none with the default
rules, which shard the batch only) would.

Compute is the step's FLOPs at the training resolution (`config.image_size`, XLA's cost analysis
of the costing twin, `genlv_jax.training.perf`) for the same per-device batch, at an assumed
MFU (`--mfu`, default 0.4) of each chip's published peak. Interconnect bandwidths (one
direction, per chip): TPU v4 ICI 2,400 Gbit/s = 300 GB/s and v5p ICI 4,800 Gbit/s = 600 GB/s
(cloud.google.com/tpu/docs/v4, /v5p: "Interchip Interconnect BW"); H100 NVLink 4 within a node
450 GB/s per direction of 900 GB/s (NVIDIA H100 datasheet), and between nodes one 400 Gbit/s
InfiniBand NDR link per GPU = 50 GB/s (DGX H100). The predicted communication share is
comm / (comm + compute) with no overlap of the two: an upper bound, as XLA overlaps FSDP's
all-gathers with compute on TPU and GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Per-chip peak (TFLOP/s, bf16 dense) and interconnect bandwidth (GB/s, one direction) of the
# systems the prediction is made for; sources in the module docstring and training/perf.py.
SYSTEMS = {
    "TPU v4 (ICI)": (275.0, 300.0),
    "TPU v5p (ICI)": (459.0, 600.0),
    "H100 (NVLink, one node)": (989.0, 450.0),
    "H100 (InfiniBand, across nodes)": (989.0, 50.0),
}
COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_BYTES = {"f64": 8, "s64": 8, "u64": 8, "f32": 4, "s32": 4, "u32": 4, "bf16": 2, "f16": 2,
          "s16": 2, "u16": 2, "s8": 1, "u8": 1, "pred": 1, "s4": 0.5, "u4": 0.5}
_SHAPE = re.compile(r"\b(f64|s64|u64|f32|s32|u32|bf16|f16|s16|u16|s8|u8|pred|s4|u4)\[([0-9,]*)\]")
_OP = re.compile(r"=\s*(.*?)\s(" + "|".join(COLLECTIVES) + r")(-start)?\(")


def shape_bytes(text: str) -> float:
  """Bytes of every array shape in an HLO type (a tuple sums its elements)."""
  return sum(_BYTES[dtype] * math.prod(int(d) for d in dims.split(",") if d)
             for dtype, dims in _SHAPE.findall(text))


def group_size(line: str, num_devices: int) -> int:
  """Devices per group of a collective, from its replica_groups (explicit or iota form)."""
  explicit = re.search(r"replica_groups=\{\{([0-9,]*)\}", line)
  if explicit:
    return len(explicit.group(1).split(","))
  iota = re.search(r"replica_groups=\[(\d+),(\d+)\]", line)
  if iota:
    return int(iota.group(2))
  pairs = re.search(r"source_target_pairs=\{(.*?)\}\}", line)
  if pairs:
    return 2
  return num_devices  # replica_groups={} : every device


def count_collectives(hlo: str, num_devices: int) -> dict:
  """{kind: {"count", "bytes_per_device"}} for the collectives of a compiled HLO module."""
  out = {kind: {"count": 0, "bytes_per_device": 0.0} for kind in COLLECTIVES}
  for line in hlo.splitlines():
    match = _OP.search(line)
    if not match or "-done" in line.split("=")[0]:
      continue
    result_type, kind = match.group(1), match.group(2)
    n = group_size(line, num_devices)
    if n <= 1:
      continue
    operands = line[match.end():]
    size_out, size_in = shape_bytes(result_type), shape_bytes(operands.split(")")[0])
    if match.group(3):  # async start: the result tuple holds operands and outputs
      size_out = max(size_out - size_in, size_in)
    moved = {"all-gather": size_out * (n - 1) / n, "reduce-scatter": size_in * (n - 1) / n,
             "all-reduce": 2 * size_out * (n - 1) / n, "all-to-all": size_out * (n - 1) / n,
             "collective-permute": size_out}[kind]
    out[kind]["count"] += 1
    out[kind]["bytes_per_device"] += moved
  return out


def parse_mesh(text: str) -> dict[str, int]:
  """`data=4,fsdp=4` -> {"data": 4, "fsdp": 4}."""
  mesh = {}
  for item in text.split(","):
    key, _, value = item.partition("=")
    if key.strip() not in ("data", "fsdp", "dcn_data", "dcn_fsdp") or not value.strip():
      raise SystemExit(f"error: --mesh entries are data=N, fsdp=N: got {item!r}")
    mesh[key.strip()] = int(value)
  return mesh


def measure(config_path: str, mesh: dict[str, int], devices: int, image_size: int,
            batch_per_device: int, mfu: float, overrides: Sequence[str] = ()) -> dict:
  """Compiles the sharded step and returns its collectives and the predicted shares."""
  import jax  # pylint: disable=import-outside-toplevel  (after XLA_FLAGS is set)
  from genlv_jax.config_io import load_config  # pylint: disable=import-outside-toplevel
  from genlv_jax.models import abstract_params, build_model  # pylint: disable=import-outside-toplevel
  from genlv_jax.training import perf, sharding  # pylint: disable=import-outside-toplevel
  from genlv_jax.training.train_step import (  # pylint: disable=import-outside-toplevel
      create_train_state, make_optimizer, make_train_step)

  # TPU's formulations (`ops.windows` resolves to reshape on several devices, as on a pod).
  portable = ["ops.depthwise=grouped", "ops.conv=xla", "ops.layer_norm=xla",
              "ops.attention=xla", "model.scan_blocks=false"]
  config = load_config(config_path, [*portable, *overrides,
                                     *(f"mesh.{k}={v}" for k, v in mesh.items())])
  if "fsdp" not in mesh:
    config.mesh.fsdp = 1
  if "data" not in mesh:
    config.mesh.data = -1
  config.batch_size = batch_per_device * devices
  jax_mesh = sharding.create_mesh(config.mesh)
  rules = tuple(tuple(r) for r in config.sharding_rules)
  model, tx = build_model(config), make_optimizer(config)
  use_ema = float(config.optimizer.ema_decay) > 0
  abstract = jax.eval_shape(lambda p: create_train_state(p, tx, use_ema),
                            abstract_params(model, config))
  state_shardings = sharding.tree_shardings(abstract, jax_mesh, rules, config.sharding_min_size)
  batch_sharding = sharding.batch_sharding(jax_mesh, rules)
  image = jax.ShapeDtypeStruct((config.batch_size, image_size, image_size, 3), jax.numpy.float32,
                               sharding=batch_sharding)
  batch = {k: image for k in ("input", "target", "prompt_source", "prompt_target")}
  state = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                       abstract, state_shardings)
  step = jax.jit(make_train_step(model, tx, config),
                 in_shardings=(state_shardings, batch_sharding),
                 out_shardings=(state_shardings, None), donate_argnums=(0,))
  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  collectives = count_collectives(compiled.as_text(), devices)
  comm_bytes = sum(c["bytes_per_device"] for c in collectives.values())
  # Compute at the training resolution, per device (the global batch is split evenly).
  flops = perf.train_step_flops(config, batch_per_device, int(load_config(config_path).image_size))
  params = sum(math.prod(x.shape) for x in jax.tree.leaves(abstract.params))
  predictions = {}
  for system, (peak, bandwidth) in SYSTEMS.items():
    compute_s = flops / (peak * 1e12 * mfu)
    comm_s = comm_bytes / (bandwidth * 1e9)
    predictions[system] = {"compute_ms": round(compute_s * 1e3, 3),
                           "comm_ms": round(comm_s * 1e3, 3),
                           "comm_share": round(comm_s / (comm_s + compute_s), 4)}
  return {"config": config_path, "devices": devices, "mesh": dict(jax_mesh.shape),
          "params": params, "dtype": str(config.dtype), "remat": bool(config.remat),
          "image_size_compiled": image_size, "batch_per_device": batch_per_device,
          "compile_s": round(compile_s, 1),
          "collectives": {k: {"count": v["count"], "mb_per_device": round(v["bytes_per_device"]
                                                                          / 1e6, 3)}
                          for k, v in collectives.items()},
          "comm_mb_per_device": round(comm_bytes / 1e6, 3),
          "train_step_gflops_per_device": round(flops / 1e9, 2), "mfu_assumed": mfu,
          "predicted": predictions}


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--devices", type=int, default=16)
  parser.add_argument("--mesh", default="data=4,fsdp=4", help="data=N,fsdp=N")
  parser.add_argument("--image-size", type=int, default=64, help="spatial size compiled")
  parser.add_argument("--batch-per-device", type=int, default=1)
  parser.add_argument("--mfu", type=float, default=0.4, help="assumed MFU of the compute")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  parser.add_argument("--json", action="store_true")
  args = parser.parse_args(argv)
  # The simulated devices exist only if XLA reads this before jax is imported.
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             f" --xla_force_host_platform_device_count={args.devices}").strip()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  result = measure(args.config, parse_mesh(args.mesh), args.devices, args.image_size,
                   args.batch_per_device, args.mfu, args.set)
  if args.json:
    print(json.dumps(result))
    return 0
  print(f"{result['config']} on {result['devices']} devices, mesh {result['mesh']}: "
        f"{result['comm_mb_per_device']:.1f} MB per device per step "
        f"(compiled in {result['compile_s']} s)")
  for kind, c in result["collectives"].items():
    if c["count"]:
      print(f"  {kind:<20} {c['count']:>5} ops  {c['mb_per_device']:10.2f} MB")
  for system, p in result["predicted"].items():
    print(f"  {system:<34} compute {p['compute_ms']:9.2f} ms  comm {p['comm_ms']:9.2f} ms  "
          f"share {100 * p['comm_share']:5.1f} %")
  return 0


if __name__ == "__main__":
  sys.exit(main())
