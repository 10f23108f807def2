"""The grain input pipeline: clean images → batches of training quadruplets (host code).

Stages, all grain `MapDataset` transformations up to the worker processes:

  positions   local batch s of this process → the global sample positions of its records:
              g = start + s·B + process_index·B/P + j, j < B/P (per-process sharding by
              contiguous slices of every global batch);
  records     each g → one quadruplet, a pure function of (seed, g) (`genlv_jax.data.records`):
              the input image is entry g of the epoch-wise shuffled training images (a new
              permutation every epoch), and a generator seeded with (seed, g) draws the task
              (by the configured weights), the prompt image (a different one), the crops and
              the severity; the B/P records are written straight into the batch arrays;
  workers     `data.workers` processes (grain `mp_prefetch`; 0 = in-process), each with
              `data.read_threads` threads and `data.prefetch` batches buffered.

Because every sample depends only on (seed, g), the global batch at step s is a function of
(seed, s, B) only — not of the number of processes or workers — and the iterator state is
just the next global position (`TrainIterator.get_state`), which restores on any topology.

Config fields read (with defaults where `configs/` does not set them): `seed`, `batch_size`
(global), `image_size`, `data.source`, `data.data_dir`, `data.split` ("train"),
`data.eval_split` (tfds only; "": hold images out of the training split instead), `data.holdout`
(-1: min(64, N // 10) images when N >= 20, else none), `data.image_key` (""), `data.tasks`,
`data.task_weights`, `data.paired` (see `genlv_jax.data.paired_sources`), `data.paired_root`,
`data.task_sources`, `data.domain_fallback` (where each task's data comes from:
`genlv_jax.data.task_sources`), `data.crop` ("random" | "resize", `records`), `data.workers`,
`data.read_threads` (1; 0: batches are made in the calling thread, no prefetch), `data.prefetch`
(2).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
from typing import Any, Iterator, Optional, Sequence

import cv2
import grain
import numpy as np
from absl import flags, logging

from genlv_jax.data import image_sources, records, task_selection, task_sources
from genlv_jax.data.task_selection import task_probabilities
from genlv_jax.errors import UserError

__all__ = ["TrainIterator", "make_train_iterator"]

_STATE_VERSION = 1


def _data(config, name: str, default: Any) -> Any:
  data = config.get("data", None) if hasattr(config, "get") else None
  value = data.get(name, default) if data is not None else default
  return default if value is None else value


# ---- sources -------------------------------------------------------------------------------

def _holdout(source, holdout: int) -> tuple[records.Split, records.Split]:
  """(training split, evaluation split) of a source: `data.holdout` images held out of
  training, evaluated on; a source too small to spare two evaluates on its training images."""
  held = records.holdout_indices(len(source), holdout)
  everything = np.arange(len(source))
  return (records.Split(source, np.setdiff1d(everything, held)),
          records.Split(source, held if len(held) >= 2 else everything))


def _open_clean(config, spec: str, what: str):
  """A clean-image source that can make a quadruplet (two images, the first decodes)."""
  source = image_sources.parse_source(spec, split=str(_data(config, "split", "train")),
                                      data_dir=str(_data(config, "data_dir", "")),
                                      image_key=str(_data(config, "image_key", "")))
  if len(source) < 2:
    raise image_sources.NoImagesError(
        f"{what} {spec} has {len(source)} image; a quadruplet needs two different clean images")
  source.read_rgb(0)  # fail here, in one line, if nothing in it decodes
  return source


def _open_sources(config, plan: dict[str, task_sources.TaskData]) -> records.Sources:
  """Opens the sources of the tasks in `plan` (`task_sources.configured_tasks`): the generic
  clean source when a task synthesises from it, the tasks' own clean sources, their pairs."""
  holdout = int(_data(config, "holdout", -1))
  clean = clean_eval = None
  if any(d.kind == "clean" and not d.own_source for d in plan.values()):
    spec = str(_data(config, "source", "builtin"))
    source = _open_clean(config, spec, "data.source")
    eval_split = str(_data(config, "eval_split", ""))
    if eval_split and not spec.startswith("tfds:"):
      raise image_sources.ImageSourceError(
          f"data.eval_split={eval_split!r} needs a tfds: source; other sources hold images out "
          "of training with data.holdout")
    if eval_split:
      evaluation = image_sources.parse_source(
          spec, split=eval_split, data_dir=str(_data(config, "data_dir", "")),
          image_key=str(_data(config, "image_key", "")))
      clean = records.Split(source, np.arange(len(source)))
      clean_eval = records.Split(evaluation, np.arange(len(evaluation)))
    else:
      clean, clean_eval = _holdout(source, holdout)
  own, own_eval, opened = {}, {}, {}
  for name, d in plan.items():
    if d.kind == "clean" and d.own_source:
      if d.clean not in opened:  # one source per spec, shared by the tasks of a domain
        opened[d.clean] = _holdout(_open_clean(config, d.clean, d.origin), holdout)
      own[name], own_eval[name] = opened[d.clean]
  paired, paired_eval = {}, {}
  for name, d in plan.items():
    if d.kind == "paired":
      source = task_sources.open_pairs(d)
      if len(source) < 2:
        raise image_sources.NoImagesError(f"paired data of {name} has one pair; the prompt "
                                          "needs another")
      paired[name], paired_eval[name] = _holdout(source, holdout)
  return records.Sources(clean, clean_eval, paired, paired_eval, own, own_eval)


