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
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Optional, Sequence

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
GRID_MAX_ROWS = 8


@dataclasses.dataclass
class InferenceResult:
  """What `run_inference` did: written output paths and the inputs it skipped (with why)."""
  written: list[str] = dataclasses.field(default_factory=list)
  skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def load_prompt_pair(source_path: str, target_path: str, max_side: int = DEFAULT_PROMPT_MAX,
                     resize: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Reads the prompt pair.

  `resize` 0: both must have one size (they show one transformation pixel for pixel, and the
  model's cross-attention pairs z_S and z_T token for token); larger prompts are centre-cropped
  to `max_side`: the prompt encoder's cost grows with the prompt, and the papers train on
  256 px prompts. `resize` N > 0: each is resized to N×N as the authors' inference does
  (`image_io.resize_square`), whatever its size; `max_side` is not used.

  Raises:
    UserError: (resize 0) the two files have different sizes.
  """
  source, target = image_io.read_image(source_path), image_io.read_image(target_path)
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
    return [(input_path, os.path.join(output_path, stem + ext))]
  if os.path.splitext(output_path)[1].lower() not in image_io.WRITABLE_EXTENSIONS:
    raise UserError(f"cannot write {output_path}: unknown output format; use one of "
                     f"{', '.join(image_io.WRITABLE_EXTENSIONS)}")
  return [(input_path, output_path)]


def check_options(tile: int, overlap: int, grid: Optional[str], resize: int = 0) -> None:
  """Raises UserError for a tile size, a resize or a grid file that cannot work (before any
  work)."""
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
  if grid and os.path.splitext(grid)[1].lower() not in image_io.EIGHT_BIT_EXTENSIONS:
    raise UserError(f"--grid {grid}: use an image extension such as .png")


def run_inference(predictor, prompt_source: Optional[np.ndarray],
                  prompt_target: Optional[np.ndarray], jobs: Sequence[tuple[str, str]],
                  tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1,
                  grid: Optional[str] = None, grid_height: int = 192, progress: bool = True,
                  resize: int = 0) -> InferenceResult:
  """Predicts every (input, output) job; an unreadable input is skipped and recorded.

  `resize` N > 0: each input is resized to N×N first (`image_io.resize_square`, the authors'
  preprocessing) and its N×N prediction written; the prompts must then be N×N already
  (`load_prompt_pair(..., resize=N)` makes them so). `grid`: also write a sheet of (prompt
  input, prompt target, input, output) rows for the first GRID_MAX_ROWS images, each cell
  `grid_height` px high.
  """
  check_options(tile, overlap, grid, resize)
  result, rows = InferenceResult(), []
  bar = tqdm(jobs, desc="infer", unit="image", disable=not progress or len(jobs) < 2,
             file=sys.stderr)
  for input_path, output_path in bar:
    try:
      image = image_io.read_image(input_path)
    except (FileNotFoundError, PermissionError, ImageReadError) as e:
      logging.warning("skipping %s: %s", input_path, e)
      result.skipped.append((input_path, str(e)))
      continue
    if resize:
      image = image_io.resize_square(image, resize)
    output = predict_image(predictor, image, prompt_source, prompt_target, tile, overlap,
                           tile_batch)
    image_io.write_image(output_path, output)
    result.written.append(output_path)
    if grid and len(rows) < GRID_MAX_ROWS:
      prompts = [prompt_source, prompt_target] if prompt_source is not None else []
      rows.append(prompts + [image, output])
  if grid and rows:
    image_io.write_image(grid, image_io.contact_sheet(rows, cell_height=grid_height))
  return result
