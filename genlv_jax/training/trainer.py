"""The training loop: `train_and_evaluate(config, workdir)`.

One linear loop (big_vision's shape): mesh and shardings from the config, the grain iterator of
this process, the train state initialised or restored from WORKDIR, a jitted pure train step
with explicit in/out shardings and donated state, periodic metrics, evaluation (the evaluation
library's fixed samples and metrics, as `python -m genlv_jax.evaluate` computes them) and
checkpoints. A run is a function of its config and seed: killed and restarted, it continues
bit-for-bit, and `WORKDIR/metrics.jsonl` holds each logged step once.

Stopping: while `train_and_evaluate` runs, SIGTERM (a preemption, `launch/ … stop`, SLURM's
time limit) and SIGINT (Ctrl-C) ask every process to stop at the next step boundary, where the
state is saved. After SIGTERM the function returns the state (the process exits 0: launchers
rely on it); after Ctrl-C it raises `TrainingInterrupted` (a KeyboardInterrupt) naming the step
saved. A second Ctrl-C ends the process at once, without saving. The previous signal handlers
are back when the function returns. Processes agree on the stop without a per-step collective
(`_StopSignals`: the coordination service's preemption sync point).

Performance: each metrics row carries `perf/*` (step time, images/s and TFLOP/s per device,
MFU, the fraction of time waiting for data; `training.perf`), the first one XLA's memory
analysis of the compiled step, and the run's last row its goodput (`perf.Chrono`).

`WORKDIR/config.json` records the config a run was started or resumed with
(`read_workdir_config`); resuming with a config that differs in what changes the model, the
data stream or the optimisation logs a warning naming the fields.
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import threading
import time
from typing import Any, Optional

import jax
import ml_collections
import numpy as np
from absl import logging
from etils import epath
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

from genlv_jax import evaluation
from genlv_jax.data import input_pipeline, task_sources
from genlv_jax.errors import UserError
from genlv_jax.models import Predictor, abstract_params, apply_model, build_model, init_params
from genlv_jax.training import checkpointing, perf, sharding, writers
from genlv_jax.training.checkpointing import CONFIG_FILE, read_workdir_config
from genlv_jax.training.train_step import (TrainState, create_train_state, make_optimizer,
                                           make_train_step)

PyTree = Any


# Config fields whose change between a run and its resumption is expected: they decide how long,
# where and how often the run computes, logs, evaluates and saves, or how a function is laid out
# and computed (same values). Any other difference (the model, the data stream, the optimiser,
# what evaluation measures) is worth a warning. An entry ending in "." covers a whole section.
_CHANGES_EXPECTED_ON_RESUME = (
    "total_steps", "log_every", "checkpoint_every", "keep_checkpoints", "async_checkpointing",
    "eval_every", "eval_batch_size", "profile_steps", "perf.", "on_nan", "init_from", "remat",
    "mesh.", "sharding_rules", "sharding_min_size", "ops.",
    "data.workers", "data.read_threads", "data.prefetch", "data.data_dir",
)


class NonFiniteLossError(UserError):
  """The loss or gradient went NaN/Inf and `config.on_nan == "stop"` (lower the learning rate,
  check the data)."""


class TrainingInterrupted(KeyboardInterrupt):
  """Ctrl-C stopped `train_and_evaluate` at a step boundary, after the state was saved.

  A `KeyboardInterrupt`, so that code which does not catch it stops as after any Ctrl-C.
  `step` is the step the workdir now resumes from; `checkpoint` its directory (None when the run
  was stopped before its first step and the workdir holds no checkpoint).
  """

  def __init__(self, step: int, checkpoint: Optional[str]):
    self.step, self.checkpoint = step, checkpoint
    where = f"saved step {step} in {checkpoint}" if checkpoint else \
        f"stopped at step {step}, before any checkpoint"
    super().__init__(f"interrupted: {where}")


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


# ---- the config: checked, recorded in the workdir, compared on resume ---------------------------

def check_config(config: ml_collections.ConfigDict) -> None:
  """Refuses the config values the training loop cannot use as asked, each with a one-line
  `UserError` naming the field.

  - `image_size` a positive multiple of the model's padding multiple (`pad_multiple`: 32 for
    GenLV, 64 for X-Restormer): the model reflect-pads its input to that multiple, so any
    other crop size would train on padded crops;
  - `batch_size` > 0, `total_steps` >= 0, `log_every` > 0, `checkpoint_every` > 0,
    `keep_checkpoints` > 0, `eval_every` >= 0 (0: no evaluation), `profile_steps` >= 0;
  - `on_nan` "skip" or "stop";
  - when evaluating, `eval_images`, `eval_prompts` and `eval_batch_size` > 0.
  The batch's divisibility by the mesh is checked with the mesh (`sharding.check_batch`).
  """
  def integer(name: str, minimum: int) -> int:
    value = config.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
      bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
      raise UserError(f"config.{name} must be {bound}, got {value!r}")
    return int(value)

  task_sources.check_training_data(config)  # every named task has data, before any work
  integer("batch_size", 1)
  integer("total_steps", 0)
  integer("log_every", 1)
  integer("checkpoint_every", 1)
  integer("keep_checkpoints", 1)
  integer("profile_steps", 0)
  if integer("eval_every", 0) > 0:
    for name in ("eval_images", "eval_prompts", "eval_batch_size"):
      integer(name, 1)
  if config.on_nan not in ("skip", "stop"):
    raise UserError(f"config.on_nan must be 'skip' or 'stop', got {config.on_nan!r}")
  model = build_model(config)
  multiple = int(model.pad_multiple)
  # X-Restormer's SR models upsample the input by `scale` before padding it.
  scale = int(getattr(model, "scale", 1))
  size = config.image_size
  if (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0
      or (size * scale) % multiple):
    hint = max(multiple // math.gcd(multiple, scale), 1)
    near = f" (e.g. {max(round(size / hint), 1) * hint})" if isinstance(size, int) else ""
    raise UserError(f"config.image_size must be a positive multiple of {hint}{near}, got "
                    f"{size!r}: {type(model).__name__} pads its input to multiples of "
                    f"{multiple}, so every crop would be padded")


def _config_tree(config: ml_collections.ConfigDict) -> dict:
  """The config as plain JSON values (tuples become lists), as config.json holds it."""
  return json.loads(config.to_json_best_effort())


def _write_workdir_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Writes `WORKDIR/config.json` through a temporary file and a rename: a kill leaves the old
  file or the new one, never half of one."""
  directory = epath.Path(workdir)
  directory.mkdir(parents=True, exist_ok=True)
  writers.write_text_atomic(directory / CONFIG_FILE,
                            json.dumps(_config_tree(config), indent=2) + "\n")


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict) and value:
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def config_differences(recorded: ml_collections.ConfigDict, config: ml_collections.ConfigDict
                       ) -> list[str]:
  """`field: old -> new` for each field in which `config` differs from the workdir's
  `recorded` config and which changes the model, the data stream, the optimisation or what
  evaluation measures (not `total_steps`, logging, checkpointing, layout: those may change
  between a run and its resumption)."""
  old, new = _flatten(_config_tree(recorded)), _flatten(_config_tree(config))
  missing = object()
  differences = []
  for name in sorted(set(old) | set(new)):
    if any(name == e or (e.endswith(".") and name.startswith(e))
           for e in _CHANGES_EXPECTED_ON_RESUME):
      continue
    before, after = old.get(name, missing), new.get(name, missing)
    if before != after:
      show = lambda v: "(absent)" if v is missing else json.dumps(v)  # noqa: E731
      differences.append(f"{name}: {show(before)} -> {show(after)}")
  return differences