@dataclasses.dataclass(frozen=True)
class _GlobalPositions:
  """Local batch s of process `process_index` → the global sample positions of its records:
  a contiguous slice of global batch s."""
  start: int
  global_batch: int
  local_batch: int
  process_index: int

  def __call__(self, step: int) -> np.ndarray:
    first = self.start + int(step) * self.global_batch + self.process_index * self.local_batch
    return np.arange(first, first + self.local_batch, dtype=np.int64)


def _worker_init(worker_index: int, worker_count: int) -> None:
  del worker_index, worker_count
  cv2.setNumThreads(1)  # the workers already fill the cores; OpenCV's pool would oversubscribe
  # A terminal's Ctrl-C and a launcher's SIGTERM reach the whole process group: the main process
  # decides when to stop (it saves a checkpoint first, with batches still to come from here)
  # and closes the workers itself.
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGTERM, signal.SIG_IGN)


# ---- the iterator --------------------------------------------------------------------------

class TrainIterator(Iterator[dict]):
  """Iterator over this process's slices of the global batches, with a restorable state.

  Each `next()` gives a dict: `prompt_source`, `prompt_target`, `input`, `target` float32
  [B/P, H, W, 3] in [0, 1], `task_id` int32 [B/P] (index into `task_selection.task_vocabulary()`).
  """

  def __init__(self, make_record: records.MakeRecord, *, seed: int, global_batch_size: int,
               process_index: int, process_count: int, workers: int, read_threads: int,
               prefetch: int, initial_skips: Sequence[str] = ()):
    self._make_record = make_record
    self.seed, self.global_batch_size = seed, global_batch_size
    self.process_index, self.process_count = process_index, process_count
    self.local_batch_size = global_batch_size // process_count
    self._workers, self._threads, self._prefetch = workers, read_threads, prefetch
    self._next_sample = 0
    self._iterator = None
    self._skipped = {records.skip_id(name) for name in initial_skips}

  def _dataset(self) -> grain.IterDataset:
    positions = _GlobalPositions(self._next_sample, self.global_batch_size,
                                 self.local_batch_size, self.process_index)
    # One element per local batch, made by `records.MakeBatch` (which writes every record
    # into its slot of the batch): workers then split the stream by whole batches.
    ds = grain.MapDataset.range(0, sys.maxsize).map(positions).map(
        records.MakeBatch(self._make_record))
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=self._threads,
                                              prefetch_buffer_size=self._prefetch))
    if self._workers > 0:
      if not flags.FLAGS.is_parsed():
        # grain's worker code reads its absl flags; outside an absl app (tests, notebooks,
        # benchmarks) nothing parsed them, so let them keep their defaults.
        flags.FLAGS.mark_as_parsed()
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=self._workers, per_worker_buffer_size=self._prefetch),
          worker_init_fn=_worker_init)
    return ds

  def __next__(self) -> dict[str, np.ndarray]:
    if self._iterator is None:
      self._iterator = iter(self._dataset())
    batch = next(self._iterator)
    self._skipped.update(int(i) for i in np.unique(batch.pop("_skipped")) if i >= 0)
    self._next_sample += self.global_batch_size
    return batch

  @property
  def step(self) -> int:
    """Global batches delivered since position 0 (at the current global batch size)."""
    return self._next_sample // self.global_batch_size

  @property
  def num_skipped(self) -> int:
    """Distinct unreadable images (files or records) skipped so far: the `data/skipped`
    metric."""
    return len(self._skipped)

  def metrics(self) -> dict[str, int]:
    """{"data/skipped": num_skipped} — for the trainer's metric writer."""
    return {"data/skipped": self.num_skipped}

  def get_state(self) -> dict[str, int]:
    """A JSON-serialisable state; identical on every process and independent of the number
    of processes and workers, so it restores on another topology."""
    return {"version": _STATE_VERSION, "next_sample": self._next_sample, "seed": self.seed,
            "global_batch_size": self.global_batch_size}

  def set_state(self, state: dict | str | bytes) -> None:
    """Continues from a `get_state()` (dict, or its JSON text): the next batch is the one
    that followed when the state was taken. With another global batch size the stream
    continues from the same sample position."""
    if isinstance(state, (str, bytes)):
      state = json.loads(state)
    if int(state.get("version", -1)) != _STATE_VERSION or "next_sample" not in state:
      raise ValueError(f"not an input-pipeline state: {state!r}")
    if int(state.get("seed", self.seed)) != self.seed:
      logging.warning("data state was saved with seed %s, config has seed %s: continuing at "
                      "the same position of the new seed's stream", state["seed"], self.seed)
    self.close()
    self._next_sample = int(state["next_sample"])

  def close(self) -> None:
    """Stops worker processes and reader threads (a later `next()` restarts them). Batches
    already queued in reader threads still finish in the background (grain's close does not
    cancel them)."""
    if self._iterator is not None and hasattr(self._iterator, "close"):
      self._iterator.close()
    self._iterator = None




