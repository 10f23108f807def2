"""Inference on image files: read a prompt pair, plan outputs for a file or a folder, run a
predictor on each image (whole, or in overlapping tiles), write the results.

By default every image runs at its own resolution and the output keeps the input's size (times
`model.scale` for the SR variants). An image larger than the tile size (default 256, the
training resolution) on either side runs in overlapping tiles (`inference.tiling`); tile 0 runs
every image whole. The prompt pair must have one size; prompts larger than `prompt_max` are
centre-cropped (not resized, which would hide noise or blur).

`resize` N instead reproduces the authors' preprocessing (`extended_version/inference.py` of
chxy95/GenLV, N = 256): the prompt pair and every input are resized to N×N with OpenCV (bicubic
when a side is below N, area otherwise; `image_io.resize_square`), whatever their sizes and
aspect ratios, and the model's N×N output is written as it is (in tiles only if N exceeds the
tile size).

Non-finite input pixels (NaN, ±infinity, in a `.npy` or float TIFF) would make the whole output
NaN. Inputs and prompts holding them are refused (`image_io.NonFiniteImageError`, one line
naming the file and the count) unless `nonfinite="replace"`, which fills each such pixel from
its nearest finite pixel with a warning. An output that is still non-finite (a checkpoint with
NaN weights, an overflow) is never written: `run_inference` records it in `failed` and goes on
with the next image, and `infer` reports the count and exits with status 2.

Every output location (the output files' folders, the grid's) is created and checked for
writing (`prepare_outputs`) before the model is loaded.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
from absl import logging
from tqdm import tqdm

from genlv_jax.data import image_io
from genlv_jax.data.image_io import ImageReadError
from genlv_jax.errors import PathNotFoundError, UserError
from genlv_jax.evaluation import grids
from genlv_jax.inference import prompts as prompt_sources
from genlv_jax.inference import tiling
from genlv_jax.models import PAD_MULTIPLE

# The training resolution: the bottleneck's global self-attention saw 32x32 latent tokens (and
# the prompt cross-attention 32x32 prompt tokens) in training. Larger tiles change what it
# attends to, and its memory grows quadratically with the number of tokens.
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 64
AUTHORS_RESIZE = 256  # the size the authors' inference.py resizes prompts and inputs to
# `--resize` sizes: the prompt encoder's three 2x pixel-unshuffles need a multiple of 8 (the
# model would reflect-pad otherwise).
RESIZE_MULTIPLE = 8
DEFAULT_PROMPT_MAX = 256  # the training prompts: 32x32 prompt tokens
# The prompt encoder's three 2x pixel-unshuffles: a smaller crop leaves no prompt token.
MIN_PROMPT_MAX = 8
GRID_MAX_ROWS = 8
# The sheet's largest cell side (px): from the smallest cell any grid shows, up to a large photo.
GRID_HEIGHT_RANGE = (grids.MIN_CELL, 4096)
NONFINITE_HINT = "; pass --nonfinite replace to fill them from the nearest finite pixel"


@dataclasses.dataclass
class InferenceResult:
  """What `run_inference` did: written output paths, the inputs it skipped (unreadable or
  refused, with why) and those whose output was not written (non-finite, with why)."""
  written: list[str] = dataclasses.field(default_factory=list)
  skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  # A prompt ensemble's spread per input (`prompts.ensemble_spread`), when several prompts ran.
  spreads: list[tuple[str, dict[str, float]]] = dataclasses.field(default_factory=list)

  def spread_summary(self) -> Optional[str]:
    """One line on how much the ensemble's outputs differed over the inputs (None without an
    ensemble)."""
    if not self.spreads:
      return None
    values = [v for _, v in self.spreads]
    return (f"outputs under the different prompts are {np.mean([v['psnr_mean'] for v in values]):.2f}"
            f" dB PSNR from their mean (lowest {min(v['psnr_min'] for v in values):.2f} dB), "
            f"pixel std {np.mean([v['std'] for v in values]):.4f}")

  def problem(self, num_jobs: int) -> Optional[str]:
    """One line for the inputs that were skipped or whose output was not written (None if all
    were written)."""
    problems = self.skipped + self.failed
    if not problems:
      return None
    if num_jobs == 1:
      return problems[0][1]
    parts = []
    if self.skipped:
      parts.append(f"{len(self.skipped)} of {num_jobs} input(s) could not be read (first: "
                   f"{self.skipped[0][1]})")
    if self.failed:
      parts.append(f"{len(self.failed)} of {num_jobs} output(s) were not finite and not "
                   f"written (first: {self.failed[0][1]})")
    return "; ".join(parts)


def read_input(path: str, nonfinite: str = "refuse") -> np.ndarray:
  """`image_io.read_image` for `infer`'s inputs and prompts: a refusal of non-finite pixels
  says how to replace them instead."""
  try:
    return image_io.read_image(path, nonfinite=nonfinite)
  except image_io.NonFiniteImageError as e:
    raise image_io.NonFiniteImageError(f"{e}{NONFINITE_HINT}") from None


def load_prompt_pair(source_path: str, target_path: str, max_side: int = DEFAULT_PROMPT_MAX,
                     resize: int = 0, nonfinite: str = "refuse"
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Reads the prompt pair.

  `resize` 0: both must have one size (they show one transformation pixel for pixel, and the
  model's cross-attention pairs z_S and z_T token for token); larger prompts are centre-cropped
  to `max_side`: the prompt encoder's cost grows with the prompt, and the papers train on
  256 px prompts. `resize` N > 0: each is resized to N×N as the authors' inference does
  (`image_io.resize_square`), whatever its size; `max_side` is not used. `nonfinite`: what to
  do with NaN or infinite pixels ("refuse" or "replace", see `image_io.read_image`).

  Raises:
    UserError: (resize 0) the two files have different sizes; a file holds non-finite values
      and `nonfinite` is "refuse".
  """
  source, target = read_input(source_path, nonfinite), read_input(target_path, nonfinite)
  if resize:
    return image_io.resize_square(source, resize), image_io.resize_square(target, resize)
  if source.shape != target.shape:
    raise UserError(f"prompt input {source_path} is {source.shape[1]}x{source.shape[0]} but "
                     f"prompt target {target_path} is {target.shape[1]}x{target.shape[0]}: a "
                     "prompt pair must have one size")
  return image_io.center_crop_to(source, max_side), image_io.center_crop_to(target, max_side)


