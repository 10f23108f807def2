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
"""

from __future__ import annotations

import os
from typing import Mapping, Union

import cv2
import numpy as np
from absl import logging

from genlv_jax.data.image_sources import FolderSource, ImageSourceError, NoImagesError, decode_rgb


def _stem_key(root: str, path: str) -> str:
  return os.path.splitext(os.path.relpath(path, root))[0]


def _prefixes(key: str):
  """`a/1_1_0.9` → `a/1_1`, `a/1` (cut at each `_` or `-` of the file name, longest first)."""
  head, name = os.path.split(key)
  for i in range(len(name) - 1, 0, -1):
    if name[i] in "_-":
      yield os.path.join(head, name[:i])


class PairedFolderSource:
  """(input, target) pairs from two folders matched by file stem; see the module docstring.

  `read_pair(i)` returns both images (uint8 or float32 RGB, the input resized to the target's
  size when they differ, e.g. a low-resolution input). A pair with an unreadable file is
  skipped (counted in `skipped`, named once in a warning) and the next pair returned instead.
  """

  def __init__(self, input_dir: str, target_dir: str):
    inputs, targets = FolderSource(input_dir), FolderSource(target_dir)
    self.input_dir, self.target_dir = input_dir, target_dir
    by_key = {_stem_key(target_dir, p): p for p in targets.paths}
    pairs, unmatched = [], []
    for path in inputs.paths:
      key = _stem_key(input_dir, path)
      match = by_key.get(key) or next((by_key[k] for k in _prefixes(key) if k in by_key), None)
      if match is None:
        unmatched.append(path)
      else:
        pairs.append((path, match))
    if unmatched:
      logging.warning("%d of %d inputs under %s have no target under %s (e.g. %s); skipped",
                      len(unmatched), len(inputs), input_dir, target_dir, unmatched[0])
    if not pairs:
      raise NoImagesError(f"no input/target pairs matched by file stem between {input_dir} "
                          f"and {target_dir}")
    self.pairs: tuple[tuple[str, str], ...] = tuple(pairs)
    self.skipped: list[str] = list(inputs.skipped) + list(targets.skipped)

  @property
  def num_skipped(self) -> int:
    return len(self.skipped)

  def __len__(self) -> int:
    return len(self.pairs)

  def read_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair `index` as (input, target) arrays of equal height and width."""
    n = len(self.pairs)
    if not -n <= index < n:
      raise IndexError(f"paired source has {n} pairs, index {index}")
    for k in range(n):
      inp_path, tgt_path = self.pairs[(index + k) % n]
      if inp_path in self.skipped:
        continue
      try:
        inp, tgt = decode_rgb(inp_path), decode_rgb(tgt_path)
      except Exception as e:  # pylint: disable=broad-except
        self.skipped.append(inp_path)
        logging.warning("skipping unreadable pair %s / %s: %s", inp_path, tgt_path, e)
        continue
      if inp.shape[:2] != tgt.shape[:2]:
        h, w = tgt.shape[:2]
        shrink = inp.shape[0] * inp.shape[1] > h * w
        inp = cv2.resize(inp, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
      return inp, tgt
    raise NoImagesError(f"no readable pairs under {self.input_dir} and {self.target_dir}")


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
