"""`python -m genlv_jax.infer`: apply a visual task prompt to your own images.

    python -m genlv_jax.infer --config configs/base.py --checkpoint CKPT \
        --prompt-input prompt_in.png --prompt-target prompt_out.png \
        --input photo.jpg --output result.png [--tile 256 --overlap 64] [--resize 256] \
        [--grid sheet.png]

CKPT is an orbax params directory (`convert`, or `finetune`'s `WORKDIR/best`), a training
workdir (its latest checkpoint), or a `.pth` / `.safetensors` file; `--random-init` instead
runs untrained weights (a smoke test). `--input` and `--output` are both files, or both
folders: every image under the input folder is processed (recursively, with a progress bar)
and written under the output folder at the same relative path, as `--format` (png). A single
output's format follows its extension: `.png`/`.jpg`/… 8-bit, `.npy` float32 (unclipped).

By default every image runs at its own resolution and the output keeps the input's size (times
`model.scale` for the SR variants). An image larger than `--tile` (default 256, the training
resolution) on either side runs in overlapping tiles of that size (`genlv_jax.tiling`); `--tile
0` runs every image whole. The prompt pair must have one size; prompts larger than
`--prompt-max` are centre-cropped (not resized, which would hide noise or blur).

`--resize N` instead reproduces the authors' preprocessing (`extended_version/inference.py`
of chxy95/GenLV, N = 256): the prompt pair and every input are resized to N×N with OpenCV
(bicubic when a side is below N, area otherwise; `image_io.resize_square`), whatever their
sizes and aspect ratios, and the model's N×N output is written as it is (in tiles only if N
exceeds `--tile`).

Grayscale, RGBA, palette, 16-bit and EXIF-rotated files are converted to RGB. A user mistake
(missing or unreadable file, a prompt pair of two sizes without `--resize`, a checkpoint that
does not fit the config) prints one line and exits with status 2; in a folder, unreadable
files are skipped, the rest written, then reported the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Optional, Sequence

import numpy as np
from absl import logging
from tqdm import tqdm

from genlv_jax import api, image_io, tiling
from genlv_jax.cli import add_model_arguments, report_user_error, user_errors_exit
from genlv_jax.config_io import load_config
from genlv_jax.finetune import resolve_checkpoint
from genlv_jax.image_io import ImageReadError
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
    ValueError: (resize 0) the two files have different sizes.
  """
  source, target = image_io.read_image(source_path), image_io.read_image(target_path)
  if resize:
    return image_io.resize_square(source, resize), image_io.resize_square(target, resize)
  if source.shape != target.shape:
    raise ValueError(f"prompt input {source_path} is {source.shape[1]}x{source.shape[0]} but "
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
    raise FileNotFoundError(f"input not found: {input_path}")
  ext = "." + fmt.lower().lstrip(".")
  if ext not in image_io.WRITABLE_EXTENSIONS:
    raise ValueError(f"--format {fmt!r} is not one of "
                     f"{', '.join(e[1:] for e in image_io.WRITABLE_EXTENSIONS)}")
  if os.path.isdir(input_path):
    if os.path.isfile(output_path):
      raise ValueError(f"--input {input_path} is a folder, so --output must be one too, not "
                       f"the file {output_path}")
    inside = os.path.relpath(os.path.abspath(output_path), os.path.abspath(input_path))
    relative = [r for r in image_io.list_images(input_path)  # not our own earlier outputs
                if inside.startswith("..") or not (r + os.sep).startswith(inside + os.sep)]
    if not relative:
      raise FileNotFoundError(f"no image files under {input_path}")
    jobs, seen = [], {}
    for r in relative:
      target = os.path.join(output_path, os.path.splitext(r)[0] + ext)
      if target in seen:
        raise ValueError(f"{seen[target]} and {r} would both be written to {target}: rename "
                         "one of them")
      seen[target] = r
      jobs.append((os.path.join(input_path, r), target))
    return jobs
  if os.path.isdir(output_path) or output_path.endswith(os.sep):
    stem = os.path.splitext(os.path.basename(input_path))[0]
    return [(input_path, os.path.join(output_path, stem + ext))]
  if os.path.splitext(output_path)[1].lower() not in image_io.WRITABLE_EXTENSIONS:
    raise ValueError(f"cannot write {output_path}: unknown output format; use one of "
                     f"{', '.join(image_io.WRITABLE_EXTENSIONS)}")
  return [(input_path, output_path)]


def check_options(tile: int, overlap: int, grid: Optional[str], resize: int = 0) -> None:
  """Raises ValueError for a tile size, a resize or a grid file that cannot work (before any
  work)."""
  if tile < 0:
    raise ValueError(f"--tile must be 0 (whole images) or a positive multiple of {PAD_MULTIPLE}, "
                     f"got {tile}")
  if tile > 0:
    tiling.validate_tiling(tile, overlap, PAD_MULTIPLE)
  if resize < 0 or resize % RESIZE_MULTIPLE:
    raise ValueError(f"--resize must be a positive multiple of {RESIZE_MULTIPLE} (the authors "
                     f"use {AUTHORS_RESIZE}), got {resize}")
  if overlap < 0:
    raise ValueError(f"--overlap must be >= 0, got {overlap}")
  if grid and os.path.splitext(grid)[1].lower() not in image_io.EIGHT_BIT_EXTENSIONS:
    raise ValueError(f"--grid {grid}: use an image extension such as .png")


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


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m genlv_jax.infer",
                                   description=__doc__.split("\n\n")[0])
  add_model_arguments(parser, "untrained weights from config.seed (smoke tests only)")
  parser.add_argument("--prompt-input", help="prompt source image P_S")
  parser.add_argument("--prompt-target", help="prompt target image P_T")
  parser.add_argument("--input", required=True, help="image file or folder")
  parser.add_argument("--output", required=True, help="image file (format by extension) or "
                                                      "folder")
  parser.add_argument("--format", default="png", help="output format in folder mode "
                                                      "(png, jpg, npy, …)")
  parser.add_argument(
      "--tile", type=int, default=DEFAULT_TILE,
      help=f"tile size, a multiple of {PAD_MULTIPLE} (default {DEFAULT_TILE}, the training "
      "resolution: the global attention in the bottleneck saw 32x32 latent tokens in training; "
      "larger tiles change what it attends to and cost memory quadratically in tokens); "
      "images no larger than a tile run whole; 0: every image whole")
  parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, help="tile overlap (px)")
  parser.add_argument("--tile-batch", type=int, default=1, help="tiles per forward pass")
  parser.add_argument("--prompt-max", type=int, default=DEFAULT_PROMPT_MAX,
                      help="centre-crop prompts larger than this (px; not with --resize)")
  parser.add_argument(
      "--resize", type=int, default=0, metavar="N",
      help=f"the authors' preprocessing (N={AUTHORS_RESIZE}): resize the prompt pair and every "
      "input to NxN with OpenCV (bicubic if a side is below N, else area) and write the NxN "
      f"output; N a multiple of {RESIZE_MULTIPLE} (tiled only if N > --tile). Default 0: "
      "native resolution")
  parser.add_argument("--grid", help="also write a side-by-side sheet (prompt pair, input, "
                                     "output) to this image file")
  parser.add_argument("--grid-height", type=int, default=192, help="height of a sheet cell")
  return parser


