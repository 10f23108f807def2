"""The fixed evaluation samples: test inputs, targets and K prompt pairs per task.

For each task, N test images are paired with K prompt pairs, each made from another clean
image. Procedural tasks are synthesised with fixed seeds: input i has severity (i + 0.5) / N
and its prompts the same severity and shared parameters (a filter choice), so that only the
prompt varies with k. Paired tasks take N pairs as tests and another pair as prompt k (from
the input's group for sources with groups: a style reference, a filter, an exposure). Test
inputs are images held out of training when the source is the training source; prompts never
show a test input.

Each task's data is resolved as training resolves it (`genlv_jax.data.task_sources`, which
gives the order): its pairs (`data.paired` folders, the authors' tree under `data.paired_root`,
…; given for a procedural task, they replace its synthesis), its own or its domain's clean
source (`data.task_sources`), or the generic `data.source`; a task without data is skipped, with
the reason. Test inputs are the images or pairs training holds out of that source
(`records.holdout_indices`, as `input_pipeline` splits it).
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from typing import Any, Callable, Optional, Sequence

import ml_collections
import numpy as np
from absl import logging

from genlv_jax.data import image_sources, paired_sources, task_selection, task_sources
from genlv_jax.data.records import center_crop, holdout_indices
from genlv_jax.errors import UserError
from genlv_jax.tasks import get_task


def _evenly(indices: np.ndarray, k: int) -> np.ndarray:
  return indices[(np.arange(k) * len(indices)) // k]


class TaskSamples:
  """The fixed test inputs/targets of one task and, per prompt index k, its prompt pairs.

  `input_indices`: the indices, in the task's source (clean images or pairs), of the test
  inputs (None when unknown); `origin`: where the task's data came from (a config field)."""

  def __init__(self, task, inputs: np.ndarray, targets: np.ndarray,
               make_prompts: Callable[[int], tuple[np.ndarray, np.ndarray]],
               input_indices: Optional[Sequence[int]] = None, origin: str = ""):
    self.task, self.inputs, self.targets = task, inputs, targets
    self.input_indices = None if input_indices is None else np.asarray(input_indices, np.int64)
    self.origin = origin
    self._make_prompts = make_prompts
    self._prompts: dict[int, tuple[np.ndarray, np.ndarray]] = {}

  def prompts(self, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(prompt sources, prompt targets), [N, H, W, 3]: prompt pair k for each input (made once:
    the trainer evaluates on the same samples again and again)."""
    if k not in self._prompts:
      self._prompts[k] = self._make_prompts(k)
    return self._prompts[k]


class CleanImages:
  """Centre-cropped clean images of a source, split into test inputs and prompt images."""

  def __init__(self, source, crop: int, num_images: int, seed: int,
               eligible: Optional[np.ndarray] = None):
    n = len(source)
    if n < 2:
      raise UserError("the image source needs at least two images (input and prompt)")
    eligible = np.arange(n) if eligible is None or len(eligible) == 0 else eligible
    if num_images > len(eligible) or num_images > n - 1:
      num_images = min(len(eligible), n - 1)
      logging.warning("only %d test images available; evaluating %d", num_images, num_images)
    self.input_indices = _evenly(np.asarray(eligible), num_images)
    pool = np.setdiff1d(np.arange(n), self.input_indices)  # prompts never show the input
    self.prompt_indices = pool[np.random.default_rng([seed, 0x9E0]).permutation(len(pool))]
    self._source, self._crop, self._cache = source, crop, {}
    self._warned_small = False

  def __getitem__(self, index: int) -> np.ndarray:
    if index not in self._cache:
      image = self._source.read_rgb(int(index))
      if min(image.shape[:2]) < self._crop and not self._warned_small:
        # center_crop upscales it: the metrics then measure a blurred photo, not the source's.
        logging.warning("image %d of the source is %dx%d, smaller than the %d px crop: it is "
                        "upscaled first (choose a smaller --crop to avoid this)", int(index),
                        image.shape[1], image.shape[0], self._crop)
        self._warned_small = True
      self._cache[index] = center_crop([image], self._crop)[0]
    return self._cache[index]

  def inputs(self) -> np.ndarray:
    return np.stack([self[i] for i in self.input_indices])

  def prompt_index(self, k: int) -> int:
    return int(self.prompt_indices[k % len(self.prompt_indices)])


def procedural_samples(task, clean: CleanImages, seed: int) -> TaskSamples:
  """Synthesised samples: input i at severity (i + 0.5)/N; prompt k from prompt image k with
  input i's severity and shared parameters (so that only the prompt changes with k)."""
  n, key = len(clean.input_indices), zlib.crc32(task.name.encode())
  severities = [(i + 0.5) / n for i in range(n)]
  pairs, shared = [], []
  for i, index in enumerate(clean.input_indices):
    rng = np.random.default_rng([seed, key, i])
    shared.append(task.sample_shared(severities[i], rng))
    pairs.append(task.synthesize(clean[index], severities[i], rng, **shared[i]))

  def make_prompts(k: int):
    prompt_clean = clean[clean.prompt_index(k)]
    made = [task.synthesize(prompt_clean, severities[i],
                            np.random.default_rng([seed, key, i, k, 1]), **shared[i])
            for i in range(n)]
    return np.stack([m[0] for m in made]), np.stack([m[1] for m in made])

  return TaskSamples(task, np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]),
                     make_prompts, input_indices=clean.input_indices)


