"""`python -m genlv_jax.tasks`: list the catalogue, draw a task, write sample quadruplets.

  list [--json] [--config C [--config.F=V ...]]  the 101 tasks and what each needs (JSON: a
                                                 list of objects); with a config, whether the
                                                 configured run has each one's data
  show TASK --output sheet.png [--seed S]        prompt pair + input/target at 3 severities,
                                                 with column titles and a severity per row
  sample TASK|all --output DIR [--seed S] [--size 128] [--format npz|png]
                                                 one quadruplet per procedural task: DIR/TASK.npz,
                                                 or DIR/TASK/{prompt_input,prompt_target,input,
                                                 target}.png, which `infer` takes as they are

A user mistake (unknown task, unwritable output, bad argument) prints one line on stderr and
exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from typing import Optional, Sequence

import cv2
import numpy as np

from genlv_jax.cli import EXIT_USER_ERROR, Parser
from genlv_jax.data import image_io
from genlv_jax.data.image_sources import BuiltinSource
from genlv_jax.errors import UserError
from genlv_jax.tasks import registry

SHOW_SEVERITIES = (0.0, 0.5, 1.0)
SAMPLE_FORMATS = ("npz", "png")
MAX_SIZE = 4096  # --size: the builtin photos are at most 741 px; beyond this only memory grows
# `sample --format png`: quadruplet key -> file name, named after `infer`'s options.
PNG_NAMES = {"prompt_source": "prompt_input", "prompt_target": "prompt_target",
             "input": "input", "target": "target"}
SAMPLE_EPILOG = """\
examples:
  python -m genlv_jax.tasks sample gaussian_denoising --output samples --format png
      writes samples/gaussian_denoising/{prompt_input,prompt_target,input,target}.png
  python -m genlv_jax.infer --config configs/base.py --checkpoint CKPT \\
      --prompt-input samples/gaussian_denoising/prompt_input.png \\
      --prompt-target samples/gaussian_denoising/prompt_target.png \\
      --input samples/gaussian_denoising/input.png --output denoised.png
"""


def _two_images(source, rng: np.random.Generator, size: int,
                photos_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Two different images of `source`, square-cropped (photos only: skip procedural ones)."""
  n = len(source)
  if photos_only:
    n = max(2, sum(not name.startswith("procedural:") for name in source.names))
  i, j = rng.choice(n, size=2, replace=False)
  return (image_io.center_square(source[int(i)], size),
          image_io.center_square(source[int(j)], size))


def _task(name: str) -> registry.Task:
  try:
    return registry.get_task(name)
  except KeyError as e:
    raise UserError(str(e.args[0])) from None


def _procedural(name: str) -> registry.Task:
  task = _task(name)
  if not task.procedural:
    raise UserError(f"task {task.name!r} is {task.source} ({task.dataset}); only procedural "
                     "tasks can be synthesised here")
  return task


def _prepare_dir(path: str) -> None:
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create output directory {path!r}: {e.strerror}") from None
  if not os.access(path, os.W_OK):
    raise UserError(f"output directory {path!r} is not writable")


def _run_status(args: argparse.Namespace) -> Optional[dict[str, dict]]:
  """{task: {"in_run", "kind", "origin"}} under `--config` (None without one): whether
  `data.tasks` trains it ("train"; "left out" from a set for want of data; "MISSING": named
  without data, the run would stop; "-": not selected) and where its data comes from."""
  if not args.config:
    return None
  # Imported here: `list` without a config needs none of it.
  from genlv_jax.config_io import load_config  # pylint: disable=import-outside-toplevel
  from genlv_jax.data import task_selection, task_sources  # pylint: disable=import-outside-toplevel
  config = load_config(args.config, args.overrides)
  plan = task_sources.plan(config)
  expanded = task_selection.expand_tasks(config.data.get("tasks", "acmmm30"))
  status = {}
  for name, data in plan.items():
    if name not in expanded:
      in_run = "-"
    elif data.kind == "missing":
      in_run = "MISSING" if expanded[name] else "left out"
    else:
      in_run = "train"
    status[name] = {"in_run": in_run, "kind": data.kind, "origin": data.origin}
  return status


def cmd_list(args: argparse.Namespace) -> None:
  # Imported here, like `_run_status`'s: task_sources reads image files only when opened.
  from genlv_jax.data import task_sources  # pylint: disable=import-outside-toplevel
  tasks = registry.all_tasks()
  status = _run_status(args)
  if args.json:
    items = []
    for t in tasks:
      item = {**t.to_dict(), "needs": task_sources.needs(t)}
      if status is not None:
        item["data"] = status[t.name]
      items.append(item)
    print(json.dumps(items, indent=1))
    return
  header = (f"{'table':>5} {'#':>2}  {'name':<36} {'paper name':<36} {'category':<18} "
            f"{'source':<14} {'severity (mild->strong)':<26} needs")
  print(header + ("  | in run | data" if status is not None else ""))
  for t in tasks:
    sev = t.severity
    knob = "-" if sev.fixed else f"{sev.param} {sev.mild:g}->{sev.strong:g}"
    line = (f"{t.table:>5} {t.index:>2}  {t.name:<36} {t.paper_name:<36} {t.category:<18} "
            f"{t.source:<14} {knob:<26} {task_sources.needs(t)}")
    if status is not None:
      line += f"  | {status[t.name]['in_run']} | {status[t.name]['origin']}"
    print(line)


SHEET_COLUMNS = ("prompt input", "prompt target", "input", "target")


def severity_label(task: registry.Task, severity: float) -> str:
  """A contact-sheet row's label: the severity and, unless it is fixed, the parameter it sets
  (`severity 0.5\nsigma=30`)."""
  if task.severity.fixed:
    return f"severity {severity:g}\n(fixed)"
  return f"severity {severity:g}\n{task.severity.param}={task.severity.value(severity):.3g}"


