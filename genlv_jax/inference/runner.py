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
GRID_HEIGHT_RANGE = (8, 4096)  # sheet cell height (px): below 8 nothing shows
NONFINITE_HINT = "; pass --nonfinite replace to fill them from the nearest finite pixel"


@dataclasses.dataclass
class InferenceResult:
  """What `run_inference` did: written output paths, the inputs it skipped (unreadable or
  refused, with why) and those whose output was not written (non-finite, with why)."""
  written: list[str] = dataclasses.field(default_factory=list)
  skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)

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
                  overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1) -> np.ndarray:
  """One HxWx3 image through `predictor` (a `genlv_jax.api.Predictor`): whole when `tile` is 0
  or the image fits in one tile, otherwise in overlapping `tile`×`tile` tiles.

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
  return tiling.tiled_apply(fn, image, tile, overlap, scale=scale, batch_size=tile_batch)


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


def run_inference(predictor, prompt_source: Optional[np.ndarray],
                  prompt_target: Optional[np.ndarray], jobs: Sequence[tuple[str, str]],
                  tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1,
                  grid: Optional[str] = None, grid_height: int = 192, progress: bool = True,
                  resize: int = 0, nonfinite: str = "refuse",
                  preloaded: Optional[Mapping[str, np.ndarray]] = None) -> InferenceResult:
  """Predicts every (input, output) job. An unreadable input, or one with non-finite pixels
  when `nonfinite` is "refuse", is skipped and recorded in `skipped`; an output with
  non-finite values is not written and recorded in `failed`; the other jobs go on.

  `resize` N > 0: each input is resized to N×N first (`image_io.resize_square`, the authors'
  preprocessing) and its N×N prediction written; the prompts must then be N×N already
  (`load_prompt_pair(..., resize=N)` makes them so). `grid`: also write a sheet of (prompt
  input, prompt target, input, output) rows for the first GRID_MAX_ROWS images, each cell
  `grid_height` px high (failed images have no row). `preloaded`: images already read with
  `read_input`, by input path (`infer` reads a single input before it loads the model).
  """
  check_options(tile, overlap, grid, resize, tile_batch=tile_batch, grid_height=grid_height,
                nonfinite=nonfinite)
  result, rows = InferenceResult(), []
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
    output = predict_image(predictor, image, prompt_source, prompt_target, tile, overlap,
                           tile_batch)
    bad = image_io.count_nonfinite(output)
    if bad:  # written, NaN would be black pixels (8-bit) and exit 0: say so instead
      reason = (f"the model's output for {input_path} has {bad} non-finite value(s) (NaN or "
                f"infinity) of {output.size}: {output_path} not written")
      logging.warning("%s", reason)
      result.failed.append((input_path, reason))
      continue
    image_io.write_image(output_path, output)
    result.written.append(output_path)
    if grid and len(rows) < GRID_MAX_ROWS:
      prompts = [prompt_source, prompt_target] if prompt_source is not None else []
      rows.append(prompts + [image, output])
  if grid and rows:
    image_io.write_image(grid, image_io.contact_sheet(rows, cell_height=grid_height))
  return result


def infer_files(load_model: Callable[[], Any], config, input_path: str, output_path: str,
                prompt_input: Optional[str] = None, prompt_output: Optional[str] = None, *,
                fmt: Optional[str] = None, tile: int = DEFAULT_TILE,
                overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1,
                prompt_max: int = DEFAULT_PROMPT_MAX, nonfinite: str = "refuse",
                resize: int = 0, grid: Optional[str] = None, grid_height: int = 192
                ) -> tuple[list[tuple[str, str]], InferenceResult]:
  """`python -m genlv_jax.infer` as a function: checks every option, the prompt pair (files
  `prompt_input` → `prompt_output`), the inputs and output locations, then calls `load_model()`
  (a predictor) and runs every job.

  Returns the (input, output) jobs and what happened to them. Raises `UserError` for anything
  found before the model is loaded.
  """
  check_options(tile, overlap, grid, resize, prompt_max=prompt_max, tile_batch=tile_batch,
                grid_height=grid_height, nonfinite=nonfinite)
  prompt_source = prompt_target = None
  if config.model.use_prompt:
    if not (prompt_input and prompt_output):
      raise UserError("this model needs a prompt: give --prompt-input and --prompt-target")
    prompt_source, prompt_target = load_prompt_pair(prompt_input, prompt_output, prompt_max,
                                                    resize, nonfinite)
  elif prompt_input or prompt_output:
    logging.warning("this config's model takes no prompt (model.use_prompt=False): "
                    "--prompt-input and --prompt-target are ignored")
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
  result = run_inference(predictor, prompt_source, prompt_target, jobs, tile, overlap,
                         tile_batch, grid, grid_height, resize=resize, nonfinite=nonfinite,
                         preloaded=preloaded)
  return jobs, result