def paired_samples(task, source, crop: int, num_images: int, seed: int,
                   eligible: Optional[np.ndarray] = None) -> TaskSamples:
  """Samples from an input/target folder pair: N pairs (among `eligible`, default all) as
  tests, prompt k another pair — for a source with `groups` (the authors' styles, filters,
  exposures), another pair of the input's group when there is one, as training draws it."""
  n = len(source)
  if n < 2:
    raise UserError(f"paired data of {task.name} has {n} pair(s); the prompt needs another")
  eligible = np.arange(n) if eligible is None or len(eligible) == 0 else np.asarray(eligible)
  num_images = min(num_images, len(eligible), n - 1)
  tests = _evenly(eligible, num_images)
  pool = np.setdiff1d(np.arange(n), tests)
  pool = pool[np.random.default_rng([seed, 0x9E1]).permutation(len(pool))]
  groups = getattr(source, "groups", None)
  small = []

  def read(i):
    # Strict: an unusable pair is never replaced by another one (which could be a prompt).
    pair = list(source.read_pair(int(i), substitute=False))
    if min(pair[0].shape[:2]) < crop and not small:  # center_crop upscales it (warned once)
      small.append(i)
      logging.warning("%s: pair %d is %dx%d, smaller than the %d px crop: it is upscaled "
                      "first (choose a smaller --crop to avoid this)", task.name, int(i),
                      pair[0].shape[1], pair[0].shape[0], crop)
    return center_crop(pair, crop)

  read_tests, kept, unusable = [], [], []
  for i in tests:
    try:
      read_tests.append(read(i))
      kept.append(int(i))
    except paired_sources.UnusablePairError as e:
      unusable.append(str(e))
  if unusable:
    logging.warning("%s: %d test pair(s) left out, unusable: %s", task.name, len(unusable),
                    "; ".join(unusable))
  if not read_tests:
    raise UserError(f"no usable test pair for {task.name}: {unusable[0]}")
  inputs, targets = zip(*read_tests)
  num_images = len(inputs)

  def candidates(test_index: int) -> np.ndarray:
    """The prompt pool of a test pair: the pool's pairs of its group, or the whole pool."""
    if groups is None:
      return pool
    same = pool[np.asarray(groups)[pool] == groups[test_index]]
    return same if len(same) else pool

  def make_prompts(k: int):
    # Prompt k is entry k of the pool; an unusable one passes to the next entry (warned once).
    read_once: dict[int, Any] = {}

    def prompt(entries: np.ndarray):
      for offset in range(len(entries)):
        index = int(entries[(k + offset) % len(entries)])
        if index not in read_once:
          try:
            read_once[index] = read(index)
          except paired_sources.UnusablePairError as e:
            logging.warning("%s: prompt pair %d unusable (%s); using the next", task.name,
                            index, e)
            read_once[index] = None
        if read_once[index] is not None:
          return read_once[index]
      raise UserError(f"no usable prompt pair for {task.name}")

    if groups is None:
      ps, pt = prompt(pool)
      return np.repeat(ps[None], num_images, 0), np.repeat(pt[None], num_images, 0)
    made = [prompt(candidates(i)) for i in kept]
    return np.stack([m[0] for m in made]), np.stack([m[1] for m in made])

  return TaskSamples(task, np.stack(inputs), np.stack(targets), make_prompts,
                     input_indices=kept)