def make_train_iterator(config, process_index: Optional[int] = None,
                        process_count: Optional[int] = None) -> TrainIterator:
  """The training iterator of this process (see the module docstring and `TrainIterator`).

  Args:
    config: the training config (fields listed in the module docstring).
    process_index, process_count: this process's slice of every global batch; default
      `jax.process_index()` / `jax.process_count()`.

  Raises:
    MissingDataError: tasks named in `data.tasks` without data, one line each.
    UserError (one line): a batch size not divisible by the process count, an unknown task
      or weight, or a source that cannot be opened or has no readable image.
  """
  if process_index is None or process_count is None:
    import jax  # pylint: disable=import-outside-toplevel
    process_index, process_count = jax.process_index(), jax.process_count()
  batch = int(config.batch_size)
  if batch <= 0 or batch % process_count:
    raise UserError(f"batch_size {batch} is not divisible by the {process_count} processes")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count})")
  names, plan = task_sources.configured_tasks(config)
  weights = str(_data(config, "task_weights", "uniform"))
  probabilities = task_probabilities(names, weights)
  crop = task_sources.check_crop(config)
  sources = _open_sources(config, plan)
  seed = int(config.seed)
  record = records.MakeRecord(sources, names, probabilities, seed, int(config.image_size),
                              crop=crop,
                              severity_levels=task_selection.severity_levels(names, weights))
  initial = list(sources.clean.source.skipped) if sources.clean else []
  for split in {id(s.source): s for s in (*sources.paired.values(),
                                          *sources.own.values())}.values():
    initial += split.source.skipped
  heavy = [(n, p) for n, p in zip(names, probabilities) if n in task_selection.HEAVY_TASKS]
  if heavy:
    logging.warning("heavy tasks in data.tasks (%s): each costs 0.03-1 s of CPU a sample; "
                    "down-weight them with data.task_weights or precompute them",
                    ", ".join(f"{n} p={p:.3f}" for n, p in heavy))
  logging.info("input pipeline: %d tasks, %d clean training images, batch %d/%d per process",
               len(names), len(sources.clean.indices) if sources.clean else 0,
               batch // process_count, batch)
  return TrainIterator(
      record, seed=seed, global_batch_size=batch, process_index=process_index,
      process_count=process_count, workers=int(_data(config, "workers", 0)),
      read_threads=max(0, int(_data(config, "read_threads", 1))),
      prefetch=max(1, int(_data(config, "prefetch", 2))), initial_skips=initial)
