"""Paired (input, target) image folders for the tasks that need real data (host code; no jax).

The `paired_dataset` tasks of GLV-Bench (dehazing on RESIDE ITS, low-light enhancement on LOL,
complex deraining on Rain13K, photo retouching on FiveK, …) and the `model` tasks whose outputs
were precomputed (neural styles, depth) are fed from two folders, one of inputs and one of
targets, matched by file stem. They are configured per task:

    config.data.paired = ("dehazing=/data/ITS/hazy|/data/ITS/clear;"
                          "lowlight_enhancement=/data/LOL/low|/data/LOL/high")

or as a mapping `{task: "INPUT_DIR|TARGET_DIR"}` / `{task: {"input": DIR, "target": DIR}}`.

Matching: the path relative to each folder without its extension (`sub/0001`), so `0001.png`
pairs with `0001.jpg`. An input without an exact match is paired with the target whose stem is
the input's stem cut at a `_` or `-` (RESIDE names hazy images `1_1_0.9.png` after clear `1.png`;
several inputs may share one target). Inputs left without a target are reported in one warning.
An input whose exactly matching target cannot be read (not an image file) is left out too
(`unreadable_targets`, one warning), not paired with a shorter-named target instead.

Sizes: an input whose size differs from its target's by a common scale factor (a low-resolution
input of a super-resolution set: the same aspect ratio up to one pixel of rounding) is resized to
the target's size, said once in a warning. A pair whose aspect ratios differ is refused, like an
unreadable pair: resizing would distort it.

Two ways to read a pair. `read_pair(i)` (the training pipeline and evaluation) never fails on a
bad pair: it is skipped (counted in `skipped`, named once in a warning) and the next usable pair
is returned in its place, so that one corrupt file cannot stop a long training run.
`read_pair(i, substitute=False)` (fine-tuning, where every pair is named in a log) returns pair
`i` or raises `UnusablePairError` saying why, and skips nothing itself.
"""

from __future__ import annotations

import os
from typing import Mapping, Union

import cv2
import numpy as np
from absl import logging

from genlv_jax.data.image_sources import FolderSource, ImageSourceError, NoImagesError, decode_rgb


class UnusablePairError(ImageSourceError):
  """A pair that cannot be used as it is: a file that cannot be decoded, or an input and a
  target whose aspect ratios differ. `input_path`, `target_path` and `reason` say which and why."""

  def __init__(self, input_path: str, target_path: str, reason: str):
    super().__init__(f"{input_path} / {target_path}: {reason}")
    self.input_path, self.target_path, self.reason = input_path, target_path, reason


def _stem_key(root: str, path: str) -> str:
  return os.path.splitext(os.path.relpath(path, root))[0]


def same_aspect_ratio(a: tuple[int, int], b: tuple[int, int]) -> bool:
  """Whether two (height, width) sizes are one image at two scales: some scale factor takes the
  larger to the smaller with each side of the smaller within one pixel (the rounding of a
  downscaled copy, e.g. 255×191 for a 1021×767 image at 1/4)."""
  (h, w), (big_h, big_w) = sorted((tuple(a), tuple(b)), key=lambda s: s[0] * s[1])
  # The factors t = smaller / larger each side allows overlap.
  return max((h - 1) / big_h, (w - 1) / big_w) <= min((h + 1) / big_h, (w + 1) / big_w)


def _size(image: np.ndarray) -> str:
  return f"{image.shape[1]}x{image.shape[0]}"


def _prefixes(key: str):
  """`a/1_1_0.9` → `a/1_1`, `a/1` (cut at each `_` or `-` of the file name, longest first)."""
  head, name = os.path.split(key)
  for i in range(len(name) - 1, 0, -1):
    if name[i] in "_-":
      yield os.path.join(head, name[:i])


