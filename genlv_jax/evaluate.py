"""`python -m genlv_jax.evaluate`: per-task metrics as in the papers' tables, with the spread
over prompts (large paper Table V / ACMMM Table 4) and the mismatch test (ACMMM §4.4, Fig. 7).

    python -m genlv_jax.evaluate --config configs/base.py --checkpoint CKPT \
        --tasks gaussian_denoising,GB,canny --source builtin --num-images 8 --num-prompts 5 \
        --output report.json [--convention basicsr [--crop-border 4] [--no-y-channel]] \
        [--y-channel] [--mismatch] [--lpips-weights lpips_alex.pth]

N test images (`--num-images`) per task, each with K prompt pairs (`--num-prompts`) made from
other images; the report gives per task the mean and standard deviation over the K prompt pairs
beside the identity baseline (`genlv_jax.evaluation` says how samples and metrics are made).
When `--source` is the training source (the default), only the images the trainer holds out are
test inputs: with `--num-images config.eval_images --num-prompts config.eval_prompts` and the
trainer's tasks, the numbers are those the trainer logged for the same checkpoint. `paired_dataset`
/ `model` tasks need `--paired 'TASK=INPUT_DIR|TARGET_DIR;…'` (default: the config's
`data.paired`) and are skipped with a warning otherwise; when none of the requested tasks can be
evaluated, nothing runs (exit 2, with the reason). LPIPS (restoration, enhancement and
stylization tasks; the journal's Table VIII reports it for styles) needs `--lpips-weights`:
nothing is downloaded. The JSON report and a Markdown table (same path, `.md`) are written,
and the per-task table is printed.

The authors' test protocol: `--protocol glv101 --testset DIR` evaluates the fixed test and
prompt pairs that `python -m genlv_jax.data.prepare testset --output DIR` wrote (all of its
tasks, or `--tasks`; all its test images and prompt images, or `--num-images` /
`--num-prompts`) and prints the journal's per-category Tables VI–IX with the paper's values
beside ours (`genlv_jax.evaluation.protocol`).

PSNR / SSIM conventions (`--convention`):
  ours     (default; the numbers the trainer logs) dm_pix on the float images in [0, 1],
           the whole image, RGB (`--y-channel`: BT.601 luma).
  basicsr  as the restoration papers computed them with BasicSR's calculate_psnr /
           calculate_ssim: both images as 8-bit pictures, `--crop-border N` pixels cut from
           each edge (default 0), the Y channel of MATLAB's rgb2ycbcr by default as those
           papers report (`--no-y-channel` for RGB), float64 on [0, 255], SSIM with an 11x11
           Gaussian window (sigma 1.5) in valid positions.

Every option, the tasks, the image source and paired folders, the LPIPS weights and the report's
location are checked (the folder created) before the model is loaded: a mistake is one `error:`
line and exit 2. Crops are at most 1024 px: each crop runs through the model whole (no
tiles), and the bottleneck's global attention needs memory in the square of the pixel count.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from genlv_jax import api, cli, evaluation
from genlv_jax.evaluation import protocol
from genlv_jax.evaluation.evaluator import MAX_CROP
from genlv_jax.evaluation.metrics import CONVENTIONS


def _parser() -> cli.Parser:
  p = cli.Parser(prog="python -m genlv_jax.evaluate", description=__doc__.split("\n\n")[0],
                 epilog=__doc__[__doc__.index("PSNR / SSIM conventions"):],
                 formatter_class=argparse.RawDescriptionHelpFormatter)
  cli.add_model_arguments(p, "untrained weights")
  p.add_argument("--tasks", default=None, help="task names, paper names or sets (acmmm30, "
                 "procedural, all), comma-separated; default: the config's data.tasks")
  p.add_argument("--source", default=None, help="builtin | folder:PATH | tfds:NAME; default: "
                                                "the config's data.source")
  p.add_argument("--paired", default=None, help="'TASK=INPUT_DIR|TARGET_DIR;…' for paired "
                                                "tasks; default: the config's data.paired")
  p.add_argument("--num-images", type=int, default=None, help="default 8; with --protocol: "
                 "every test image of the testset")
  p.add_argument("--num-prompts", type=int, default=None, help="default 5; with --protocol: "
                 "every prompt image of the testset")
  p.add_argument("--protocol", choices=protocol.PROTOCOLS, default=None, help="the authors' "
                 "test protocol on a prepared --testset, printed as the journal's Tables VI–IX")
  p.add_argument("--testset", default=None, metavar="DIR", help="written by `python -m "
                 "genlv_jax.data.prepare testset` (with --protocol)")
  p.add_argument("--crop", type=int, default=None, help=f"centre crop (px, 1 to {MAX_CROP}); "
                                                        "default config.image_size")
  p.add_argument("--batch-size", type=int, default=8)
  p.add_argument("--seed", type=int, default=None, help="default: config.seed")
  p.add_argument("--convention", choices=CONVENTIONS, default="ours", help=(
      "how PSNR/SSIM are computed: ours (default; dm_pix on the float images, as the trainer "
      "logs) or basicsr (8-bit images, --crop-border, Y channel by default, float64, as "
      "BasicSR's calculate_psnr/calculate_ssim and the restoration papers)"))
  p.add_argument("--y-channel", action=argparse.BooleanOptionalAction, default=None, help=(
      "PSNR/SSIM on the Y channel (BT.601 luma) or, with --no-y-channel, on RGB; default: RGB "
      "for --convention ours, Y for basicsr"))
  p.add_argument("--crop-border", type=int, default=None, metavar="N", help=(
      "pixels cut from each edge before PSNR/SSIM, --convention basicsr only (default 0; "
      "super-resolution papers cut the scale factor)"))
  p.add_argument("--mismatch", action="store_true", help="add the mismatch test")
  p.add_argument("--lpips-weights", default=None, metavar="PATH", help=(
      "add LPIPS (AlexNet, v0.1) for restoration, enhancement and stylization tasks (Table "
      "VIII reports it for styles), with these weights: "
      "the state dict of lpips.LPIPS(net='alex') as .pth or .safetensors. Make it where the "
      "lpips package is installed: python -c \"import lpips, torch; "
      "torch.save(lpips.LPIPS(net='alex').state_dict(), 'lpips_alex.pth')\". Without this "
      "option no LPIPS is computed (nothing is downloaded)"))
  p.add_argument("--output", required=True, help="report.json (report.md is written beside it)")
  return p


@cli.user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point: parse, then `evaluation.evaluate_checkpoint` (which checks everything before
  it loads the model), write the report and print its table."""
  args, overrides = cli.parse_with_overrides(_parser(), argv)
  checkpoint = None if args.random_init else api.resolve_checkpoint(args.checkpoint)
  config = api.config_for(args.config, checkpoint, overrides)
  if args.protocol or args.testset:
    return _run_protocol(args, config, checkpoint)
  report = evaluation.evaluate_checkpoint(
      lambda: api.load_model(config, checkpoint), config, args.output, args.tasks,
      source=args.source, paired=args.paired,
      num_images=8 if args.num_images is None else args.num_images,
      num_prompts=5 if args.num_prompts is None else args.num_prompts, crop=args.crop,
      seed=args.seed, y_channel=args.y_channel,
      mismatch=args.mismatch, batch_size=args.batch_size, lpips_weights=args.lpips_weights,
      warn=lambda message: print(f"warning: {message}", file=sys.stderr),
      convention=args.convention, crop_border=args.crop_border)
  report = {"config": args.config or f"{checkpoint.path}/config.json",
            "checkpoint": args.checkpoint or "random init", **report}
  json_path, md_path = evaluation.write_report(report, args.output)
  print(f"wrote {json_path} and {md_path}\n")
  print(evaluation.markdown_table(report), end="")
  return 0


def _run_protocol(args, config, checkpoint) -> int:
  """`--protocol glv101 --testset DIR`: `protocol.evaluate_testset`, then its tables."""
  report = protocol.evaluate_testset(
      lambda: api.load_model(config, checkpoint), config, args.output, args.testset,
      protocol=args.protocol, tasks=args.tasks, num_images=args.num_images,
      num_prompts=args.num_prompts, batch_size=args.batch_size, convention=args.convention,
      y_channel=args.y_channel, crop_border=args.crop_border, lpips_weights=args.lpips_weights,
      conflicting={"--source": args.source, "--paired": args.paired, "--crop": args.crop,
                   "--seed": args.seed, "--mismatch": args.mismatch},
      warn=lambda message: print(f"warning: {message}", file=sys.stderr))
  report = {"config": args.config or f"{checkpoint.path}/config.json",
            "checkpoint": args.checkpoint or "random init", **report}
  json_path, md_path = protocol.write_protocol_report(report, args.output)
  print(f"wrote {json_path} and {md_path}\n")
  print(protocol.tables_markdown(report), end="")
  return 0


if __name__ == "__main__":
  sys.exit(main())
