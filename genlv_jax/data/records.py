"""Training records: one quadruplet per global sample position, a pure function of (seed, g)
(host code). Used by `genlv_jax.data.input_pipeline`, which shards, batches and prefetches them.

A record is made from an independent generator seeded with (seed, g): it draws the task (by the
configured weights), the prompt image (another image than the input), the crops and the
severity; the input image is entry g of the epoch-wise shuffled training images (a task with
its own clean source or with pairs draws its input at random from them). A task with pairs
reads them, a procedural one included (the pairs replace its synthesis). Sources that skip
unreadable images report their names' ids with the record (`_skipped`), so that the iterator
can count them across worker processes.

Crops (`data.crop`): "random" takes the same random size×size window of the images of a pair
(upscaling those smaller than the crop); "resize" resizes each whole image to size×size as the
authors' training loader does (chxy95/GenLV, extended_version/dataset/genlv_100_dataloader.py:
`cv2.resize(img, (gt_size, gt_size))` with INTER_CUBIC when a side is below gt_size, else
INTER_AREA; the aspect ratio is not kept).
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from genlv_jax.data.task_selection import task_vocabulary
from genlv_jax.tasks import registry

SKIP_SLOTS = 4  # unreadable items a record can report (ids of their names)


def _at_least(image: np.ndarray, size: int) -> np.ndarray:
  """Upscales (bicubic) an image whose shorter side is below `size` so that it fits a crop."""
  h, w = image.shape[:2]
  if min(h, w) >= size:
    return image
  scale = size / min(h, w)
  out = cv2.resize(image, (max(size, round(w * scale)), max(size, round(h * scale))),
                   interpolation=cv2.INTER_CUBIC)
  return np.clip(out, 0.0, 1.0) if out.dtype != np.uint8 else out


def _window(image: np.ndarray, y: int, x: int, size: int) -> np.ndarray:
  """A size×size float32 copy of `image` at (y, x)."""
  crop = image[y:y + size, x:x + size]
  if crop.dtype == np.uint8:  # one pass: convert and scale
    return np.multiply(crop, np.float32(1 / 255.0), dtype=np.float32)
  return np.array(crop, dtype=np.float32)  # always a copy: sources may hand out cached arrays


def random_crop(images: Sequence[np.ndarray], size: int,
                rng: np.random.Generator) -> list[np.ndarray]:
  """The same random size×size window of each image (all of one height and width) as float32;
  images smaller than the crop are upscaled first."""
  images = [_at_least(im, size) for im in images]
  h, w = images[0].shape[:2]
  y, x = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
  return [_window(im, y, x, size) for im in images]


def resize_whole(images: Sequence[np.ndarray], size: int) -> list[np.ndarray]:
  """Each image resized whole to size×size as float32, the authors' way: INTER_CUBIC when its
  height or width is below `size`, INTER_AREA otherwise (uint8 images are resized as uint8,
  as theirs are, then scaled)."""
  out = []
  for image in images:
    h, w = image.shape[:2]
    if (h, w) != (size, size):
      interpolation = cv2.INTER_CUBIC if h < size or w < size else cv2.INTER_AREA
      image = cv2.resize(image, (size, size), interpolation=interpolation)
      if image.dtype != np.uint8:  # cubic overshoots; uint8 saturates by itself
        image = np.clip(image, 0.0, 1.0)
    out.append(_window(image, 0, 0, size))
  return out


def center_crop(images: Sequence[np.ndarray], size: int) -> list[np.ndarray]:
  """The central size×size window of each image as float32 (upscaled first when small)."""
  images = [_at_least(im, size) for im in images]
  h, w = images[0].shape[:2]
  return [_window(im, (h - size) // 2, (w - size) // 2, size) for im in images]


def holdout_indices(n: int, holdout: int) -> np.ndarray:
  """Evenly spaced indices of the images kept out of training for evaluation.

  `holdout` < 0 picks min(64, n // 10) when n >= 20 and none otherwise; at least two images
  always stay for training (a quadruplet needs two clean images).
  """
  k = (min(64, n // 10) if n >= 20 else 0) if holdout < 0 else min(holdout, max(0, n - 2))
  if k <= 0:
    return np.zeros(0, np.int64)
  return np.unique(((np.arange(k) + 0.5) * n / k).astype(np.int64))



# ---- records -------------------------------------------------------------------------------

@dataclasses.dataclass
class Split:
  """A source and the indices of it that one side (train or eval) may use.

  A source with `groups` (one label per item: a style reference, a filter) has its prompt
  drawn from the input's group when the split holds another item of it."""
  source: Any
  indices: np.ndarray
  _members: Optional[dict] = dataclasses.field(default=None, init=False, repr=False)

  def partners(self, index: int) -> Optional[np.ndarray]:
    """The split's other items in `index`'s group, or None for an ungrouped source."""
    groups = getattr(self.source, "groups", None)
    if groups is None:
      return None
    if self._members is None:
      members: dict[Any, list[int]] = {}
      for i in self.indices:
        members.setdefault(groups[int(i)], []).append(int(i))
      self._members = {k: np.asarray(v, np.int64) for k, v in members.items()}
    same = self._members.get(groups[int(index)], np.zeros(0, np.int64))
    return same[same != index]


@dataclasses.dataclass
class Sources:
  """The generic clean-image source (None when no task synthesises from it), the paired
  sources by task name (procedural tasks with pairs included) and the clean sources of the
  tasks that have their own (`data.task_sources`), each split into training and evaluation
  indices."""
  clean: Optional[Split]
  clean_eval: Optional[Split]
  paired: dict[str, Split]
  paired_eval: dict[str, Split]
  own: dict[str, Split] = dataclasses.field(default_factory=dict)
  own_eval: dict[str, Split] = dataclasses.field(default_factory=dict)


def skip_id(name: str) -> int:
  """A number for an unreadable item's name (file path or tfds record), so that records can
  report it in a fixed-size array and the iterator count distinct items across workers."""
  return zlib.crc32(name.encode())


class SkipLog:
  """Collects the names a source newly skipped while one record was made."""

  def __init__(self):
    self.ids: list[int] = []

  def read(self, source, method: str, index: int):
    """`source.<method>(index)`, noting the items it skipped on the way."""
    before = len(source.skipped)
    out = getattr(source, method)(index)
    self.ids.extend(skip_id(name) for name in source.skipped[before:])
    return out

  def array(self) -> np.ndarray:
    """The noted ids, -1 padded to SKIP_SLOTS."""
    out = np.full(SKIP_SLOTS, -1, np.int64)
    ids = self.ids[:SKIP_SLOTS]
    out[:len(ids)] = ids
    return out


def _two_distinct(rng: np.random.Generator, indices: np.ndarray,
                  first: Optional[int] = None) -> tuple[int, int]:
  """(first or a random entry of `indices`, another entry of `indices`) — two source indices."""
  n = len(indices)
  a = int(rng.integers(n)) if first is None else first
  b = int(rng.integers(n - 1))
  return int(indices[a]), int(indices[b + (b >= a)])


def _input_and_prompt(rng: np.random.Generator, split: Split,
                      first: Optional[int]) -> tuple[int, int]:
  """(input, prompt) source indices: two distinct entries of the split, the prompt from the
  input's group when the source has groups and the group another entry."""
  if getattr(split.source, "groups", None) is None:
    return _two_distinct(rng, split.indices, first)
  a = int(rng.integers(len(split.indices))) if first is None else first
  inp = int(split.indices[a])
  partners = split.partners(inp)
  if len(partners):
    return inp, int(partners[rng.integers(len(partners))])
  return _two_distinct(rng, split.indices, a)


CROPS = ("random", "resize")


def quadruplet(task: registry.Task, split: Split, rng: np.random.Generator, size: int,
               severity: float, skips: SkipLog, input_slot: Optional[int] = None,
               centered: bool = False, out: Optional[dict[str, np.ndarray]] = None,
               crop: str = "random") -> dict[str, np.ndarray]:
  """One quadruplet of `task`: the input pair from entry `input_slot` of `split` (random when
  None), the prompt pair from another entry; written into `out`'s arrays when given. A split
  of pairs (its source has `read_pair`) is read as it is, whatever the task (pairs given for a
  procedural task replace its synthesis); `task` synthesises from a split of clean images.
  `crop`: "random" or "resize" (module docstring); `centered` takes the central window."""
  inp_index, prompt_index = _input_and_prompt(rng, split, input_slot)

  def crop_fn(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    if centered:
      return center_crop(images, size)
    if crop == "resize":
      return resize_whole(images, size)
    return random_crop(images, size, rng)

  if not hasattr(split.source, "read_pair"):
    input_clean, = crop_fn([skips.read(split.source, "read_rgb", inp_index)])
    prompt_clean, = crop_fn([skips.read(split.source, "read_rgb", prompt_index)])
    # The crops are fresh float32 arrays in [0, 1]: no defensive copy needed.
    return registry.make_quadruplet(task, prompt_clean, input_clean, severity, rng, out=out,
                                    copy_clean=False)
  inp, target = crop_fn(skips.read(split.source, "read_pair", inp_index))
  prompt_source, prompt_target = crop_fn(skips.read(split.source, "read_pair", prompt_index))
  q = {"prompt_source": prompt_source, "prompt_target": prompt_target, "input": inp,
       "target": target}
  for key, array in (out or {}).items():
    np.copyto(array, q[key])
  return q


IMAGE_KEYS = ("prompt_source", "prompt_target", "input", "target")


@functools.lru_cache(maxsize=4)  # thread-safe; a worker sees at most two epochs at a time
def epoch_order(seed: int, n: int, epoch: int) -> np.ndarray:
  """The permutation of n training images for one epoch. (A numpy permutation, cached: grain's
  index shuffle costs ~0.5 ms a call through its binding; this ~20 ms per 1M images an epoch.)"""
  return np.random.default_rng([seed, 0x5EED, epoch]).permutation(n)


class MakeRecord:
  """Global sample position g → one training record, a pure function of (seed, g)."""

  def __init__(self, sources: Sources, task_names: Sequence[str], probabilities: np.ndarray,
               seed: int, image_size: int, crop: str = "random",
               severity_levels: Optional[Sequence[Optional[np.ndarray]]] = None):
    """`crop`: "random" or "resize"; `severity_levels[k]`: the severities task k is drawn from
    (None: uniform in [0, 1])."""
    if crop not in CROPS:
      raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    self._sources = sources
    self._tasks = tuple(registry.get_task(n) for n in task_names)
    vocabulary = task_vocabulary()
    self._task_ids = tuple(np.int32(vocabulary.index(n)) for n in task_names)
    self._cumulative = np.cumsum(probabilities)
    self._seed = seed % 2**32
    self._size = image_size
    self._crop = crop
    self._levels = tuple(severity_levels or (None,) * len(self._tasks))
    self._num_clean = len(sources.clean.indices) if sources.clean else 1

  def _slot(self, g: int) -> int:
    """Entry of the training images that is the input of sample g: epoch g // n visits them
    in its own random order."""
    epoch, position = divmod(g, self._num_clean)
    return int(epoch_order(self._seed, self._num_clean, epoch)[position])

  @property
  def image_size(self) -> int:
    return self._size

  def __call__(self, g: int, out: Optional[dict[str, np.ndarray]] = None
               ) -> dict[str, np.ndarray]:
    """Record g (its images written into `out`'s arrays when given)."""
    g = int(g)
    rng = np.random.default_rng([self._seed, g])
    k = int(np.searchsorted(self._cumulative, rng.random() * self._cumulative[-1], "right"))
    k = min(k, len(self._tasks) - 1)
    task, skips = self._tasks[k], SkipLog()
    # Pairs first: given for a procedural task, they replace its synthesis.
    if task.name in self._sources.paired:
      split, slot = self._sources.paired[task.name], None
    elif task.name in self._sources.own:
      split, slot = self._sources.own[task.name], None
    else:
      split, slot = self._sources.clean, self._slot(g)
    severity = float(rng.random())
    levels = self._levels[k]
    if levels is not None:  # the same draw, mapped onto the task's discrete levels
      severity = float(levels[min(int(severity * len(levels)), len(levels) - 1)])
    record = quadruplet(task, split, rng, self._size, severity, skips, slot, out=out,
                        crop=self._crop)
    record["task_id"] = self._task_ids[k]
    record["_skipped"] = skips.array()
    return record


@dataclasses.dataclass(frozen=True)
class MakeBatch:
  """Global positions → their records stacked: `prompt_source`, `prompt_target`, `input`,
  `target` float32 [b, S, S, 3], `task_id` int32 [b], `_skipped` int64 [b, SKIP_SLOTS]. Each
  record's images are written straight into its slot of the batch (instead of being made
  apart and stacked: 3 MB less copying per 256² sample)."""
  make_record: MakeRecord

  def __call__(self, positions: Sequence[int]) -> dict[str, np.ndarray]:
    b, size = len(positions), self.make_record.image_size
    batch = {k: np.empty((b, size, size, 3), np.float32) for k in IMAGE_KEYS}
    task_id = np.empty(b, np.int32)
    skipped = np.empty((b, SKIP_SLOTS), np.int64)
    for j, g in enumerate(positions):
      record = self.make_record(g, out={k: batch[k][j] for k in IMAGE_KEYS})
      task_id[j], skipped[j] = record["task_id"], record["_skipped"]
    return {**batch, "task_id": task_id, "_skipped": skipped}
