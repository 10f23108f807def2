"""What each sub-command of `python -m genlv_jax.data.prepare` computes (host code; no Beam):
the launcher plans the items of each task, the workers turn one item into its records.

Every random draw comes from a generator seeded with (`--seed`, task, item key), so a pair
does not depend on which worker makes it, in which order, or how often (Beam retries).
Severities: tasks with a severity knob draw one of `levels` evenly spaced severities (0, 0.25,
…, 1 for five levels, as the authors' loader and test set draw ImageNet-C severities 1–5), or a
uniform one with `levels` 0; tasks without a knob record none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
from typing import Any, Callable, Optional

import cv2
import numpy as np

from genlv_jax.data.paired_sources import same_aspect_ratio
from genlv_jax.data.prepare import manifest
from genlv_jax.data.prepare.items import SourceItems, UnreadableItemError, as_float
from genlv_jax.data.prepare.shards import encode_png, encode_record
from genlv_jax.errors import UserError
from genlv_jax.tasks import get_task


class SkipItem(UnreadableItemError):
  """An item that cannot give a pair (a pair of other aspect ratios, a bad teacher output)."""


@dataclasses.dataclass
class Unit:
  """One task's items (tab-separated lines, in output order) and the notes of its planning."""
  task: str
  items: list[str]
  split: str = "train"
  notes: list[str] = dataclasses.field(default_factory=list)


def item_rng(seed: int, task: str, *parts: str) -> np.random.Generator:
  """A generator that depends on (seed, task, parts) only: SHA-256 words, not Python's salted
  `hash`, so every process and machine draws the same."""
  digest = hashlib.sha256("\x1f".join((task, *parts)).encode()).digest()
  return np.random.default_rng([int(seed), *np.frombuffer(digest[:16], np.uint32).tolist()])


def draw_severity(task, rng: np.random.Generator, levels: int) -> tuple[Optional[int], float]:
  """(level or None, severity) of one pair: none for a task without a knob."""
  if task.severity.fixed:
    return None, 0.0
  if levels <= 0:
    return None, float(rng.uniform())
  level = int(rng.integers(levels))
  return level, (level / (levels - 1) if levels > 1 else 0.5)


def pair_record(task: str, key: str, pair, bit_depth: int, **fields) -> bytes:
  """One record of an (input, target) pair of float images (`shards.encode_record`)."""
  return encode_record(task, key, [("input", encode_png(pair[0], bit_depth)),
                                   ("target", encode_png(pair[1], bit_depth))], **fields)


@dataclasses.dataclass
class SourceJob:
  """Options shared by the jobs that read a clean-image source."""
  source: SourceItems
  tasks: list[str]
  resize: int = 0
  bit_depth: int = 8
  seed: int = 0
  limit: int = 0

  def source_keys(self) -> list[str]:
    keys = self.source.keys()
    return keys[:self.limit] if self.limit else keys

  def base_settings(self) -> dict:
    return {"source": self.source.spec, "split": self.source.split,
            "image_key": self.source.image_key, "resize": self.resize,
            "bit_depth": self.bit_depth, "seed": self.seed, "limit": self.limit}

  def setup(self) -> None:
    pass

  @staticmethod
  def key(line: str) -> str:
    return line.split("\t")[0]

  def read(self, key: str) -> np.ndarray:
    return as_float(self.source.read(key), self.resize)


@dataclasses.dataclass
class HeavyJob(SourceJob):
  """`heavy`: procedural pairs precomputed at severities drawn per (task, image key)."""
  command = "heavy"
  levels: int = 5

  def plan(self) -> list[Unit]:
    keys = self.source_keys()
    return [Unit(task, list(keys)) for task in self.tasks]

  def settings(self) -> dict:
    return {"command": self.command, **self.base_settings(), "levels": self.levels}

  def make(self, task_name: str, line: str) -> list[bytes]:
    task = get_task(task_name)
    image = self.read(line)
    rng = item_rng(self.seed, task.name, line)
    level, severity = draw_severity(task, rng, self.levels)
    pair = task.synthesize(image, severity, rng)
    return [pair_record(task.name, line, pair, self.bit_depth, level=level,
                        severity=None if task.severity.fixed else severity)]


def load_teacher(spec: str) -> Callable[[np.ndarray], Any]:
  """`module:callable` (or `module:object.method`) imported and checked to be callable."""
  module_name, _, attribute = spec.partition(":")
  if not module_name or not attribute:
    raise UserError(f"--teacher {spec!r}: expected MODULE:CALLABLE, e.g. my_models:depth")
  try:
    obj: Any = importlib.import_module(module_name)
  except ImportError as e:
    raise UserError(f"--teacher {spec!r}: cannot import {module_name}: {e}") from None
  for part in attribute.split("."):
    if not hasattr(obj, part):
      raise UserError(f"--teacher {spec!r}: {module_name} has no {attribute}")
    obj = getattr(obj, part)
  if not callable(obj):
    raise UserError(f"--teacher {spec!r}: {attribute} is not callable")
  return obj