def open_clean_images(config: ml_collections.ConfigDict, source: Optional[str] = None
                      ) -> tuple[Any, Optional[np.ndarray]]:
  """(clean-image source, indices eligible as test inputs or None for all).

  `source` None or the config's `data.source`: the training source, of which only the images
  the trainer holds out (`data.holdout`) are test inputs, or the tfds `data.eval_split` when
  set. Another spec: every image of it.
  """
  data = config.data
  training = str(data.source)
  spec = source or training
  options = dict(data_dir=str(data.data_dir), image_key=str(data.image_key))
  if spec != training:
    return image_sources.parse_source(spec, **options), None
  if str(data.eval_split):
    return image_sources.parse_source(spec, split=str(data.eval_split), **options), None
  return _held_out(image_sources.parse_source(spec, split=str(data.split), **options),
                   int(data.holdout), spec)


def _held_out(opened, holdout: int, spec: str) -> tuple[Any, Optional[np.ndarray]]:
  """(`opened`, the indices training holds out of it, or None for all when it holds none)."""
  eligible = holdout_indices(len(opened), holdout)
  if len(eligible) == 0:
    logging.warning("no images held out of %s (source too small or data.holdout=0): test "
                    "inputs are training images", spec)
    return opened, None
  return opened, eligible


def open_own_clean_images(config: ml_collections.ConfigDict, spec: str
                          ) -> tuple[Any, Optional[np.ndarray]]:
  """(a task's or domain's own clean source of `data.task_sources`, indices eligible as test
  inputs or None for all): the images training holds out of it (`data.holdout`, as
  `input_pipeline` splits it; these sources have no `data.eval_split`)."""
  data = config.data
  opened = image_sources.parse_source(spec, split=str(data.split), data_dir=str(data.data_dir),
                                      image_key=str(data.image_key))
  return _held_out(opened, int(data.holdout), spec)


def _with_paired(config: ml_collections.ConfigDict, paired) -> dict:
  """The config's data fields with `data.paired` replaced (what `task_sources.plan` reads)."""
  data = dict(config.data.items()) if hasattr(config.data, "items") else {}
  data["paired"] = paired
  return {"data": data}


def _same_pairs(a, b) -> bool:
  """Whether two pair specs (`task_sources.FolderPairs` / `AuthorsPairs`) are the same folders,
  however their paths are written."""
  if isinstance(a, task_sources.FolderPairs) and isinstance(b, task_sources.FolderPairs):
    real = lambda p: os.path.realpath(os.path.expanduser(p))  # noqa: E731
    return (real(a.input_dir), real(a.target_dir)) == (real(b.input_dir), real(b.target_dir))
  return a == b


def _skip_reason(config: ml_collections.ConfigDict, name: str, task_data) -> str:
  """Why a task without data is not evaluated, and how to give it data."""
  task = get_task(name)
  if task.procedural or not task_data.origin.startswith("needs "):
    # A domain task without its domain's images, or pairs that cannot be used: task_sources
    # says why and how to give them.
    return task_data.origin
  why = (f"{task.source} task ({task.dataset}): give its folders with --paired "
         f"'{name}=INPUT_DIR|TARGET_DIR'")
  root = str(config.data.get("paired_root", "") or "")
  if root and name in task_sources.AUTHORS_LAYOUT:
    missing = task_sources.AuthorsPairs(name, os.path.expanduser(root),
                                        task_sources.AUTHORS_LAYOUT[name]).missing()
    if missing:
      why += f" ({missing})"
  return why


