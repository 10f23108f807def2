"""The training loop: `train_and_evaluate(config, workdir)`.

One linear loop (big_vision's shape): mesh and shardings from the config, the grain iterator of
this process, the train state initialised or restored from WORKDIR, a jitted pure train step
with explicit in/out shardings and donated state, periodic metrics, evaluation (the evaluation
library's fixed samples and metrics, as `python -m genlv_jax.evaluate` computes them) and
checkpoints. A run is a function of its config and seed: killed and restarted, it continues
bit-for-bit.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from typing import Any, Optional

import jax
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

from genlv_jax import evaluation
from genlv_jax.data import input_pipeline
from genlv_jax.errors import UserError
from genlv_jax.models import Predictor, abstract_params, apply_model, build_model, init_params
from genlv_jax.training import checkpointing, sharding, writers
from genlv_jax.training.train_step import (TrainState, create_train_state, make_optimizer,
                                           make_train_step)

PyTree = Any


class NonFiniteLossError(UserError):
  """The loss or gradient went NaN/Inf and `config.on_nan == "stop"` (lower the learning rate,
  check the data)."""


def initial_params(model, config: ml_collections.ConfigDict) -> PyTree:
  """Fresh params from `config.seed`, or those of `config.init_from` (strict): any checkpoint
  `checkpointing.resolve_checkpoint` knows (the authors' PyTorch files as they are, an orbax
  params directory, a training or fine-tuning workdir)."""
  source = str(config.get("init_from", "") or "")
  if not source:
    return init_params(model, config)
  return checkpointing.load_params(model, config, source)


def initialize_distributed(coordinator_address: Optional[str], num_processes: Optional[int],
                           process_id: Optional[int]) -> None:
  """Explicit multi-process set-up, or auto-detection on TPU pods and SLURM; nothing otherwise."""
  # CPU collectives across processes go through gloo (tests: two processes on 127.0.0.1).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if coordinator_address:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  elif any(k in os.environ for k in ("SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES",
                                     "MEGASCALE_COORDINATOR_ADDRESS")):
    jax.distributed.initialize()


def _preemption_requested(flag: list[bool]) -> bool:
  """True on every process once any process got SIGTERM (all must save the same step)."""
  if jax.process_count() == 1:
    return flag[0]
  return bool(np.any(multihost_utils.process_allgather(np.int32(flag[0]))))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains `config` in `workdir` (resuming from its latest checkpoint) and returns the state."""
  is_primary = jax.process_index() == 0
  mesh = sharding.create_mesh(config.mesh)
  rules = tuple(tuple(r) for r in config.sharding_rules)
  sharding.check_batch(config.batch_size, mesh, rules)
  model = build_model(config)
  tx = make_optimizer(config)
  use_ema = float(config.optimizer.ema_decay) > 0
  train_iter = input_pipeline.make_train_iterator(config)

  abstract_state = jax.eval_shape(lambda p: create_train_state(p, tx, use_ema),
                                  abstract_params(model, config))
  state_shardings = sharding.tree_shardings(abstract_state, mesh, rules, config.sharding_min_size)
  checkpointer = checkpointing.TrainCheckpointer(
      workdir, config.checkpoint_every, config.keep_checkpoints, config.async_checkpointing)
  latest = checkpointer.latest_step()
  if latest is not None:
    target = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                          abstract_state, state_shardings)
    state, data_state = checkpointer.restore(latest, target)
    train_iter.set_state(data_state)
    logging.info("resumed from %s at step %d", checkpointer.directory, latest)
  else:
    # Params are initialised replicated (the same values whatever the mesh), then laid out.
    params = jax.device_put(initial_params(model, config), state_shardings.params)
    state = jax.jit(lambda p: create_train_state(p, tx, use_ema),
                    out_shardings=state_shardings)(params)

  batch_sharding = sharding.batch_sharding(mesh, rules)
  train_step = jax.jit(make_train_step(model, tx, config),
                       in_shardings=(state_shardings, batch_sharding),
                       out_shardings=(state_shardings, None), donate_argnums=(0,))
  evaluating = 0 < config.eval_every <= config.total_steps
  eval_samples = evaluation.make_samples(config, str(config.eval_tasks) or None,
                                         num_images=int(config.eval_images)) if evaluating else None
  # Outputs replicated: every process reads whole predictions, whatever the params' layout.
  predictor = Predictor(model, None, config, forward=jax.jit(
      functools.partial(apply_model, model), out_shardings=NamedSharding(mesh, P())))

  writer = writers.create_writer(workdir, is_primary)
  actions = writers.periodic_actions()
  hooks = [actions.ReportProgress(num_train_steps=config.total_steps, writer=writer,
                                  every_steps=config.log_every)]
  if config.profile_steps > 0 and is_primary:
    hooks.append(actions.Profile(logdir=workdir, num_profile_steps=config.profile_steps,
                                 first_profile=int(state.step) + 5, every_secs=None))
  preempted = [False]
  signal.signal(signal.SIGTERM, lambda *_: preempted.__setitem__(0, True))

  step = int(state.step)
  pending, last_log = [], time.time()
  logging.info("training from step %d to %d on mesh %s", step, config.total_steps, dict(mesh.shape))
  while step < config.total_steps:
    batch = sharding.host_local_to_global(
        {k: v for k, v in next(train_iter).items() if k != "task_id"}, mesh, rules)
    state, metrics = train_step(state, batch)
    step += 1
    pending.append(metrics)
    for hook in hooks:
      hook(step)

    if step % config.log_every == 0 or step == config.total_steps:
      fetched = jax.device_get(pending)
      bad = [step - len(fetched) + 1 + i for i, m in enumerate(fetched) if m["train/nonfinite"]]
      if bad:
        logging.warning("non-finite loss or gradient at step(s) %s: update skipped", bad)
        if config.on_nan == "stop":
          raise NonFiniteLossError(f"non-finite loss or gradient at step {bad[0]} "
                                   f"(config.on_nan='stop')")
      summary = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[-1]}
      summary["train/steps_per_s"] = len(fetched) / max(time.time() - last_log, 1e-9)
      summary.update(train_iter.metrics())
      writer.write_scalars(step, summary)
      pending, last_log = [], time.time()

    if evaluating and step % config.eval_every == 0:
      report, predictions = evaluation.evaluate(
          predictor.with_params(state.ema_params if use_ema else state.params), eval_samples,
          int(config.eval_prompts), batch_size=int(config.eval_batch_size))
      writer.write_scalars(step, evaluation.scalar_metrics(report))
      writer.write_images(step, {"eval/samples":
                                 evaluation.sample_grid(eval_samples, predictions)[None]})

    stop = _preemption_requested(preempted)
    checkpointer.save(step, state, train_iter.get_state(),
                      force=stop or step == config.total_steps)
    if stop:
      logging.warning("SIGTERM: saved step %d, exiting", step)
      break

  checkpointer.wait()
  checkpointer.close()
  writer.flush()
  train_iter.close()
  return state