# ---- stopping on SIGINT / SIGTERM ---------------------------------------------------------------

class _StopSignals:
  """SIGINT and SIGTERM, while the `with` block runs, ask for a stop at a step boundary
  (`requested`) instead of ending the process; the previous handlers come back on exit.

  Every process stops, and saves, at the same step, with no collective in the steps between:
  - one process: its own handlers, read at each step;
  - several processes under `jax.distributed` with the preemption service (the default): SIGTERM
    is left to the coordination service's preemption notifier, which tells every process, and
    `requested(step)` is `multihost_utils.reached_preemption_sync_point` (a local check until a
    notice arrives; then the processes agree on the first step all can still reach). Ctrl-C
    becomes a preemption notice: the handler sends this process SIGTERM;
  - several processes without it (or with a Python SIGTERM handler installed by the caller,
    which the notifier would not see): own handlers, agreed upon at checkpoint steps, where the
    processes synchronise to save anyway.

  After the first Ctrl-C, SIGINT gets the operating system's default action: a second Ctrl-C
  ends the process at once, even while it waits inside XLA or for a checkpoint write (orbax's
  atomic saves leave the previous checkpoint usable). A SIGINT that was ignored when the block
  started (a background job) stays ignored. Outside the main thread, where Python cannot set
  handlers, nothing is installed.
  """

  def __init__(self, checkpoint_every: int = 1):
    self.received: set[int] = set()
    self._previous: dict[int, Any] = {}
    self._checkpoint_every = max(int(checkpoint_every), 1)
    self.coordinated = jax.process_count() > 1 and _preemption_service_watches_sigterm()

  def __enter__(self) -> "_StopSignals":
    if threading.current_thread() is not threading.main_thread():
      return self
    signums = (signal.SIGINT,) if self.coordinated else (signal.SIGINT, signal.SIGTERM)
    for signum in signums:
      previous = signal.getsignal(signum)
      if signum == signal.SIGINT and previous is signal.SIG_IGN:
        continue
      self._previous[signum] = previous
      signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, previous in self._previous.items():
      # None: a handler set outside Python, which cannot be put back; the default is closest.
      signal.signal(signum, signal.SIG_DFL if previous is None else previous)
    self._previous.clear()

  def _handle(self, signum: int, frame) -> None:
    del frame
    self.received.add(signum)
    if signum == signal.SIGINT:
      signal.signal(signal.SIGINT, signal.SIG_DFL)
      message = ("\nCtrl-C: saving a checkpoint at the end of this step, then stopping "
                 "(Ctrl-C again to abort without saving)\n")
      if self.coordinated:
        os.kill(os.getpid(), signal.SIGTERM)  # the preemption notifier tells the other processes
    else:
      message = f"\n{signal.Signals(signum).name}: saving a checkpoint at the end of this step\n"
    # os.write, not print or logging: a handler runs between two bytecodes of the main thread,
    # which may be inside a write to the same stream.
    os.write(2, message.encode())

  def requested(self, step: int) -> Optional[int]:
    """SIGINT or SIGTERM when a stop was asked for and every process stops after `step` steps,
    else None; every process gets the same answer at the same step. SIGINT when this process
    got a Ctrl-C; SIGTERM for a stop asked for elsewhere."""
    if self.coordinated:
      if not multihost_utils.reached_preemption_sync_point(step):
        return None
      return signal.SIGINT if signal.SIGINT in self.received else signal.SIGTERM
    flags = np.array([signal.SIGINT in self.received, signal.SIGTERM in self.received], np.int32)
    if jax.process_count() > 1:
      if step % self._checkpoint_every:
        return None
      flags = np.max(multihost_utils.process_allgather(flags), axis=0)
    if flags[0]:
      return signal.SIGINT
    return signal.SIGTERM if flags[1] else None


