"""Prompt pairs without files, and several of them at once.

`synthesize_prompt(task)` makes the visual task prompt (prompt source → prompt target) of any
procedural task from a bundled clean photo, as training makes its prompts: the task's own
operator at a severity, on an image that is not the input. Tasks defined by a dataset or a
teacher model cannot be synthesised; the error says which prompt files to give instead.

`load_prompt_folder(DIR)` reads several pairs for a prompt ensemble (`infer --prompts DIR`):
the model runs once per pair and the outputs are averaged. The papers' prompt-sensitivity study
(Table V of the journal) shows outputs vary with the prompt; the mean over prompts is steadier,
and `ensemble_spread` measures how much they varied.
"""

from __future__ import annotations

import difflib
import os
from typing import Optional, Sequence

import numpy as np

from genlv_jax.data import image_io
from genlv_jax.data.image_sources import BuiltinSource
from genlv_jax.errors import PathNotFoundError, UserError
from genlv_jax.tasks import registry

DEFAULT_SEVERITY = 0.5  # the middle of each task's training range
PROMPT_SIZE = 256  # the training prompts' size
# A prompt pair in a folder: these two stems (the files `tasks sample --format png` writes).
PAIR_STEMS = ("prompt_input", "prompt_target")


def synthesizable_tasks() -> list[str]:
  """Names of the tasks whose prompt pair `synthesize_prompt` makes (the procedural ones)."""
  return [t.name for t in registry.procedural_tasks()]


def check_task(name: str, severity: Optional[float] = None, *,
               listing: str = "`infer --list-tasks` lists them",
               instead: Optional[str] = None) -> registry.Task:
  """The task `name` when its prompt can be synthesised at `severity` (in [0, 1]).

  `listing` and `instead` end the messages (where the tasks are listed; what to give for a
  task that needs real data; default: `infer`'s options), so that each front end names its
  own controls.

  Raises:
    UserError: an unknown task (with close names), one that needs real data, or a severity
      outside [0, 1].
  """
  try:
    task = registry.get_task(name)
  except KeyError:
    close = difflib.get_close_matches(name, [t.name for t in registry.all_tasks()], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UserError(f"unknown task {name!r}{hint}; {listing}") from None
  if not task.procedural:
    what = "a paired dataset" if task.source == "paired_dataset" else "a teacher model's outputs"
    instead = instead or ("give --prompt-input and --prompt-target (a pair from "
                          f"{task.dataset})")
    raise UserError(f"task {task.name!r} is defined by {what} ({task.dataset}): its prompt "
                    f"cannot be synthesised; {instead}")
  if severity is not None and not 0.0 <= severity <= 1.0:
    raise UserError(f"--severity must be between 0 (mild) and 1 (strong), got {severity:g}")
  return task


def exemplar(seed: int = 0, size: int = PROMPT_SIZE) -> np.ndarray:
  """A bundled clean photo (the `seed`-th, cyclically), centre-cropped square and resized to
  size×size: the clean image a synthesised prompt is made from."""
  source = BuiltinSource(num_procedural=0)
  return image_io.center_square(np.asarray(source.read_rgb(seed % len(source)), np.float32),
                                size)


def synthesize_prompt(task: str, severity: Optional[float] = None, seed: int = 0,
                      size: int = PROMPT_SIZE) -> tuple[np.ndarray, np.ndarray]:
  """(prompt source, prompt target) of `task`, HxWx3 float32 in [0, 1]: the task's operator at
  `severity` (default `DEFAULT_SEVERITY`) on bundled photo `seed`, with its random draws
  (noise, the filter of a style) from `seed` too.

  Raises:
    UserError: see `check_task`.
  """
  spec = check_task(task, severity)
  severity = DEFAULT_SEVERITY if severity is None else float(severity)
  rng = np.random.default_rng([int(seed), spec.index, 0x9E3779B9])
  shared = spec.sample_shared(severity, rng)
  source, target = spec.synthesize(exemplar(seed, size), severity, rng, **shared)
  return np.asarray(source, np.float32), np.asarray(target, np.float32)


def load_prompt_folder(folder: str) -> list[tuple[str, str]]:
  """The prompt pairs of `folder` (`infer --prompts DIR`), as (prompt input, prompt target)
  paths: a pair is two files named `prompt_input.*` and `prompt_target.*`, in DIR itself or
  in each of its subfolders (`tasks sample --format png` writes such folders). Sorted by
  folder name.

  Raises:
    PathNotFoundError: DIR is missing or holds no pair.
    UserError: a folder with one file of a pair and not the other.
  """
  if not os.path.isdir(folder):
    raise PathNotFoundError(f"--prompts {folder}: no such folder")
  pairs = []
  for directory in [folder] + sorted(os.path.join(folder, d) for d in os.listdir(folder)
                                     if os.path.isdir(os.path.join(folder, d))):
    found = {}
    for name in sorted(os.listdir(directory)):
      stem, ext = os.path.splitext(name)
      if stem in PAIR_STEMS and ext.lower() in image_io.readable_extensions():
        found.setdefault(stem, os.path.join(directory, name))
    if len(found) == 1:
      (have,) = found
      missing = PAIR_STEMS[1 - PAIR_STEMS.index(have)]
      raise UserError(f"--prompts: {found[have]} has no {missing}.* beside it")
    if found:
      pairs.append((found["prompt_input"], found["prompt_target"]))
  if not pairs:
    raise PathNotFoundError(f"--prompts {folder}: no prompt pair (files prompt_input.* and "
                            "prompt_target.*, in the folder or its subfolders)")
  return pairs


def ensemble_spread(outputs: Sequence[np.ndarray]) -> dict[str, float]:
  """How much the outputs of one image under several prompts differ: `std` (the per-pixel
  standard deviation across prompts, averaged over pixels) and the PSNR of each output
  against their mean (`psnr_mean`, `psnr_min`, dB; higher is steadier).

  Raises:
    ValueError: fewer than two outputs.
  """
  if len(outputs) < 2:
    raise ValueError("a spread needs at least two outputs")
  stack = np.stack([np.asarray(o, np.float64) for o in outputs])
  mean = stack.mean(axis=0)
  mse = ((stack - mean) ** 2).reshape(len(stack), -1).mean(axis=1)
  psnr = 10 * np.log10(1.0 / np.maximum(mse, 1e-12))
  return {"std": float(stack.std(axis=0).mean()), "psnr_mean": float(psnr.mean()),
          "psnr_min": float(psnr.min())}
