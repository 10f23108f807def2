"""`python -m genlv_jax.infer`: apply a visual task prompt to your own images.

    python -m genlv_jax.infer --config configs/base.py --checkpoint CKPT \
        --prompt-input prompt_in.png --prompt-target prompt_out.png \
        --input photo.jpg --output result.png [--tile 256 --overlap 64] [--resize 256] \
        [--grid sheet.png]
    python -m genlv_jax.infer ... --task gaussian_denoising [--severity 0.5 --prompt-seed 0 \
        --ensemble 4] --input photo.jpg --output result.png
    python -m genlv_jax.infer ... --prompts PROMPT_DIR --input photo.jpg --output result.png
    python -m genlv_jax.infer --list-tasks

The prompt comes from one of three sources. A pair of files. `--task NAME`: synthesised from a
bundled clean photo with the task's own operator at `--severity` (0 mild to 1 strong), for every
procedural task (`--list-tasks`; the others say which files to give). `--prompts DIR`: every
pair under DIR (`prompt_input.*` and `prompt_target.*`, in DIR or its subfolders). With several
pairs (`--prompts`, or `--task` with `--ensemble K` seeds) the model runs once per pair, the
mean of the outputs is written, and `infer` reports how far the outputs spread.

CKPT is an orbax params directory (`convert`, or `finetune`'s `WORKDIR/best`), a training
workdir (its latest checkpoint), or a `.pth` / `.safetensors` file; `--random-init` instead
runs untrained weights (a smoke test). `--input` and `--output` are both files, or both
folders: every image under the input folder is processed (recursively, with a progress bar)
and written under the output folder at the same relative path, as `--format` (png). A single
output's format follows its extension: `.png`/`.jpg`/… 8-bit, `.npy` float32 (unclipped).

Images run at their own resolution, in overlapping 256 px tiles when larger (`--tile`, `--tile
0`: whole); `--resize N` reproduces the authors' preprocessing (every image and the prompts
resized to N×N). `genlv_jax.inference.runner` describes both.

Grayscale, RGBA, palette, 16-bit and EXIF-rotated files are converted to RGB. Files with NaN
or infinite pixels are refused (`--nonfinite replace` fills each from its nearest finite pixel,
with a warning), and an output that is not finite is never written. A user mistake (missing or
unreadable file, a prompt pair of two sizes without `--resize`, a checkpoint that does not fit
the config, a bad option, an output location that cannot be written) prints one line and exits
with status 2, before the model is loaded; in a folder, unreadable files are skipped and
non-finite outputs not written, the rest written, then reported the same way.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from genlv_jax import api, cli
from genlv_jax.data import image_io
from genlv_jax.inference import prompts as prompt_sources
from genlv_jax.inference.runner import (AUTHORS_RESIZE, DEFAULT_OVERLAP, DEFAULT_PROMPT_MAX,
                                        DEFAULT_TILE, MIN_PROMPT_MAX, RESIZE_MULTIPLE,
                                        infer_files)
from genlv_jax.models import PAD_MULTIPLE


def _parser() -> cli.Parser:
  parser = cli.Parser(prog="python -m genlv_jax.infer",
                                   description=__doc__.split("\n\n")[0])
  cli.add_model_arguments(parser, "untrained weights from config.seed (smoke tests only)")
  parser.add_argument("--list-tasks", action=_ListTasks, help="list the tasks --task accepts "
                      "and exit")
  parser.add_argument("--prompt-input", help="prompt source image P_S")
  parser.add_argument("--prompt-target", help="prompt target image P_T")
  parser.add_argument("--task", help="synthesise the prompt pair of this task (--list-tasks)")
  parser.add_argument("--severity", type=float, default=None,
                      help=f"--task's severity, 0 (mild) to 1 (strong); default "
                      f"{prompt_sources.DEFAULT_SEVERITY}")
  parser.add_argument("--prompt-seed", type=int, default=0,
                      help="--task's bundled photo and random draws (default 0)")
  parser.add_argument("--ensemble", type=int, default=1, metavar="K",
                      help="--task: average the outputs of K synthesised prompts (seeds "
                      "--prompt-seed … +K-1) and report their spread")
  parser.add_argument("--prompts", metavar="DIR",
                      help="a folder of prompt pairs (prompt_input.* and prompt_target.*, in "
                      "it or its subfolders): average the outputs and report their spread")
  parser.add_argument("--input", required=True, help="image file or folder")
  parser.add_argument("--output", required=True, help="image file (format by extension) or "
                                                      "folder")
  parser.add_argument("--format", default=None, help="output format in folder mode, or when "
                      "--output is a folder (png, jpg, npy, …; default png); a file --output's "
                      "extension chooses its format")
  parser.add_argument(
      "--tile", type=int, default=DEFAULT_TILE,
      help=f"tile size, a multiple of {PAD_MULTIPLE} (default {DEFAULT_TILE}, the training "
      "resolution: the global attention in the bottleneck saw 32x32 latent tokens in training; "
      "larger tiles change what it attends to and cost memory quadratically in tokens); "
      "images no larger than a tile run whole; 0: every image whole")
  parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP,
                      help="tile overlap (px), 0 <= overlap < tile")
  parser.add_argument("--tile-batch", type=int, default=1, help="tiles per forward pass (>= 1)")
  parser.add_argument("--prompt-max", type=int, default=DEFAULT_PROMPT_MAX,
                      help=f"centre-crop prompts larger than this (px, >= {MIN_PROMPT_MAX}; not "
                      "with --resize)")
  parser.add_argument(
      "--nonfinite", choices=image_io.NONFINITE_POLICIES, default="refuse",
      help="input or prompt pixels that are NaN or infinite (.npy, float TIFF): refuse the "
      "file (default), or replace each such pixel by its nearest finite pixel, with a warning")
  parser.add_argument(
      "--resize", type=int, default=0, metavar="N",
      help=f"the authors' preprocessing (N={AUTHORS_RESIZE}): resize the prompt pair and every "
      "input to NxN with OpenCV (bicubic if a side is below N, else area) and write the NxN "
      f"output; N a multiple of {RESIZE_MULTIPLE} (tiled only if N > --tile). Default 0: "
      "native resolution")
  parser.add_argument("--grid", help="also write a labelled sheet (prompt input, prompt "
                                     "target, input, output; a row per file) to this image file")
  parser.add_argument("--grid-height", type=int, default=192,
                      help="largest side of a sheet cell (px, 128 to 4096)")
  return parser


class _ListTasks(argparse.Action):
  """`--list-tasks`: prints the tasks and exits, before any other argument is required."""

  def __init__(self, option_strings, dest, **kwargs):
    super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

  def __call__(self, parser, namespace, values, option_string=None):
    from genlv_jax.tasks import registry  # pylint: disable=import-outside-toplevel
    print(f"{'task':<36} {'category':<18} prompt")
    for task in registry.all_tasks():
      how = ("--task (synthesised)" if task.procedural else
             f"files only: --prompt-input/--prompt-target ({task.dataset})")
      print(f"{task.name:<36} {task.category:<18} {how}")
    parser.exit(0)


@cli.user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point: parse, then `runner.infer_files` (which checks every option, input and output
  location before it loads the model). Returns the exit status."""
  args, overrides = cli.parse_with_overrides(_parser(), argv)
  checkpoint = None if args.random_init else api.resolve_checkpoint(args.checkpoint)
  config = api.config_for(args.config, checkpoint, overrides)
  jobs, result = infer_files(
      lambda: api.load_model(config, checkpoint), config, args.input, args.output,
      args.prompt_input, args.prompt_target, task=args.task, severity=args.severity,
      prompt_seed=args.prompt_seed, ensemble=args.ensemble, prompts_dir=args.prompts,
      fmt=args.format, tile=args.tile,
      overlap=args.overlap, tile_batch=args.tile_batch, prompt_max=args.prompt_max,
      nonfinite=args.nonfinite, resize=args.resize, grid=args.grid,
      grid_height=args.grid_height)
  if result.written:
    where = result.written[0] if len(jobs) == 1 else args.output
    print(f"wrote {len(result.written)} image(s) to {where}"
          + (f" and the sheet {args.grid}" if args.grid else ""))
  spread = result.spread_summary()
  if spread:
    print(f"prompt ensemble: {spread}")
  problem = result.problem(len(jobs))
  if problem:
    cli.report_user_error(problem)
  return 0


if __name__ == "__main__":
  sys.exit(main())