def _preemption_service_watches_sigterm() -> bool:
  """Whether `jax.distributed`'s preemption sync manager runs and SIGTERM still reaches its
  notifier (a handler installed from Python replaces the notifier's, which Python sees as
  SIG_DFL or None)."""
  from jax._src import distributed  # pylint: disable=import-outside-toplevel
  if getattr(distributed.global_state, "preemption_sync_manager", None) is None:
    return False
  return signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)


def _flops_and_peak(config: ml_collections.ConfigDict) -> tuple[float, Optional[float]]:
  """(FLOPs of one train step on the global batch, the peak bf16 TFLOP/s of one device or None),
  for the `perf/*` metrics; FLOPs 0 when `config.perf.count_flops` is off."""
  kind = jax.devices()[0].device_kind
  peak = perf.peak_tflops(kind, float(config.perf.peak_tflops))
  if peak is None:
    logging.info("no published peak rate for device kind %r: no perf/mfu (set "
                 "--config.perf.peak_tflops)", kind)
  if not config.perf.count_flops:
    return 0.0, peak
  begin = time.monotonic()
  flops = perf.train_step_flops(config, int(config.batch_size))
  logging.info("a train step is %.4g TFLOP (XLA's count, %.1fs)", flops / 1e12,
               time.monotonic() - begin)
  return flops, peak


