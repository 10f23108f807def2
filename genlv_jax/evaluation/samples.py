"""The fixed evaluation samples: test inputs, targets and K prompt pairs per task.

For each task, N test images are paired with K prompt pairs, each made from another clean
image. Procedural tasks are synthesised with fixed seeds: input i has severity (i + 0.5) / N
and its prompts the same severity and shared parameters (a filter choice), so that only the
prompt varies with k. Paired tasks take N pairs as tests and another pair as prompt k. Test
inputs are images held out of training when the source is the training source; prompts never
show a test input.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Callable, Mapping, Optional, Sequence

import ml_collections
import numpy as np
from absl import logging

from genlv_jax.data import image_sources, paired_sources
from genlv_jax.data.records import center_crop, holdout_indices
from genlv_jax.data.task_selection import TASK_SETS
from genlv_jax.errors import UserError
from genlv_jax.tasks import get_task


def resolve_tasks(spec: str, paired: Mapping[str, object]) -> tuple[list[str], dict[str, str]]:
  """(evaluable task names, {skipped task: why}) for a comma-separated list of task names,
  paper names and sets (`acmmm30`, `procedural`, `all`)."""
  names: dict[str, None] = {}
  for item in (s.strip() for s in spec.split(",")):
    if not item:
      continue
    if item.lower() in TASK_SETS:
      names.update(dict.fromkeys(TASK_SETS[item.lower()]()))
      continue
    try:
      names[get_task(item).name] = None
    except KeyError as e:
      raise UserError(str(e.args[0])) from None
  if not names:
    raise UserError(f"tasks {spec!r} select no task")
  paired_names = {get_task(k).name for k in paired}
  evaluable, skipped = [], {}
  for name in names:
    task = get_task(name)
    if task.procedural or name in paired_names:
      evaluable.append(name)
    else:
      skipped[name] = (f"{task.source} task ({task.dataset}): give its folders with --paired "
                       f"'{name}=INPUT_DIR|TARGET_DIR'")
  return evaluable, skipped


def _evenly(indices: np.ndarray, k: int) -> np.ndarray:
  return indices[(np.arange(k) * len(indices)) // k]


class TaskSamples:
  """The fixed test inputs/targets of one task and, per prompt index k, its prompt pairs."""

  def __init__(self, task, inputs: np.ndarray, targets: np.ndarray,
               make_prompts: Callable[[int], tuple[np.ndarray, np.ndarray]]):
    self.task, self.inputs, self.targets = task, inputs, targets
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
                     make_prompts)


def paired_samples(task, source, crop: int, num_images: int, seed: int,
                   eligible: Optional[np.ndarray] = None) -> TaskSamples:
  """Samples from an input/target folder pair: N pairs (among `eligible`, default all) as
  tests, prompt k another pair."""
  n = len(source)
  if n < 2:
    raise UserError(f"paired data of {task.name} has {n} pair(s); the prompt needs another")
  eligible = np.arange(n) if eligible is None or len(eligible) == 0 else np.asarray(eligible)
  num_images = min(num_images, len(eligible), n - 1)
  tests = _evenly(eligible, num_images)
  pool = np.setdiff1d(np.arange(n), tests)
  pool = pool[np.random.default_rng([seed, 0x9E1]).permutation(len(pool))]
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

  read_tests, unusable = [], []
  for i in tests:
    try:
      read_tests.append(read(i))
    except paired_sources.UnusablePairError as e:
      unusable.append(str(e))
  if unusable:
    logging.warning("%s: %d test pair(s) left out, unusable: %s", task.name, len(unusable),
                    "; ".join(unusable))
  if not read_tests:
    raise UserError(f"no usable test pair for {task.name}: {unusable[0]}")
  inputs, targets = zip(*read_tests)
  num_images = len(inputs)

  def make_prompts(k: int):
    # Prompt k is pool entry k; an unusable one passes to the next entry, said in a warning.
    for offset in range(len(pool)):
      index = pool[(k + offset) % len(pool)]
      try:
        ps, pt = read(index)
      except paired_sources.UnusablePairError as e:
        logging.warning("%s: prompt pair %d unusable (%s); using the next", task.name,
                        int(index), e)
        continue
      return np.repeat(ps[None], num_images, 0), np.repeat(pt[None], num_images, 0)
    raise UserError(f"no usable prompt pair for {task.name}")

  return TaskSamples(task, np.stack(inputs), np.stack(targets), make_prompts)


def needs_clean_images(names: Sequence[str], mismatch: bool = False) -> bool:
  """Whether an evaluation of `names` reads the clean-image source."""
  return mismatch or any(get_task(n).procedural for n in names)


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
  opened = image_sources.parse_source(spec, split=str(data.split), **options)
  eligible = holdout_indices(len(opened), int(data.holdout))
  if len(eligible) == 0:
    logging.warning("no images held out of %s (source too small or data.holdout=0): test "
                    "inputs are training images", spec)
    return opened, None
  return opened, eligible


@dataclasses.dataclass
class EvalSamples:
  """The fixed samples of an evaluation: per task, and the clean images they came from."""
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
  with the same settings they measure the same images with the same prompts. `source` and
  `paired` default to the config's (`data.source`, `data.paired`): held-out images and pairs of
  the training data are the test inputs (`open_clean_images`). `crop` defaults to
  `config.image_size`, `seed` to `config.seed`.
  """
  if num_images < 1 or (crop is not None and crop < 1):
    raise UserError("the number of images and the crop must be positive")
  crop = int(config.image_size) if crop is None else int(crop)
  seed = int(config.seed) if seed is None else int(seed)
  configured = {get_task(k).name: v
                for k, v in paired_sources.parse_paired(config.data.paired).items()}
  dirs = configured if paired is None else {
      get_task(k).name: v for k, v in paired_sources.parse_paired(paired).items()}
  names, skipped = resolve_tasks(tasks or str(config.data.tasks), dirs)
  clean = None
  if needs_clean_images(names, mismatch):
    opened, eligible = open_clean_images(config, source)
    clean = CleanImages(opened, crop, num_images, seed, eligible)
  out: dict[str, TaskSamples] = {}
  for name in names:
    task = get_task(name)
    if task.procedural:
      out[name] = procedural_samples(task, clean, seed)
      continue
    pairs = paired_sources.PairedFolderSource(*dirs[name])
    eligible = (holdout_indices(len(pairs), int(config.data.holdout))
                if configured.get(name) == dirs[name] else None)
    out[name] = paired_samples(task, pairs, crop, num_images, seed, eligible)
  return EvalSamples(out, skipped, clean)