def check_teacher_output(output: Any, image: np.ndarray) -> np.ndarray:
  """The teacher's output as HxWx3 float32 in [0, 1] (a map HxW or HxWx1 is replicated).

  Raises:
    SkipItem: not an array of the image's height and width, or not finite.
  """
  out = np.asarray(output)
  if out.ndim == 3 and out.shape[2] == 1:
    out = out[:, :, 0]
  if out.ndim == 2:
    out = np.repeat(out[:, :, None], 3, axis=2)
  if out.ndim != 3 or out.shape != image.shape or not np.issubdtype(out.dtype, np.number):
    raise SkipItem(f"the teacher returned {out.dtype} {out.shape} for a {image.shape} image; "
                   "expected float HxWx3 (or HxW) in [0, 1]")
  if out.dtype == np.uint8:
    out = out.astype(np.float32) / 255.0
  if not np.all(np.isfinite(out)):
    raise SkipItem("the teacher returned non-finite values")
  return np.clip(out.astype(np.float32), 0.0, 1.0)


@dataclasses.dataclass
class TargetsJob(SourceJob):
  """`targets`: (image, teacher(image)) for a `model` task, teacher = any Python callable."""
  command = "targets"
  teacher: str = ""

  def __post_init__(self):
    self._teacher = None

  def __getstate__(self) -> dict:
    state = dict(self.__dict__)
    state["_teacher"] = None  # imported again in each worker
    return state

  def setup(self) -> None:
    if self._teacher is None:
      self._teacher = load_teacher(self.teacher)

  def plan(self) -> list[Unit]:
    return [Unit(task, list(self.source_keys())) for task in self.tasks]

  def settings(self) -> dict:
    return {"command": self.command, **self.base_settings(), "teacher": self.teacher}

  def check_teacher(self) -> None:
    """Runs the teacher on the first readable item, so that a teacher that returns the wrong
    thing stops the launcher with one line instead of skipping every item on the workers."""
    self.setup()
    for key in self.source_keys()[:8]:
      try:
        image = self.read(key)
      except UnreadableItemError:
        continue
      try:
        check_teacher_output(self._teacher(image.copy()), image)
      except SkipItem as e:
        raise UserError(f"--teacher {self.teacher} on {key}: {e}") from None
      return

  def make(self, task_name: str, line: str) -> list[bytes]:
    self.setup()
    image = self.read(line)
    target = check_teacher_output(self._teacher(image.copy()), image)
    return [pair_record(task_name, line, (image, target), self.bit_depth)]


@dataclasses.dataclass
class PairedJob:
  """`paired`: pairs of a dataset folder in one of the known layouts (`manifest`)."""
  command = "paired"
  root: str
  tasks: list[str]
  resize: int = 0
  bit_depth: int = 8
  limit: int = 0

  def plan(self) -> list[Unit]:
    units = []
    for task in self.tasks:
      pairs, unmatched, layouts = manifest.list_pairs(self.root, task)
      pairs = pairs[:self.limit] if self.limit else pairs
      repeated = len({i for i, _ in pairs}) < len(pairs)  # one input, several targets
      lines = [f"{i}|{t}\t{i}\t{t}" if repeated else f"{i}\t{i}\t{t}" for i, t in pairs]
      notes = [f"layout: {', '.join(l.describe(self.root) for l in layouts)}"]
      if unmatched:
        notes.append(f"{len(unmatched)} input(s) without a target left out (e.g. {unmatched[0]})")
      units.append(Unit(task, lines, notes=notes))
    return units

  def settings(self) -> dict:
    return {"command": self.command, "root": self.root, "resize": self.resize,
            "bit_depth": self.bit_depth, "limit": self.limit}

  def setup(self) -> None:
    pass

  @staticmethod
  def key(line: str) -> str:
    return line.split("\t")[0]

  def make(self, task_name: str, line: str) -> list[bytes]:
    key, input_path, target_path = line.split("\t")
    folder, images = SourceItems(f"folder:{self.root}"), []
    for role, relative in (("input", input_path), ("target", target_path)):
      try:
        images.append(folder.read(relative))
      except UnreadableItemError as e:
        raise UnreadableItemError(f"unreadable {role} {relative}: {e}") from None
    inp, tgt = images
    # What a usable pair is, as `paired_sources.PairedFolderSource` decides it for training.
    if inp.shape[:2] != tgt.shape[:2]:
      if not same_aspect_ratio(inp.shape[:2], tgt.shape[:2]):
        raise SkipItem(f"input {inp.shape[1]}x{inp.shape[0]} and target "
                       f"{tgt.shape[1]}x{tgt.shape[0]} differ in aspect ratio")
      h, w = tgt.shape[:2]
      shrink = inp.shape[0] * inp.shape[1] > h * w
      inp = cv2.resize(inp, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    pair = (as_float(inp, self.resize), as_float(tgt, self.resize))
    return [pair_record(task_name, key, pair, self.bit_depth)]