# ---- progress -----------------------------------------------------------------------------------

def _format_duration(seconds: float) -> str:
  seconds = int(round(max(seconds, 0.0)))
  if seconds < 60:
    return f"{seconds}s"
  if seconds < 3600:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class _Progress:
  """Steps/s and the ETA for the console and metrics.jsonl, from times taken when the device
  has finished the steps (after the log point's `device_get`), not when Python dispatched them.

  The clock starts once the run's first step has finished: that step carries the compilation,
  which would make every early ETA wrong. The ETA uses the mean rate since then, so it counts
  the evaluations and checkpoints to come as the past ones cost.
  """

  def __init__(self, total_steps: int):
    self.total_steps = total_steps
    self.start_step = self.start_time = None
    self.interval_step = self.interval_time = None

  def started(self, step: int) -> None:
    self.start_step = self.interval_step = step
    self.start_time = self.interval_time = time.monotonic()

  def log_point(self, step: int) -> tuple[Optional[float], str]:
    """(steps/s since the previous log point or None, the console line) at `step`."""
    now = time.monotonic()
    rate = None
    if self.interval_step is not None and step > self.interval_step:
      rate = (step - self.interval_step) / max(now - self.interval_time, 1e-9)
    line = f"step {step}/{self.total_steps} ({100 * step / max(self.total_steps, 1):.0f}%)"
    if rate is not None:
      mean = (step - self.start_step) / max(now - self.start_time, 1e-9)
      line += f", {rate:.2f} steps/s, ETA {_format_duration((self.total_steps - step) / mean)}"
    self.interval_step, self.interval_time = step, now
    return rate, line


# ---- the loop -----------------------------------------------------------------------------------