def predict_image(predictor, image: np.ndarray, prompt_source: Optional[np.ndarray],
                  prompt_target: Optional[np.ndarray], tile: int = DEFAULT_TILE,
                  overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1,
                  progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
  """One HxWx3 image through `predictor` (a `genlv_jax.api.Predictor`): whole when `tile` is 0
  or the image fits in one tile, otherwise in overlapping `tile`×`tile` tiles.

  `progress`: called with (tiles done, tiles in all) after each batch of tiles (not called
  when the image runs whole); the web app's progress bar.

  Inputs are reflect-padded here to the multiple the model pads to anyway (its `pad_multiple`;
  PAD_MULTIPLE where it has none), so that images (and edge tiles) of nearby sizes reuse one
  compiled shape and the result is the model's own on the image.
  """
  scale = int(predictor.config.model.get("scale", 1) or 1)
  multiple = int(getattr(getattr(predictor, "model", None), "pad_multiple", PAD_MULTIPLE))
  fn = tiling.padded_to_multiple(
      lambda batch: predictor(batch, prompt_source, prompt_target), multiple, scale)
  if tile == 0 or (image.shape[0] <= tile and image.shape[1] <= tile):
    return fn(image[None])[0]
  tiling.validate_tiling(tile, overlap, PAD_MULTIPLE)
  return tiling.tiled_apply(fn, image, tile, overlap, scale=scale, batch_size=tile_batch,
                            on_tile=progress)


def plan_outputs(input_path: str, output_path: str, fmt: str = "png") -> list[tuple[str, str]]:
  """(input file, output file) pairs: file → file, file → into an existing folder (same stem,
  `fmt`), or folder → folder mirrored by relative path (extension replaced by `fmt`)."""
  if not os.path.exists(input_path):
    raise PathNotFoundError(f"input not found: {input_path}")
  ext = "." + fmt.lower().lstrip(".")
  if ext not in image_io.WRITABLE_EXTENSIONS:
    raise UserError(f"--format {fmt!r} is not one of "
                     f"{', '.join(e[1:] for e in image_io.WRITABLE_EXTENSIONS)}")
  if os.path.isdir(input_path):
    if os.path.isfile(output_path):
      raise UserError(f"--input {input_path} is a folder, so --output must be one too, not "
                       f"the file {output_path}")
    inside = os.path.relpath(os.path.abspath(output_path), os.path.abspath(input_path))
    relative = [r for r in image_io.list_images(input_path)  # not our own earlier outputs
                if inside.startswith("..") or not (r + os.sep).startswith(inside + os.sep)]
    if not relative:
      raise PathNotFoundError(f"no image files under {input_path}")
    jobs, seen = [], {}
    for r in relative:
      target = os.path.join(output_path, os.path.splitext(r)[0] + ext)
      if target in seen:
        raise UserError(f"{seen[target]} and {r} would both be written to {target}: rename "
                         "one of them")
      seen[target] = r
      jobs.append((os.path.join(input_path, r), target))
    return jobs
  if os.path.isdir(output_path) or output_path.endswith(os.sep):
    stem = os.path.splitext(os.path.basename(input_path))[0]
    target = os.path.join(output_path, stem + ext)
  elif os.path.splitext(output_path)[1].lower() not in image_io.WRITABLE_EXTENSIONS:
    raise UserError(f"cannot write {output_path}: unknown output format; use one of "
                     f"{', '.join(image_io.WRITABLE_EXTENSIONS)}")
  else:
    target = output_path
  if os.path.exists(target) and os.path.samefile(input_path, target):
    raise UserError(f"the output {target} is the input file: writing it would overwrite the "
                    "input; give another --output")
  return [(input_path, target)]


def prepare_outputs(jobs: Sequence[tuple[str, str]], output_root: Optional[str] = None,
                    grid: Optional[str] = None) -> None:
  """Creates and checks every output location before any work (`image_io.prepare_output_*`):
  the folder `output_root` of a folder run (its subfolders are made under it when written),
  or each output file's folder, and the grid's.

  Raises:
    image_io.ImageWriteError: a location cannot be created or written (one line naming it).
  """
  if output_root is not None:
    image_io.prepare_output_dir(output_root, "--output")
  else:
    for _, output_path in jobs:
      image_io.prepare_output_file(output_path, "--output")
  if grid:
    image_io.prepare_output_file(grid, "--grid")


def check_options(tile: int, overlap: int, grid: Optional[str], resize: int = 0, *,
                  prompt_max: int = DEFAULT_PROMPT_MAX, tile_batch: int = 1,
                  grid_height: int = 192, nonfinite: str = "refuse") -> None:
  """Raises UserError (one line naming the option) for a tile size, overlap, tile batch,
  resize, prompt crop, grid file or grid height that cannot work, before any work."""
  if tile < 0:
    raise UserError(f"--tile must be 0 (whole images) or a positive multiple of {PAD_MULTIPLE}, "
                     f"got {tile}")
  if tile > 0:
    tiling.validate_tiling(tile, overlap, PAD_MULTIPLE)
  if resize < 0 or resize % RESIZE_MULTIPLE:
    raise UserError(f"--resize must be a positive multiple of {RESIZE_MULTIPLE} (the authors "
                     f"use {AUTHORS_RESIZE}), got {resize}")
  if overlap < 0:
    raise UserError(f"--overlap must be >= 0, got {overlap}")
  if tile_batch < 1:
    raise UserError(f"--tile-batch must be at least 1, got {tile_batch}")
  if prompt_max < MIN_PROMPT_MAX:
    raise UserError(f"--prompt-max must be at least {MIN_PROMPT_MAX} (the prompt encoder "
                    f"downsamples prompts 8x), got {prompt_max}")
  if nonfinite not in image_io.NONFINITE_POLICIES:
    raise UserError(f"--nonfinite must be one of {', '.join(image_io.NONFINITE_POLICIES)}, "
                    f"got {nonfinite!r}")
  if grid and os.path.splitext(grid)[1].lower() not in image_io.EIGHT_BIT_EXTENSIONS:
    raise UserError(f"--grid {grid}: use an image extension such as .png")
  low, high = GRID_HEIGHT_RANGE
  if not low <= grid_height <= high:
    raise UserError(f"--grid-height must be between {low} and {high} px, got {grid_height}")


PromptPair = tuple[np.ndarray, np.ndarray]


def run_inference(predictor, prompts: Sequence[PromptPair], jobs: Sequence[tuple[str, str]],
                  tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1,
                  grid: Optional[str] = None, grid_height: int = 192, progress: bool = True,
                  resize: int = 0, nonfinite: str = "refuse",
                  preloaded: Optional[Mapping[str, np.ndarray]] = None) -> InferenceResult:
  """Predicts every (input, output) job under each prompt pair of `prompts` (none for a model
  without prompts), writing the mean of the outputs and, with several pairs, recording their
  spread (`prompts.ensemble_spread`). An unreadable input, or one with non-finite pixels
  when `nonfinite` is "refuse", is skipped and recorded in `skipped`; an output with
  non-finite values is not written and recorded in `failed`; the other jobs go on.

  `resize` N > 0: each input is resized to N×N first (`image_io.resize_square`, the authors'
  preprocessing) and its N×N prediction written; the prompts must then be N×N already
  (`load_prompt_pair(..., resize=N)` makes them so). `grid`: also write a labelled sheet
  (`grids.prediction_grid`: columns prompt input, prompt target, input, output; a row per
  file, named) for the first GRID_MAX_ROWS images, cells at most `grid_height` px on their
  long side and at least `grids.MIN_CELL` on their short side (failed images have no row). `preloaded`: images already read with
  `read_input`, by input path (`infer` reads a single input before it loads the model).
  """
  check_options(tile, overlap, grid, resize, tile_batch=tile_batch, grid_height=grid_height,
                nonfinite=nonfinite)
  result, rows, names = InferenceResult(), [], []
  bar = tqdm(jobs, desc="infer", unit="image", disable=not progress or len(jobs) < 2,
             file=sys.stderr)
  for input_path, output_path in bar:
    try:
      image = (preloaded[input_path] if preloaded and input_path in preloaded
               else read_input(input_path, nonfinite))
    except (FileNotFoundError, PermissionError, ImageReadError) as e:
      logging.warning("skipping %s: %s", input_path, e)
      result.skipped.append((input_path, str(e)))
      continue
    if resize:
      image = image_io.resize_square(image, resize)
    outputs = [predict_image(predictor, image, source, target, tile, overlap, tile_batch)
               for source, target in (prompts or [(None, None)])]
    output = outputs[0] if len(outputs) == 1 else np.mean(outputs, axis=0, dtype=np.float32)
    bad = image_io.count_nonfinite(output)
    if bad:  # written, NaN would be black pixels (8-bit) and exit 0: say so instead
      reason = (f"the model's output for {input_path} has {bad} non-finite value(s) (NaN or "
                f"infinity) of {output.size}: {output_path} not written")
      logging.warning("%s", reason)
      result.failed.append((input_path, reason))
      continue
    image_io.write_image(output_path, output)
    result.written.append(output_path)
    if len(outputs) > 1:
      result.spreads.append((input_path, prompt_sources.ensemble_spread(outputs)))
    if grid and len(rows) < GRID_MAX_ROWS:
      rows.append((list(prompts[0]) if prompts else [None, None]) + [image, output])
      names.append(input_path)
  if grid and rows:
    image_io.write_image(grid, grids.prediction_grid(
        rows, [os.path.basename(path) for path in names], max_cell=grid_height))
  return result


def gather_prompts(config, prompt_input: Optional[str] = None,
                   prompt_output: Optional[str] = None, *, task: Optional[str] = None,
                   severity: Optional[float] = None, prompt_seed: int = 0, ensemble: int = 1,
                   prompts_dir: Optional[str] = None, prompt_max: int = DEFAULT_PROMPT_MAX,
                   resize: int = 0, nonfinite: str = "refuse") -> list[PromptPair]:
  """The prompt pairs `infer` runs with, from one of three sources: a pair of files
  (`prompt_input` → `prompt_output`), `task` (synthesised, `ensemble` pairs from seeds
  `prompt_seed`, `prompt_seed` + 1, …), or every pair of the folder `prompts_dir`. [] for a
  model without prompts (a warning if prompts were given anyway).

  Raises:
    UserError: no source or several, an option that belongs to another source, a task whose
      prompt cannot be synthesised, a pair of two sizes (`load_prompt_pair`).
  """
  given = [name for name, value in (("--prompt-input/--prompt-target", prompt_input or
                                     prompt_output), ("--task", task),
                                    ("--prompts", prompts_dir)) if value]
  if not config.model.use_prompt:
    if given:
      logging.warning("this config's model takes no prompt (model.use_prompt=False): %s "
                      "ignored", " and ".join(given))
    return []
  if len(given) > 1:
    raise UserError(f"give one prompt source, not {' and '.join(given)}")
  if not given:
    raise UserError("this model needs a prompt: give --task NAME (synthesised), "
                    "--prompt-input and --prompt-target, or --prompts DIR")
  if ensemble < 1:
    raise UserError(f"--ensemble must be at least 1, got {ensemble}")
  if not task and (severity is not None or prompt_seed or ensemble > 1):
    raise UserError("--severity, --prompt-seed and --ensemble go with --task")
  if task:
    prompt_sources.check_task(task, severity)
    size = resize or min(prompt_sources.PROMPT_SIZE, prompt_max)
    return [prompt_sources.synthesize_prompt(task, severity, prompt_seed + k, size)
            for k in range(ensemble)]
  if prompts_dir:
    files = prompt_sources.load_prompt_folder(prompts_dir)
  else:
    if not (prompt_input and prompt_output):
      raise UserError("give both --prompt-input and --prompt-target")
    files = [(prompt_input, prompt_output)]
  return [load_prompt_pair(source, target, prompt_max, resize, nonfinite)
          for source, target in files]


def infer_files(load_model: Callable[[], Any], config, input_path: str, output_path: str,
                prompt_input: Optional[str] = None, prompt_output: Optional[str] = None, *,
                task: Optional[str] = None, severity: Optional[float] = None,
                prompt_seed: int = 0, ensemble: int = 1, prompts_dir: Optional[str] = None,
                fmt: Optional[str] = None, tile: int = DEFAULT_TILE,
                overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1,
                prompt_max: int = DEFAULT_PROMPT_MAX, nonfinite: str = "refuse",
                resize: int = 0, grid: Optional[str] = None, grid_height: int = 192
                ) -> tuple[list[tuple[str, str]], InferenceResult]:
  """`python -m genlv_jax.infer` as a function: checks every option, the prompts
  (`gather_prompts`: files `prompt_input` → `prompt_output`, a synthesised `task`, or the
  pairs of `prompts_dir`), the inputs and output locations, then calls `load_model()` (a
  predictor) and runs every job.

  Returns the (input, output) jobs and what happened to them. Raises `UserError` for anything
  found before the model is loaded.
  """
  check_options(tile, overlap, grid, resize, prompt_max=prompt_max, tile_batch=tile_batch,
                grid_height=grid_height, nonfinite=nonfinite)
  prompts = gather_prompts(config, prompt_input, prompt_output, task=task, severity=severity,
                           prompt_seed=prompt_seed, ensemble=ensemble, prompts_dir=prompts_dir,
                           prompt_max=prompt_max, resize=resize, nonfinite=nonfinite)
  jobs = plan_outputs(input_path, output_path, fmt or "png")
  folder = os.path.isdir(input_path)
  written_as = os.path.splitext(jobs[0][1])[1].lower().lstrip(".")
  if fmt and written_as != fmt.lower().lstrip("."):
    raise UserError(f"--format {fmt} does not apply to the file --output {output_path}: "
                    "its extension chooses the format (or give a folder as --output)")
  # A single input is read now, so that an unreadable one fails before the model is loaded.
  preloaded = None if folder else {jobs[0][0]: read_input(jobs[0][0], nonfinite)}
  prepare_outputs(jobs, output_path if folder else None, grid)
  predictor = load_model()
  result = run_inference(predictor, prompts, jobs, tile, overlap, tile_batch, grid, grid_height,
                         resize=resize, nonfinite=nonfinite, preloaded=preloaded)
  return jobs, result
