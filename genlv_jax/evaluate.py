"""`python -m genlv_jax.evaluate`: per-task metrics as in the papers' tables, with the spread
over prompts (large paper Table V / ACMMM Table 4) and the mismatch test (ACMMM §4.4, Fig. 7).

    python -m genlv_jax.evaluate --config configs/base.py --checkpoint CKPT \
        --tasks gaussian_denoising,GB,canny --source builtin --num-images 8 --num-prompts 5 \
        --output report.json [--y-channel] [--mismatch] [--lpips-weights lpips_alex.pth]

N test images (`--num-images`) per task, each with K prompt pairs (`--num-prompts`) made from
other images; the report gives per task the mean and standard deviation over the K prompt pairs
beside the identity baseline (`genlv_jax.evaluation` says how samples and metrics are made).
When `--source` is the training source (the default), only the images the trainer holds out are
test inputs: with `--num-images config.eval_images --num-prompts config.eval_prompts` and the
trainer's tasks, the numbers are those the trainer logged for the same checkpoint. `paired_dataset`
/ `model` tasks need `--paired 'TASK=INPUT_DIR|TARGET_DIR;…'` (default: the config's
`data.paired`) and are skipped with a warning otherwise; when none of the requested tasks can be
evaluated, nothing runs (exit 2, with the reason). LPIPS needs `--lpips-weights`: nothing is
downloaded. The JSON report and a Markdown table (same path, `.md`) are written, and the
per-task table is printed.

Every option, the tasks, the image source and paired folders, the LPIPS weights and the report's
location are checked (the folder created) before the model is loaded: a mistake is one `error:`
line and exit 2. Crops are at most MAX_CROP px: each crop runs through the model whole (no
tiles), and the bottleneck's global attention needs memory in the square of the pixel count.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from genlv_jax import api, cli, evaluation
from genlv_jax.config_io import load_config
from genlv_jax.errors import UserError
from genlv_jax.evaluation import lpips
from genlv_jax.evaluation.evaluator import LPIPS_CATEGORIES

# The largest `--crop`: a 1024 px crop already holds 128x128 latent tokens, whose global
# attention map takes 1 GiB per head and image in float32; beyond it, run `infer --tile`.
MAX_CROP = 1024


def _parser() -> cli.Parser:
  p = cli.Parser(prog="python -m genlv_jax.evaluate", description=__doc__.split("\n\n")[0])
  cli.add_model_arguments(p, "untrained weights")
  p.add_argument("--tasks", default=None, help="task names, paper names or sets (acmmm30, "
                 "procedural, all), comma-separated; default: the config's data.tasks")
  p.add_argument("--source", default=None, help="builtin | folder:PATH | tfds:NAME; default: "
                                                "the config's data.source")
  p.add_argument("--paired", default=None, help="'TASK=INPUT_DIR|TARGET_DIR;…' for paired "
                                                "tasks; default: the config's data.paired")
  p.add_argument("--num-images", type=int, default=8)
  p.add_argument("--num-prompts", type=int, default=5)
  p.add_argument("--crop", type=int, default=None, help=f"centre crop (px, 1 to {MAX_CROP}); "
                                                        "default config.image_size")
  p.add_argument("--batch-size", type=int, default=8)
  p.add_argument("--seed", type=int, default=None, help="default: config.seed")
  p.add_argument("--y-channel", action="store_true", help="PSNR/SSIM on BT.601 luma")
  p.add_argument("--mismatch", action="store_true", help="add the mismatch test")
  p.add_argument("--lpips-weights", default=None, metavar="PATH", help=(
      "add LPIPS (AlexNet, v0.1) for restoration and enhancement tasks, with these weights: "
      "the state dict of lpips.LPIPS(net='alex') as .pth or .safetensors. Make it where the "
      "lpips package is installed: python -c \"import lpips, torch; "
      "torch.save(lpips.LPIPS(net='alex').state_dict(), 'lpips_alex.pth')\". Without this "
      "option no LPIPS is computed (nothing is downloaded)"))
  p.add_argument("--output", required=True, help="report.json (report.md is written beside it)")
  return p


def _warn(message: str) -> None:
  print(f"warning: {message}", file=sys.stderr)


def check_numbers(num_images: int, num_prompts: int, batch_size: int, crop: int,
                  seed: int = 0) -> None:
  """Raises UserError (one line naming the option) for a count, crop or seed that cannot work."""
  for option, value in (("--num-images", num_images), ("--num-prompts", num_prompts),
                        ("--batch-size", batch_size)):
    if value < 1:
      raise UserError(f"{option} must be at least 1, got {value}")
  if seed < 0:  # numpy's seed sequences take non-negative integers only
    raise UserError(f"--seed must be at least 0, got {seed}")
  if not 1 <= crop <= MAX_CROP:
    raise UserError(f"--crop must be between 1 and {MAX_CROP} px, got {crop}: each crop runs "
                    "through the model whole (use infer --tile for larger images)")


@cli.user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point: parse, check options, report location, LPIPS weights, tasks and samples, then
  load the model, evaluate, write and print the table."""
  args, overrides = cli.parse_with_overrides(_parser(), argv)
  config = load_config(args.config, overrides)
  checkpoint = None if args.random_init else api.resolve_checkpoint(args.checkpoint)
  crop = int(config.image_size) if args.crop is None else args.crop
  check_numbers(args.num_images, args.num_prompts, args.batch_size, crop,
                int(config.seed) if args.seed is None else args.seed)
  evaluation.check_report_output(args.output)
  lpips_fn = None
  if args.lpips_weights:  # a wrong file fails here, before the model is built
    if crop < lpips.MIN_SIZE:
      raise UserError(f"LPIPS needs crops of at least {lpips.MIN_SIZE} px (--crop {crop})")
    lpips_fn = evaluation.lpips_metric(lpips.load_lpips(args.lpips_weights))
  # The samples before the model: an unknown task, a missing source or paired folder, or no
  # evaluable task at all fails without the cost of loading it.
  samples = evaluation.make_samples(
      config, args.tasks, source=args.source, paired=args.paired, num_images=args.num_images,
      crop=crop, seed=args.seed, mismatch=args.mismatch)
  if not samples.tasks:
    reasons = "; ".join(f"{name}: {why}" for name, why in samples.skipped.items())
    raise UserError(f"none of the requested tasks can be evaluated ({reasons})")
  for name, why in samples.skipped.items():
    _warn(f"skipping {name}: {why}")
  if lpips_fn is not None and not any(s.task.category in LPIPS_CATEGORIES
                                      for s in samples.tasks.values()):
    _warn(f"LPIPS is computed for {' and '.join(LPIPS_CATEGORIES)} tasks only; none is "
          "evaluated here, so the report has no LPIPS")
  predictor = api.load_model(config, checkpoint)
  report = evaluation.run_evaluation(
      config, predictor, args.tasks, source=args.source, paired=args.paired,
      num_images=args.num_images, num_prompts=args.num_prompts, crop=crop, seed=args.seed,
      y_channel=args.y_channel, mismatch=args.mismatch, batch_size=args.batch_size,
      lpips_fn=lpips_fn, samples=samples)
  report = {"config": args.config, "checkpoint": args.checkpoint or "random init", **report}
  if args.lpips_weights:
    report["lpips_weights"] = args.lpips_weights
  for name, count in report.get("non_finite_predictions", {}).items():
    _warn(f"{name}: {count} prediction value(s) are not finite (NaN or infinity); its metrics "
          "are NaN")
  json_path, md_path = evaluation.write_report(report, args.output)
  print(f"wrote {json_path} and {md_path}\n")
  print(evaluation.markdown_table(report), end="")
  return 0


if __name__ == "__main__":
  sys.exit(main())
