"""Runs `train_and_evaluate` in a fresh process (XLA_FLAGS / distributed set-up are per process)
and writes what the tests compare: per-step losses, param shardings, a digest of the params.

    python tests/run_training.py OUT.json CONFIG WORKDIR [--config.k=v ...]
      [--coordinator ADDR --num_processes N --process_id I]
"""

import json
import signal
import sys

import jax
import numpy as np


def main(argv):
  out_path, config_path, workdir, *rest = argv
  dist = {}
  overrides = []
  it = iter(rest)
  for arg in it:
    if arg in ("--coordinator", "--num_processes", "--process_id"):
      dist[arg.lstrip("-")] = next(it)
    else:
      overrides.append(arg)
  if dist:
    from genlv_jax.training.trainer import initialize_distributed
    initialize_distributed(dist["coordinator"], int(dist["num_processes"]), int(dist["process_id"]))
  from genlv_jax.config_io import load_config
  from genlv_jax.training.trainer import train_and_evaluate
  config = load_config(config_path, overrides)
  # Handlers of the caller's own, which the trainer must leave in place.
  handlers = {signal.SIGINT: lambda *_: None, signal.SIGTERM: lambda *_: None}
  for signum, handler in handlers.items():
    signal.signal(signum, handler)
  state = train_and_evaluate(config, workdir)
  handlers_kept = all(signal.getsignal(s) is h for s, h in handlers.items())
  losses = {}
  with open(f"{workdir}/metrics.jsonl") as f:
    for line in f:
      record = json.loads(line)
      if "train/loss" in record:
        losses[record["step"]] = record["train/loss"]
  flat = jax.tree_util.tree_flatten_with_path(state.params)[0]
  specs = {jax.tree_util.keystr(k): [str(s) for s in v.sharding.spec] for k, v in flat}
  shard_shapes = {jax.tree_util.keystr(k): list(v.addressable_shards[0].data.shape) for k, v in flat}
  opt_leaves = jax.tree_util.tree_flatten_with_path(state.opt_state)[0]
  opt_specs = {jax.tree_util.keystr(k): [str(s) for s in v.sharding.spec] for k, v in opt_leaves
               if hasattr(v, "sharding") and v.ndim > 0}
  if jax.process_index() == 0:
    params = jax.device_get(jax.tree.map(
        lambda x: jax.experimental.multihost_utils.process_allgather(x, tiled=True), state.params)) \
        if jax.process_count() > 1 else jax.device_get(state.params)
    np.savez(out_path + ".npz", **{jax.tree_util.keystr(k): np.asarray(v) for k, v in
                                   jax.tree_util.tree_flatten_with_path(params)[0]})
    with open(out_path, "w") as f:
      json.dump({"losses": losses, "specs": specs, "shard_shapes": shard_shapes,
                 "opt_specs": opt_specs, "devices": jax.device_count(),
                 "processes": jax.process_count(), "signal_handlers_kept": handlers_kept}, f)


if __name__ == "__main__":
  main(sys.argv[1:])