def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains `config` in `workdir` (resuming from its latest checkpoint) and returns the state.

  SIGTERM and Ctrl-C stop the run at the next step boundary, after saving it (module
  docstring): SIGTERM returns the state, Ctrl-C raises `TrainingInterrupted`.

  Raises:
    UserError: a config value the loop cannot use (`check_config`), a batch the mesh cannot
      split, a non-finite step with `on_nan="stop"` (`NonFiniteLossError`).
    TrainingInterrupted: Ctrl-C, once the state is saved.
  """
  check_config(config)
  with _StopSignals(config.checkpoint_every) as stop_signals:
    return _train(config, workdir, stop_signals)


def _train(config: ml_collections.ConfigDict, workdir: str, stop_signals: _StopSignals
           ) -> TrainState:
  chrono = perf.Chrono()
  started = chrono.start
  is_primary = jax.process_index() == 0
  total_steps = int(config.total_steps)
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
  writer = None
  try:
    latest = checkpointer.latest_step()
    if latest is not None:
      try:
        recorded = read_workdir_config(workdir)
      except UserError as e:  # the record only informs: it must not stop a resumption
        logging.warning("%s; the config is not compared", e)
        recorded = None
      differences = config_differences(recorded, config) if recorded is not None else []
      if differences:
        logging.warning("resuming %s with a config that differs from its %s in: %s", workdir,
                        CONFIG_FILE, "; ".join(differences))
      target = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                            abstract_state, state_shardings)
      state, data_state = checkpointer.restore(latest, target)
      train_iter.set_state(data_state)
      logging.info("resumed from %s", checkpointer.directory / str(latest))
    else:
      # Params are initialised replicated (the same values whatever the mesh), then laid out.
      params = jax.device_put(initial_params(model, config), state_shardings.params)
      state = jax.jit(lambda p: create_train_state(p, tx, use_ema),
                      out_shardings=state_shardings)(params)
    start_step = int(state.step)
    if is_primary:
      _write_workdir_config(workdir, config)
      # The steps after the checkpoint are trained again: their rows from before go.
      dropped = writers.drop_rows_after(os.path.join(workdir, writers.METRICS_FILE), start_step)
      if dropped:
        logging.info("%s: dropped %d row(s) after step %d, which is trained again",
                     writers.METRICS_FILE, dropped, start_step)

    batch_sharding = sharding.batch_sharding(mesh, rules)
    train_step = jax.jit(make_train_step(model, tx, config),
                         in_shardings=(state_shardings, batch_sharding),
                         out_shardings=(state_shardings, None), donate_argnums=(0,))
    evaluating = 0 < config.eval_every <= total_steps
    eval_samples = evaluation.make_samples(config, str(config.eval_tasks) or None,
                                           num_images=int(config.eval_images)
                                           ) if evaluating else None
    # Outputs replicated: every process reads whole predictions, whatever the params' layout.
    predictor = Predictor(model, None, config, forward=jax.jit(
        functools.partial(apply_model, model), out_shardings=NamedSharding(mesh, P())))
    # A finished run resumed (to evaluate, say) trains nothing: nothing to count or report.
    step_flops, peak = _flops_and_peak(config) if start_step < total_steps else (0.0, None)

    writer = writers.create_writer(workdir, is_primary)
    hooks = []
    if config.profile_steps > 0 and is_primary:
      hooks.append(writers.periodic_actions().Profile(
          logdir=workdir, num_profile_steps=config.profile_steps, first_profile=start_step + 5,
          every_secs=None))
    progress = _Progress(total_steps)
    pending: list = []
    saved = start_step if latest is not None else None  # the step the workdir resumes from
    compiled = None
    memory: dict[str, int] = {}

    def save(step: int, force: bool) -> None:
      nonlocal saved
      with chrono.measure("checkpointing"):
        if saved != step and checkpointer.save(step, state, train_iter.get_state(), force=force):
          saved = step
          logging.info("saving checkpoint of step %d to %s", step,
                       checkpointer.directory / str(step))

    def log_point(step: int) -> None:
      """One row with the mean metrics of the steps since the last log point. A non-finite step
      with `on_nan="stop"` ends the run here, after saving the state: its update was skipped,
      so the state is that of the last finite step."""
      nonlocal interval, memory
      if not pending:
        return
      fetched = jax.device_get(pending)  # waits for the device: the times below are real
      pending.clear()
      summary = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[-1]}
      rate, line = progress.log_point(step)
      if rate is not None:
        summary["train/steps_per_s"] = rate
      # The interval's training time: its wall time less what was not a step.
      now, spent = chrono.snapshot()
      last_step, last_time, last_spent = interval
      idle = sum(spent[k] - last_spent[k] for k in ("compile", "checkpointing", "evaluation"))
      summary.update(perf.step_metrics(
          step_flops, step - last_step, now - last_time - idle,
          spent["data_wait"] - last_spent["data_wait"], int(config.batch_size),
          jax.device_count(), peak))
      interval = (step, now, spent)
      summary.update({f"perf/memory_{k}_bytes": float(v) for k, v in memory.items()})
      memory = {}  # once, in the first row
      summary.update(train_iter.metrics())
      logging.info("%s", line)
      writer.write_scalars(step, summary)
      bad = [step - len(fetched) + 1 + i for i, m in enumerate(fetched) if m["train/nonfinite"]]
      if bad:
        logging.warning("non-finite loss or gradient at step(s) %s: update skipped", bad)
        if config.on_nan == "stop":
          save(step, force=True)
          raise NonFiniteLossError(f"non-finite loss or gradient at step {bad[0]} "
                                   f"(config.on_nan='stop'); the run is saved at step {step}")

    step = start_step
    logging.info("training steps %d -> %d on mesh %s (%d process(es), %d device(s)) in %s",
                 step, total_steps, dict(mesh.shape), jax.process_count(), jax.device_count(),
                 workdir)
    chrono.add("setup", time.monotonic() - started)
    interval = (start_step, *chrono.snapshot())  # (step, time, time spent per category)
    stop = None
    while step < total_steps:
      stop = stop_signals.requested(step)
      if stop:
        break
      with chrono.measure("data_wait"):
        batch = sharding.host_local_to_global(
            {k: v for k, v in next(train_iter).items() if k != "task_id"}, mesh, rules)
      if compiled is None:
        # Compiled ahead of the first call to read XLA's memory analysis of the very program
        # the steps run (per device: arguments, outputs, temporaries).
        with chrono.measure("compile"):
          compiled = train_step.lower(state, batch).compile()
        memory = perf.memory_analysis(compiled)
        logging.info("compiled the train step in %s; per device: %s",
                     _format_duration(chrono.spent["compile"]),
                     ", ".join(f"{k} {v / 2 ** 20:.1f} MiB" for k, v in memory.items()) or
                     "no memory analysis")
      state, metrics = compiled(state, batch)
      step += 1
      pending.append(metrics)
      if progress.start_step is None:
        # The first step's time is not the steady state's: steps/s and the ETA start after it.
        jax.block_until_ready(metrics)
        logging.info("first step done, %s after the start (compilation included)",
                     _format_duration(time.monotonic() - started))
        progress.started(step)
      for hook in hooks:
        hook(step)

      checkpoint_due = step % config.checkpoint_every == 0 or step == total_steps
      # Checkpoint steps are log points too: a run resumed from one then writes the rows of the
      # uninterrupted run (no step's metrics missing from the averages).
      if step % config.log_every == 0 or checkpoint_due:
        log_point(step)
      if evaluating and step % config.eval_every == 0:
        with chrono.measure("evaluation"):
          report, predictions = evaluation.evaluate(
              predictor.with_params(state.ema_params if use_ema else state.params),
              eval_samples, int(config.eval_prompts), batch_size=int(config.eval_batch_size))
          writer.write_scalars(step, evaluation.scalar_metrics(report))
          writer.write_images(step, {"eval/samples":
                                     evaluation.sample_grid(eval_samples, predictions)[None]})
      if checkpoint_due:
        save(step, force=step == total_steps)

    if stop:
      log_point(step)
      if step > start_step:
        save(step, force=True)
    with chrono.measure("checkpointing"):
      checkpointer.wait()
    goodput = chrono.summary()
    if step > start_step:
      writer.write_scalars(step, goodput)
  except BaseException:
    # Finish a checkpoint being written in the background before the error propagates; a
    # failure while doing so must not hide the error.
    for cleanup in (checkpointer.wait, checkpointer.close, train_iter.close,
                    writer.close if writer is not None else None):
      try:
        if cleanup is not None:
          cleanup()
      except Exception as e:  # pylint: disable=broad-except
        logging.error("while stopping after an error: %s: %s", type(e).__name__, e)
    raise
  checkpointer.close()
  train_iter.close()
  writer.close()

  where = str(checkpointer.directory / str(saved)) if saved is not None else None
  if stop == signal.SIGINT:
    raise TrainingInterrupted(step, where)
  if stop == signal.SIGTERM:
    # Under the preemption service the notice may have come to another process.
    logging.warning("%s: %s; run the same command to resume",
                    "preemption notice" if stop_signals.coordinated else "SIGTERM",
                    f"saved step {step} in {where}" if where else "stopped before any step")
  else:
    logging.info("done: %d steps in %s (steps %d -> %d), checkpoint at %s", step - start_step,
                 _format_duration(time.monotonic() - started), start_step, step, where or "(none)")
  logging.info("goodput %.0f%%: %s", 100 * goodput["goodput/fraction"], ", ".join(
      f"{name} {_format_duration(goodput[f'goodput/{name}_s'])}"
      for name in ("productive_steps", *perf.Chrono.CATEGORIES)))
  return state