def contact_sheet(task: registry.Task, seed: int, size: int) -> np.ndarray:
  """uint8 RGB sheet titled with the task: one row per severity in `SHOW_SEVERITIES`, labelled
  with it, under the column titles prompt input, prompt target, input, target; made from two
  builtin images (cells of at least 128 px: smaller ones are enlarged)."""
  # Imported here so that `list` and `sample` stay free of jax (evaluation's package loads it).
  from genlv_jax.evaluation import grids  # pylint: disable=import-outside-toplevel
  source = BuiltinSource()
  rng = np.random.default_rng(seed)
  prompt_clean, input_clean = _two_images(source, rng, size, photos_only=True)
  rows, labels = [], []
  for s in SHOW_SEVERITIES:
    q = registry.make_quadruplet(task, prompt_clean, input_clean, s, rng)
    rows.append([q["prompt_source"], q["prompt_target"], q["input"], q["target"]])
    labels.append(severity_label(task, s))
  return grids.labelled_grid(rows, SHEET_COLUMNS, labels,
                             title=f"{task.name} ({task.paper_name}), seed {seed}")


def cmd_show(args: argparse.Namespace) -> None:
  task = _procedural(args.task)
  if not cv2.haveImageWriter(args.output):
    raise UserError(f"cannot write image {args.output!r}: unknown image extension "
                     "(use .png or .jpg)")
  _prepare_dir(os.path.dirname(os.path.abspath(args.output)))
  sheet = contact_sheet(task, args.seed, args.size)
  try:
    ok = cv2.imwrite(args.output, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
  except cv2.error:
    ok = False
  if not ok:
    raise UserError(f"cannot write image {args.output!r}")
  print(args.output)


def cmd_sample(args: argparse.Namespace) -> None:
  tasks = registry.procedural_tasks() if args.task == "all" else (_procedural(args.task),)
  _prepare_dir(args.output)
  source = BuiltinSource()
  for task in tasks:
    # One independent stream per task, so `sample all` and `sample TASK` agree.
    rng = np.random.default_rng([args.seed, zlib.crc32(task.name.encode())])
    severity = float(rng.uniform())
    prompt_clean, input_clean = _two_images(source, rng, args.size)
    q = registry.make_quadruplet(task, prompt_clean, input_clean, severity, rng)
    if args.format == "png":  # 8-bit files for `infer`; the .npz keeps float32
      path = os.path.join(args.output, task.name)
      for key, name in PNG_NAMES.items():
        image_io.write_image(os.path.join(path, f"{name}.png"), q[key])
    else:
      path = os.path.join(args.output, f"{task.name}.npz")
      try:
        np.savez_compressed(path, **q)
      except OSError as e:
        raise UserError(f"cannot write {path!r}: {e.strerror}") from None
    print(json.dumps({"task": task.name, "path": path, "severity": round(severity, 4)}))


def build_parser() -> argparse.ArgumentParser:
  parser = Parser(prog="python -m genlv_jax.tasks", description=__doc__.split("\n")[0],
                  epilog=SAMPLE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
  p = sub.add_parser("list", help="list the 101 GLV-Bench tasks (names and paper names), what "
                     "each needs and, with --config, whether that run has it")
  p.add_argument("--json", action="store_true", help="print a JSON list")
  p.add_argument("--config", help="a training config (fields can be overridden with "
                 "--config.FIELD=VALUE): say per task whether its data is configured")
  p.set_defaults(func=cmd_list)
  p = sub.add_parser("show", help="draw a task's pairs at three severities")
  p.add_argument("task", help="task name or paper name")
  p.add_argument("--output", required=True, help="image file to write (e.g. sheet.png)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--size", type=int, default=160, help="tile size in pixels")
  p.set_defaults(func=cmd_show)
  p = sub.add_parser("sample", help="write quadruplets as .npz files or PNG prompt pairs",
                     epilog=SAMPLE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("task", help="task name, paper name, or 'all' (every procedural task)")
  p.add_argument("--output", required=True, help="directory for TASK.npz files (npz) or "
                 "TASK/ folders of PNG files (png)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--size", type=int, default=128, help="image size in pixels")
  p.add_argument("--format", choices=SAMPLE_FORMATS, default="npz", help=(
      "npz: one TASK.npz (float32 prompt_source, prompt_target, input, target); png: "
      "TASK/prompt_input.png, prompt_target.png, input.png, target.png (8-bit), the files "
      "`python -m genlv_jax.infer` takes as --prompt-input, --prompt-target and --input"))
  p.set_defaults(func=cmd_sample)
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the CLI; returns the exit status."""
  try:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `--config.FIELD=VALUE` overrides go with `list --config`; argparse would refuse them.
    overrides = [a for a in argv if a.startswith("--config.")]
    args = build_parser().parse_args([a for a in argv if not a.startswith("--config.")])
    args.overrides = overrides
    if overrides and not getattr(args, "config", None):
      raise UserError(f"{overrides[0]}: config overrides go with `list --config CONFIG`")
    if getattr(args, "size", 16) < 16:
      raise UserError(f"--size must be at least 16, got {args.size}")
    if getattr(args, "size", 16) > MAX_SIZE:
      raise UserError(f"--size must be at most {MAX_SIZE}, got {args.size}")
    if getattr(args, "seed", 0) < 0:  # numpy's seed sequences take non-negative integers only
      raise UserError(f"--seed must be at least 0, got {args.seed}")
    args.func(args)
  except UserError as e:
    print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
    return EXIT_USER_ERROR
  except BrokenPipeError:  # e.g. `list | head`
    return 0
  return 0


if __name__ == "__main__":
  sys.exit(main())