class PairedFolderSource:
  """(input, target) pairs from two folders matched by file stem; see the module docstring.

  `pairs` are the matched (input path, target path)s, `unmatched` the inputs without a target,
  `unreadable_targets` the (input, target) whose target is not an image file, `skipped` the
  unreadable files found when listing plus the inputs of the pairs `read_pair` has skipped
  since.
  """

  def __init__(self, input_dir: str, target_dir: str):
    inputs, targets = FolderSource(input_dir), FolderSource(target_dir)
    self.input_dir, self.target_dir = input_dir, target_dir
    by_key = {_stem_key(target_dir, p): p for p in targets.paths}
    unreadable = {_stem_key(target_dir, p): p for p in targets.skipped}
    pairs, unmatched, unreadable_targets = [], [], []
    for path in inputs.paths:
      key = _stem_key(input_dir, path)
      if key not in by_key and key in unreadable:
        # Its own target is unreadable: a shorter-named target would be another image's.
        unreadable_targets.append((path, unreadable[key]))
        continue
      match = by_key.get(key) or next((by_key[k] for k in _prefixes(key) if k in by_key), None)
      if match is None:
        unmatched.append(path)
      else:
        pairs.append((path, match))
    if unmatched:
      logging.warning("%d of %d inputs under %s have no target under %s (e.g. %s); skipped",
                      len(unmatched), len(inputs), input_dir, target_dir, unmatched[0])
    if unreadable_targets:
      logging.warning("%d of %d inputs under %s have an unreadable target (e.g. %s / %s); "
                      "skipped", len(unreadable_targets), len(inputs), input_dir,
                      *unreadable_targets[0])
    if not pairs:
      raise NoImagesError(f"no input/target pairs matched by file stem between {input_dir} "
                          f"and {target_dir}")
    self.pairs: tuple[tuple[str, str], ...] = tuple(pairs)
    self.unmatched: tuple[str, ...] = tuple(unmatched)
    self.unreadable_targets: tuple[tuple[str, str], ...] = tuple(unreadable_targets)
    self.skipped: list[str] = list(inputs.skipped) + list(targets.skipped)
    # Reads that resized an input to its target's size (the first one is named in a warning).
    self.num_resized_reads = 0

  @property
  def num_skipped(self) -> int:
    return len(self.skipped)

  def __len__(self) -> int:
    return len(self.pairs)

  def read_pair(self, index: int, substitute: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Pair `index` as (input, target) arrays of equal height and width (uint8 or float32 RGB).

    With `substitute` (the default), a pair that cannot be used is skipped (its input added to
    `skipped`, named once in a warning) and the next usable pair is returned in its place;
    NoImagesError when none is left. With `substitute=False`, pair `index` itself or
    UnusablePairError, and nothing is added to `skipped` (the caller names the pair).
    """
    n = len(self.pairs)
    if not -n <= index < n:
      raise IndexError(f"paired source has {n} pairs, index {index}")
    if not substitute:
      return self._load(index)
    for k in range(n):
      inp_path, _ = self.pairs[(index + k) % n]
      if inp_path in self.skipped:
        continue
      try:
        return self._load((index + k) % n)
      except UnusablePairError as e:
        self.skipped.append(inp_path)
        logging.warning("skipping pair %s", e)
    raise NoImagesError(f"no readable pairs under {self.input_dir} and {self.target_dir}")

  def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Decodes pair `index`, resizing an input of the target's aspect ratio to its size."""
    inp_path, tgt_path = self.pairs[index]
    images = []
    for role, path in (("input", inp_path), ("target", tgt_path)):
      try:
        images.append(decode_rgb(path))
      except Exception as e:  # pylint: disable=broad-except
        raise UnusablePairError(inp_path, tgt_path, f"unreadable {role}: {e}") from e
    inp, tgt = images
    if inp.shape[:2] == tgt.shape[:2]:
      return inp, tgt
    if not same_aspect_ratio(inp.shape[:2], tgt.shape[:2]):
      raise UnusablePairError(
          inp_path, tgt_path, f"input {_size(inp)} and target {_size(tgt)} differ in aspect "
          "ratio (resizing would distort the pair)")
    if not self.num_resized_reads:
      logging.warning("resizing inputs to their targets' size (same aspect ratio: e.g. a "
                      "low-resolution input), first %s: %s -> %s", inp_path, _size(inp),
                      _size(tgt))
    self.num_resized_reads += 1
    h, w = tgt.shape[:2]
    shrink = inp.shape[0] * inp.shape[1] > h * w
    inp = cv2.resize(inp, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return inp, tgt


PairedSpec = Union[str, Mapping[str, object], None]


def _split_dirs(task: str, value: object) -> tuple[str, str]:
  if isinstance(value, Mapping) or hasattr(value, "items"):  # dict or ConfigDict
    value = dict(value.items())
    dirs = (str(value.get("input", "")), str(value.get("target", "")))
  else:
    dirs = tuple(str(value).split("|")) if "|" in str(value) else ("", "")
  if len(dirs) != 2 or not all(d.strip() for d in dirs):
    raise ImageSourceError(f"paired data for {task!r} must be 'INPUT_DIR|TARGET_DIR', got "
                           f"{value!r}")
  return os.path.expanduser(dirs[0].strip()), os.path.expanduser(dirs[1].strip())


def parse_paired(spec: PairedSpec) -> dict[str, tuple[str, str]]:
  """Parses `config.data.paired` into {task name as written: (input_dir, target_dir)}.

  Accepts "" / None (nothing), "TASK=IN|TGT;TASK2=IN|TGT", or a mapping (see module docstring).
  Raises ImageSourceError (a ValueError) for a malformed entry.
  """
  if not spec:
    return {}
  if isinstance(spec, Mapping) or hasattr(spec, "items"):
    items = [(str(k), v) for k, v in spec.items()]
  else:
    items = []
    for entry in str(spec).split(";"):
      if not entry.strip():
        continue
      if "=" not in entry:
        raise ImageSourceError(f"paired data entry {entry!r} must be TASK=INPUT_DIR|TARGET_DIR")
      task, value = entry.split("=", 1)
      items.append((task.strip(), value))
  return {task: _split_dirs(task, value) for task, value in items}