@user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point: parse, check every path, load the model, run. Returns the exit status."""
  args = _parser().parse_args(argv)
  config = load_config(args.config)
  check_options(args.tile, args.overlap, args.grid, args.resize)
  prompt_source = prompt_target = None
  if config.model.use_prompt:
    if not (args.prompt_input and args.prompt_target):
      raise ValueError("this model needs a prompt: give --prompt-input and --prompt-target")
    prompt_source, prompt_target = load_prompt_pair(args.prompt_input, args.prompt_target,
                                                    args.prompt_max, args.resize)
  jobs = plan_outputs(args.input, args.output, args.format)
  checkpoint = None if args.random_init else resolve_checkpoint(args.checkpoint)
  predictor = api.load_model(config, checkpoint)
  result = run_inference(predictor, prompt_source, prompt_target, jobs, args.tile, args.overlap,
                         max(1, args.tile_batch), args.grid, max(8, args.grid_height),
                         resize=args.resize)
  if result.written:
    where = result.written[0] if len(jobs) == 1 else args.output
    print(f"wrote {len(result.written)} image(s) to {where}"
          + (f" and the sheet {args.grid}" if args.grid else ""))
  if result.skipped:
    _, reason = result.skipped[0]
    report_user_error(f"{len(result.skipped)} of {len(jobs)} input(s) could not be read "
                      f"(first: {reason})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
