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

Images run at their own resolution, in overlapping 256 px tiles when larger (`--tile`, `--tile
0`: whole); `--resize N` reproduces the authors' preprocessing (every image and the prompts
resized to N×N). `genlv_jax.inference.runner` describes both.

Grayscale, RGBA, palette, 16-bit and EXIF-rotated files are converted to RGB. A user mistake
(missing or unreadable file, a prompt pair of two sizes without `--resize`, a checkpoint that
does not fit the config) prints one line and exits with status 2; in a folder, unreadable
files are skipped, the rest written, then reported the same way.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from genlv_jax import api, cli
from genlv_jax.config_io import load_config
from genlv_jax.errors import UserError
from genlv_jax.inference.runner import (AUTHORS_RESIZE, DEFAULT_OVERLAP, DEFAULT_PROMPT_MAX,
                                        DEFAULT_TILE, RESIZE_MULTIPLE, check_options,
                                        load_prompt_pair, plan_outputs, run_inference)
from genlv_jax.models import PAD_MULTIPLE


def _parser() -> cli.Parser:
  parser = cli.Parser(prog="python -m genlv_jax.infer",
                                   description=__doc__.split("\n\n")[0])
  cli.add_model_arguments(parser, "untrained weights from config.seed (smoke tests only)")
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


@cli.user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point: parse, check every path, load the model, run. Returns the exit status."""
  args, overrides = cli.parse_with_overrides(_parser(), argv)
  config = load_config(args.config, overrides)
  checkpoint = None if args.random_init else api.resolve_checkpoint(args.checkpoint)
  check_options(args.tile, args.overlap, args.grid, args.resize)
  prompt_source = prompt_target = None
  if config.model.use_prompt:
    if not (args.prompt_input and args.prompt_target):
      raise UserError("this model needs a prompt: give --prompt-input and --prompt-target")
    prompt_source, prompt_target = load_prompt_pair(args.prompt_input, args.prompt_target,
                                                    args.prompt_max, args.resize)
  jobs = plan_outputs(args.input, args.output, args.format)
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
    cli.report_user_error(f"{len(result.skipped)} of {len(jobs)} input(s) could not be read "
                      f"(first: {reason})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
