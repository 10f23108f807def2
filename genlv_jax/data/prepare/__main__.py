"""`python -m genlv_jax.data.prepare`: GLV-Bench training pairs and test sets as ArrayRecord
shards, made by an Apache Beam pipeline (DirectRunner here; Dataflow, Flink or Spark unchanged).

    prepare paired  --root /data/GenLV_Processed_Data --output OUT [--tasks dehazing,…]
    prepare targets --task depth_estimation --teacher my_models:depth --source SRC --output OUT
    prepare heavy   --task rtv --source SRC --output OUT [--levels 5]
    prepare testset --source SRC --output OUT [--tasks procedural] [--num-images 528]
    … [--shard-size 256] [--resize N] [--bit-depth 8|16] -- [Beam options: --runner=…]

SRC is `builtin`, `folder:PATH` (PATH may be `gs://…`) or `tfds:NAME` (`--data-dir`,
`--split`, `--image-key`); `--root DIR` is `folder:DIR`. Options after `--`, and any other
option Beam's PipelineOptions knows, go to Beam; without `--runner` the DirectRunner runs on
every core. Each task's shards land in OUT/<task>/; a rerun with the same arguments writes only
the shards that are missing. The record format is in `genlv_jax.data.prepare.shards`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from genlv_jax import cli
from genlv_jax.data.prepare import jobs, manifest, testset
from genlv_jax.data.prepare.items import SourceItems, check_spec
from genlv_jax.data.task_selection import HEAVY_TASKS, TASK_SETS
from genlv_jax.errors import UserError
from genlv_jax.tasks import get_task, registry


def _task_list(spec: str) -> list[str]:
  """Task names from a comma-separated list of names, paper names and sets (`procedural`,
  `all`, `acmmm30`, `heavy`, `paired`, `model`)."""
  sets = {**TASK_SETS, "heavy": lambda: HEAVY_TASKS,
          "paired": lambda: tuple(d.task for d in manifest.PAIRED_DATASETS),
          "model": lambda: tuple(t.name for t in registry.all_tasks() if t.source == "model")}
  names: dict[str, None] = {}
  for item in (s.strip() for s in spec.split(",")):
    if item.lower() in sets:
      names.update(dict.fromkeys(sets[item.lower()]()))
    elif item:
      try:
        names[get_task(item).name] = None
      except KeyError as e:
        raise UserError(str(e.args[0])) from None
  if not names:
    raise UserError(f"--tasks {spec!r} selects no task")
  return list(names)


def _require(names: list[str], wanted: str, command: str, hint: str) -> list[str]:
  bad = [n for n in names if get_task(n).source != wanted]
  if bad:
    raise UserError(f"{command} makes {wanted} tasks; {', '.join(bad)} "
                    f"{'is' if len(bad) == 1 else 'are'} {get_task(bad[0]).source} ({hint})")
  return names


def _source(args) -> SourceItems:
  if bool(args.source) == bool(args.root):
    raise UserError("give one of --source SOURCE and --root DIR")
  spec = args.source or f"folder:{args.root}"
  check_spec(spec)
  return SourceItems(spec, data_dir=args.data_dir, split=args.split, image_key=args.image_key)


def _parser() -> cli.Parser:
  p = cli.Parser(prog="python -m genlv_jax.data.prepare", description=__doc__.split("\n\n")[0],
                 epilog=__doc__[__doc__.index("SRC is"):],
                 formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
  # No abbreviations: an option meant for Beam must not be taken for a prefix of one of ours.
  commands = p.add_subparsers(dest="command", required=True, parser_class=cli.Parser)

  def common(sub, source: bool = True):
    sub.add_argument("--output", required=True, help="output folder (local or gs://…)")
    sub.add_argument("--shard-size", type=int, default=256, help="records per shard")
    sub.add_argument("--bit-depth", type=int, choices=(8, 16), default=8,
                     help="PNG bits per channel (16 keeps HDR / 16-bit data)")
    sub.add_argument("--limit", type=int, default=0, help="only the first N items (0: all)")
    sub.add_argument("--no-progress", dest="progress", action="store_false")
    if source:
      sub.add_argument("--source", help="builtin | folder:PATH | tfds:NAME")
      sub.add_argument("--root", help="a folder of images (= --source folder:DIR)")
      sub.add_argument("--data-dir", default="", help="tfds data_dir")
      sub.add_argument("--split", default="train", help="tfds split")
      sub.add_argument("--image-key", default="", help="tfds image feature")
      sub.add_argument("--seed", type=int, default=0)

  paired = commands.add_parser("paired", allow_abbrev=False,
                               help="pairs of a dataset folder in a known layout")
  paired.add_argument("--root", required=True, help="the dataset folder, or the authors' "
                      "GenLV_Processed_Data tree")
  paired.add_argument("--tasks", "--task", default="paired", help="paired (and model) tasks; "
                      "default: every paired task found under --root")
  common(paired, source=False)
  paired.add_argument("--resize", type=int, default=0, help="resize both to N×N (0: as is)")

  targets = commands.add_parser("targets", allow_abbrev=False,
                                help="(image, teacher(image)) for a model task")
  targets.add_argument("--task", "--tasks", dest="tasks", required=True)
  targets.add_argument("--teacher", required=True, help="MODULE:CALLABLE taking and returning "
                       "numpy HxWx3 float32 in [0, 1]; each worker process imports it (a GPU "
                       "model: `-- --direct_num_workers=1`, one process holds it)")
  common(targets)
  targets.add_argument("--resize", type=int, default=0, help="resize to N×N first (0: as is)")

  heavy = commands.add_parser("heavy", allow_abbrev=False,
                              help="precomputed pairs of slow procedural tasks")
  heavy.add_argument("--task", "--tasks", dest="tasks", required=True,
                     help="procedural tasks, or `heavy` (rtv, multi_scale_tm, "
                     "local_laplacian_filtering, jpeg2000_restoration)")
  heavy.add_argument("--levels", type=int, default=5, help="discrete severities (0: uniform)")
  common(heavy)
  heavy.add_argument("--resize", type=int, default=0, help="resize to N×N first (0: as is)")

  testset = commands.add_parser("testset", allow_abbrev=False,
                                help="fixed test and prompt pairs per task")
  testset.add_argument("--tasks", "--task", default="procedural",
                       help="procedural tasks (default: all of them)")
  testset.add_argument("--num-images", type=int, default=528,
                       help="test images per task (the authors' Common528: 528)")
  testset.add_argument("--num-prompts", type=int, default=1,
                       help="prompt images (the authors': one)")
  testset.add_argument("--size", dest="resize", type=int, default=256,
                       help="images resized to N×N (the authors': 256)")
  testset.add_argument("--levels", type=int, default=5,
                       help="severity levels (the authors': ImageNet-C's 1–5)")
  common(testset)
  return p


def make_job(args):
  """The job object of the parsed arguments (everything checked that can be on the launcher)."""
  if args.resize < 0 or args.limit < 0 or getattr(args, "levels", 0) < 0:
    raise UserError("--resize, --size, --limit and --levels cannot be negative")
  names = _task_list(args.tasks)
  if args.command == "paired":
    names = [n for n in names if get_task(n).source != "procedural"]
    if not names:
      raise UserError("paired makes paired_dataset / model tasks; use heavy or testset for "
                      "procedural ones")
    found, absent = [], []
    for name in names:
      try:
        manifest.find_layouts(args.root, name)
        found.append(name)
      except UserError:
        if len(names) == 1:
          raise
        absent.append(name)
    if not found:
      raise UserError(f"no known layout of {args.tasks} under {args.root} (see "
                      "genlv_jax.data.prepare.manifest)")
    if absent:
      print(f"not under {args.root} (left out): {', '.join(absent)}", file=sys.stderr)
    return jobs.PairedJob(args.root, found, args.resize, args.bit_depth, args.limit)
  source = _source(args)
  common = dict(source=source, resize=args.resize, bit_depth=args.bit_depth, seed=args.seed,
                limit=args.limit)
  if args.command == "targets":
    names = _require(names, "model", "targets", "give its pairs with `paired`, or use heavy")
    job = jobs.TargetsJob(tasks=names, teacher=args.teacher, **common)
    job.check_teacher()  # a wrong teacher fails here, not on every worker
    return job
  if args.command == "heavy":
    names = _require(names, "procedural", "heavy", "see paired / targets")
    shared = [n for n in names if get_task(n).shared]
    if shared:
      raise UserError(f"{shared[0]} draws parameters its prompt and input share per sample; "
                      "precomputed pairs cannot share them: synthesise it on the fly")
    return jobs.HeavyJob(tasks=names, levels=args.levels, **common)
  names = [n for n in names if get_task(n).procedural]
  if not names:
    raise UserError("testset makes procedural tasks; evaluate paired tasks with --paired")
  return testset.TestsetJob(tasks=names, num_images=args.num_images,
                            num_prompts=args.num_prompts, levels=args.levels, **common)


def _split_beam_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  argv = list(argv)
  if "--" in argv:
    i = argv.index("--")
    return argv[:i], argv[i + 1:]
  return argv, []


@cli.user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point: parse, plan on the launcher, run the pipeline, print the summary."""
  ours, beam_args = _split_beam_args(sys.argv[1:] if argv is None else argv)
  args, leftover = _parser().parse_known_args(ours)
  try:
    from genlv_jax.data.prepare import pipeline  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError(f"apache-beam is not installed ({e}): pip install -e '.[prepare]' "
                    "(or 'apache-beam>=2.77')") from None
  beam_args = pipeline.check_beam_args(leftover) + beam_args
  job = make_job(args)
  summary = pipeline.run(job, args.output, args.shard_size, beam_args, progress=args.progress)
  if args.command == "testset":
    testset.write_description(args.output, job.description(summary["_names"]))
  print(pipeline.format_summary(summary), end="")
  if pipeline.total_records(summary) == 0:
    raise UserError(f"no record written: every input was skipped (first: "
                    f"{pipeline.first_skip(summary)})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
