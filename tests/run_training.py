"""Runs `train_and_evaluate` in a fresh process (XLA_FLAGS / distributed set-up are per process)
and writes what the tests compare: per-step losses, param shardings, a digest of the params.

    python tests/run_training.py OUT.json CONFIG WORKDIR [--config.k=v ...]
      [--coordinator ADDR --num_processes N --process_id I] [--record_host_syncs FILE]

`--record_host_syncs FILE` writes to FILE (JSON) every call the training loop's thread makes
that waits for the other processes: the host-level collectives of
`jax.experimental.multihost_utils` and every call to the coordination service's client
(barriers, key-value reads and writes), each with the number of batches the loop had taken
when it was made (the step being trained or just trained).
"""

import json
import signal
import sys
import threading

import jax
import numpy as np


def main(argv):
  out_path, config_path, workdir, *rest = argv
  from absl import logging
  logging.set_verbosity(logging.INFO)  # the trainer's lines on stderr, for the tests to read
  dist = {}
  overrides = []
  it = iter(rest)
  for arg in it:
    if arg in ("--coordinator", "--num_processes", "--process_id", "--record_host_syncs"):
      dist[arg.lstrip("-")] = next(it)
    else:
      overrides.append(arg)
  if "coordinator" in dist:
    from genlv_jax.training.trainer import initialize_distributed
    initialize_distributed(dist["coordinator"], int(dist["num_processes"]), int(dist["process_id"]))
  from genlv_jax.config_io import load_config
  from genlv_jax.training.trainer import train_and_evaluate
  config = load_config(config_path, overrides)
  if "record_host_syncs" in dist:
    jax.devices()  # the backend takes the client itself (gloo): before it is wrapped
    syncs = _record_host_syncs()
  # Handlers of the caller's own, which the trainer must leave in place. Not SIGTERM's with
  # several processes: that belongs to the coordination service's preemption notifier.
  handlers = {signal.SIGINT: lambda *_: None}
  if jax.process_count() == 1:
    handlers[signal.SIGTERM] = lambda *_: None
  for signum, handler in handlers.items():
    signal.signal(signum, handler)
  state = train_and_evaluate(config, workdir)
  if "record_host_syncs" in dist:
    with open(dist["record_host_syncs"], "w") as f:
      json.dump(syncs, f)
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
                 "processes": jax.process_count(), "signal_handlers_kept": handlers_kept,
                 "workdir": workdir}, f)


class _CountingClient:
  """The coordination service's client, with every method call recorded by `record`."""

  def __init__(self, client, record):
    self._client, self._record = client, record

  def __getattr__(self, name):
    attr = getattr(self._client, name)
    if not callable(attr):
      return attr

    def call(*args, **kwargs):
      self._record(f"client.{name}")
      return attr(*args, **kwargs)
    return call


def _record_host_syncs():
  """Instruments this process (module docstring); returns the list the calls go into."""
  from jax._src import distributed
  from jax.experimental import multihost_utils
  from genlv_jax.training import sharding
  calls, batches = [], [0]

  def record(name):
    if threading.current_thread() is threading.main_thread():
      calls.append([name, batches[0]])

  original = sharding.host_local_to_global

  def counting(*args, **kwargs):
    batches[0] += 1
    return original(*args, **kwargs)
  sharding.host_local_to_global = counting

  def wrap(name, fn):
    def wrapped(*args, **kwargs):
      record(name)
      return fn(*args, **kwargs)
    return wrapped
  for name in ("process_allgather", "broadcast_one_to_all", "sync_global_devices"):
    setattr(multihost_utils, name, wrap(name, getattr(multihost_utils, name)))
  if distributed.global_state.client is not None:
    distributed.global_state.client = _CountingClient(distributed.global_state.client, record)
  return calls


if __name__ == "__main__":
  main(sys.argv[1:])
