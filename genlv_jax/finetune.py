"""`python -m genlv_jax.finetune`: few-shot adaptation of GenLV to a new task from a handful of
input/target pairs (large paper §IV-C.4, "Few-shot Transfer", Fig. 12).

    python -m genlv_jax.finetune --config configs/base.py --checkpoint CKPT \
        --pairs-input pairs/input --pairs-target pairs/target --workdir ft \
        [--strategy full_backbone] [--steps 300 --lr 1e-4 --holdout 1 --patience 5]
    python -m genlv_jax.infer --config configs/base.py --checkpoint ft …

Writes WORKDIR/best (the best held-out parameters, replaced whenever they improve) and
WORKDIR/finetune_log.json; the strategies and the training recipe are described in
`genlv_jax.training.finetune`.

Ctrl-C (or SIGTERM) stops the run with one line saying which step's parameters WORKDIR/best
holds, and exit status 130 (143). The same command run again resumes from the last held-out
evaluation and ends as an uninterrupted run would; a command with other arguments (pairs,
strategy, steps, lr, …) for the same workdir is refused, and a finished run says it is done.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from genlv_jax import cli, host_tuning
from genlv_jax.errors import PathNotFoundError, UserError


def _parser() -> cli.Parser:
  from genlv_jax.training import finetune  # pylint: disable=import-outside-toplevel
  p = cli.Parser(prog="python -m genlv_jax.finetune",
                              description=__doc__.split("\n\n")[0])
  cli.add_model_arguments(p, "start from untrained weights (the paper's Fig. 12(g) baseline)")
  p.add_argument("--pairs-input", required=True, help="folder of input images")
  p.add_argument("--pairs-target", required=True, help="folder of targets (matched by stem)")
  p.add_argument("--strategy", default=finetune.DEFAULT_STRATEGY,
                 choices=tuple(finetune.STRATEGIES))
  p.add_argument("--workdir", required=True, help="writes best/, finetune_log.json and state/ "
                                                   "(what the same command resumes from)")
  p.add_argument("--steps", type=int, default=300)
  p.add_argument("--lr", type=float, default=1e-4)
  p.add_argument("--batch-size", type=int, default=4)
  p.add_argument("--crop", type=int, default=None, help="training crop; default "
                                                        "config.image_size")
  p.add_argument("--holdout", type=int, default=1, help="pairs held out for early stopping")
  p.add_argument("--eval-every", type=int, default=20, help="steps between held-out checks")
  p.add_argument("--patience", type=int, default=5, help="checks without improvement "
                                                         "before stopping")
  p.add_argument("--seed", type=int, default=0)
  return p


def check_arguments(args) -> None:
  """Refuses, before the pairs are read or a model is loaded, the numbers fine-tuning cannot use
  and a workdir it cannot write."""
  from genlv_jax.data import image_io  # pylint: disable=import-outside-toplevel
  for name in ("steps", "batch_size", "eval_every", "patience"):
    if getattr(args, name) < 1:
      raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
  if not args.lr > 0:
    raise UserError(f"--lr must be positive, got {args.lr}")
  if args.crop is not None and args.crop < 8:
    raise UserError(f"--crop must be at least 8 px, got {args.crop}")
  if args.seed < 0:
    raise UserError(f"--seed must be >= 0, got {args.seed}")
  image_io.prepare_output_dir(args.workdir, "--workdir")


@cli.user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point: parse, read the pairs, load the weights, fine-tune."""
  # Imported here, after host_tuning's re-exec, so that jax and orbax load once.
  from genlv_jax import api  # pylint: disable=import-outside-toplevel
  from genlv_jax.training import finetune  # pylint: disable=import-outside-toplevel
  args, overrides = cli.parse_with_overrides(_parser(), argv)
  check_arguments(args)
  checkpoint = None if args.random_init else api.resolve_checkpoint(args.checkpoint)
  config = api.config_for(args.config, checkpoint, overrides)
  for folder in (args.pairs_input, args.pairs_target):
    if not os.path.isdir(folder):
      raise PathNotFoundError(f"pairs folder not found: {folder}")
  before = finetune.read_log(args.workdir)
  try:
    data = finetune.FewShotPairs(args.pairs_input, args.pairs_target, args.holdout,
                                 int(config.image_size) if args.crop is None else args.crop)
    params = api.load_model(config, checkpoint).params
    log = finetune.finetune(config, params, data, args.workdir, args.strategy, args.steps,
                            args.lr, args.batch_size, args.eval_every, args.patience,
                            args.seed, initial_checkpoint=checkpoint.path if checkpoint
                            else "random-init")
  except finetune.Interrupted as e:  # best/ and the log are consistent; e says what is where
    print(e, file=sys.stderr)
    return 128 + e.signum  # 130 for Ctrl-C, as a shell reports a process it interrupted
  except KeyboardInterrupt:  # before fine-tuning wrote anything
    print(f"interrupted before fine-tuning started: nothing written to {args.workdir}",
          file=sys.stderr)
    return 130
  if before is not None and before.get("finished"):
    done = "already finished: "
  elif len(log.get("resumed_from", [])) > len((before or {}).get("resumed_from", [])):
    done = f"resumed from step {log['resumed_from'][-1]}: "
  else:
    done = ""
  print(f"{done}held-out L1 {log['initial_heldout_l1']:.5f} -> {log['best_heldout_l1']:.5f} "
        f"(best at step {log['best_step']} of {log['evaluations'][-1]['step']}; "
        f"{log['strategy']}: {log['trainable_params']:,} of {log['total_params']:,} params "
        f"trained); checkpoint {log['checkpoint']}")
  return 0


if __name__ == "__main__":
  host_tuning.reexec_tuned_for_cpu()
  sys.exit(main())