def plan_tasks(config: ml_collections.ConfigDict, tasks: Optional[str] = None,
               paired=None) -> tuple[dict, dict[str, str], dict]:
  """(evaluable tasks' data {task: `task_sources.TaskData`}, {skipped task: why}, the
  training data of the evaluable tasks {task: TaskData}) for `tasks` (default `data.tasks`).

  Every task is resolved as training resolves it (`task_sources.plan`), with `paired` (when
  not None) in place of `data.paired`. A task without data is skipped; paired folders or a
  `data.task_sources` folder that were given but do not exist are an error.

  Raises:
    UserError: one line, for an unknown task, a selection without tasks, a malformed data
      field, or given folders that do not exist.
  """
  spec = tasks or str(config.data.tasks)
  names = list(task_selection.expand_tasks(spec))
  if not names:
    raise UserError(f"tasks {spec!r} select no task")
  training = task_sources.plan(config, names)
  resolved = training if paired is None else task_sources.plan(_with_paired(config, paired),
                                                               names)
  evaluable, skipped = {}, {}
  for name in names:
    d = resolved[name]
    if d.kind != "missing":
      evaluable[name] = d
      continue
    if d.origin.startswith(("data.paired ", "data.task_sources ")):
      # Folders named for this task that are not there: a mistake, not a task without data.
      origin = d.origin.replace("data.paired", "--paired", 1) if paired is not None else d.origin
      raise UserError(f"{name}: {origin}")
    skipped[name] = _skip_reason(config, name, d)
  return evaluable, skipped, {n: training[n] for n in evaluable}


@dataclasses.dataclass
class EvalSamples:
  """The fixed samples of an evaluation: per task, and the clean images of the generic source
  (`data.source` or `source`) they came from (None when no task, nor the mismatch test, reads
  it; tasks with their own source or pairs say theirs in `TaskSamples.origin`)."""
  tasks: dict[str, TaskSamples]
  skipped: dict[str, str]
  clean: Optional[CleanImages]


def make_samples(config: ml_collections.ConfigDict, tasks: Optional[str] = None, *,
                 source: Optional[str] = None, paired: Optional[str] = None,
                 num_images: int = 8, crop: Optional[int] = None, seed: Optional[int] = None,
                 mismatch: bool = False) -> EvalSamples:
  """The fixed samples for `tasks` (default the config's `data.tasks`), deterministic given
  these arguments and the config's data fields.

  The trainer's periodic evaluation and `python -m genlv_jax.evaluate` both call this, so that
  with the same settings they measure the same images with the same prompts. Each task's data
  is resolved as training resolves it (`plan_tasks`, `genlv_jax.data.task_sources`, which says
  in which order):

    - pairs (`data.paired`, `data.paired_root`, …; for a procedural task too): the pairs
      training holds out of them (`data.holdout`) are the test inputs;
    - its own or its domain's clean source (`data.task_sources`): the images training holds out
      of it (`open_own_clean_images`);
    - the generic clean source: `source`, default `data.source`, whose held-out images (or the
      tfds `data.eval_split`) are the test inputs when it is the training source, all of its
      images otherwise (`open_clean_images`);
    - no data (a paired task without folders, a domain task without its images): skipped, with
      the reason in `skipped`.

  `source` stands for `data.source` and `paired` for `data.paired` (explicit folders whose pairs
  are not the training ones: all their pairs are test inputs). `crop` defaults to
  `config.image_size`, `seed` to `config.seed`.
  """
  if num_images < 1 or (crop is not None and crop < 1):
    raise UserError("the number of images and the crop must be positive")
  crop = int(config.image_size) if crop is None else int(crop)
  seed = int(config.seed) if seed is None else int(seed)
  planned, skipped, training = plan_tasks(config, tasks, paired)
  holdout = int(config.data.holdout)
  clean = None
  if mismatch or any(d.kind == "clean" and not d.own_source for d in planned.values()):
    opened, eligible = open_clean_images(config, source)
    clean = CleanImages(opened, crop, num_images, seed, eligible)
  own: dict[str, CleanImages] = {}  # one per source spec, shared by the tasks of a domain
  out: dict[str, TaskSamples] = {}
  for name, d in planned.items():
    task = get_task(name)
    if d.kind == "paired":
      pairs = task_sources.open_pairs(d)
      # The training pairs: the ones training holds out; other folders: all of them.
      eligible = (holdout_indices(len(pairs), holdout)
                  if _same_pairs(d.pairs, training[name].pairs) else None)
      out[name] = paired_samples(task, pairs, crop, num_images, seed, eligible)
      out[name].origin = d.origin
      continue
    if d.own_source:
      if d.clean not in own:
        opened, eligible = open_own_clean_images(config, d.clean)
        own[d.clean] = CleanImages(opened, crop, num_images, seed, eligible)
      images, origin = own[d.clean], d.origin
    else:
      images = clean
      origin = f"source {source}" if source else d.origin
    out[name] = procedural_samples(task, images, seed)
    out[name].origin = origin
  return EvalSamples(out, skipped, clean)
