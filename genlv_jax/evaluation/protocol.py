"""`python -m genlv_jax.evaluate --protocol glv101 --testset DIR`: the authors' test protocol on
the fixed sets that `python -m genlv_jax.data.prepare testset` wrote, reported as the journal's
Tables VI–IX (per category: task, metric, ours, and the journal's GenLV-Base / -Large / -Huge
values beside it, from `paper_tables`).

Every test pair of a task is evaluated with the prompt pair of its group (its severity level,
or its own for tasks whose prompt shares drawn parameters), as the authors evaluate each test
image with the prompt of its severity; with K prompt images the report gives the mean and the
spread over the K (`evaluator.evaluate`, the same metrics as `python -m genlv_jax.evaluate`).
The identity baseline (the input taken as the output) sits beside ours. Metrics follow the
tables: PSNR / SSIM for VI and VII, LPIPS for VIII (with `--lpips-weights`), MAE for IX.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
from absl import logging

from genlv_jax.data.prepare import shards
from genlv_jax.data.prepare.testset import TESTSET_FILE
from genlv_jax.errors import PathNotFoundError, UserError
from genlv_jax.evaluation import evaluator, lpips, paper_tables
from genlv_jax.evaluation.metrics import default_y_channel
from genlv_jax.evaluation.report import check_report_output, finite_tree
from genlv_jax.evaluation.samples import EvalSamples, TaskSamples
from genlv_jax.tasks import get_task

PROTOCOLS = ("glv101",)
PAPER_COLUMNS = ("base", "large", "huge")
_METRIC_LABELS = {("psnr", "ssim"): "PSNR / SSIM ↑", ("lpips",): "LPIPS ↓", ("mae",): "MAE ↓"}


def read_testset(path: str) -> tuple[dict, dict[str, list[str]]]:
  """(the description `testset.json`, {task: its shard paths}) of a prepared testset.

  Raises:
    UserError: no testset there, or one whose shards are not all written.
  """
  description_path = os.path.join(path, TESTSET_FILE)
  if not os.path.isdir(path):
    raise PathNotFoundError(f"testset folder not found: {path}")
  if not os.path.isfile(description_path):
    raise UserError(f"{path} holds no {TESTSET_FILE}: write it with `python -m "
                    "genlv_jax.data.prepare testset --output DIR` (a run that stopped early is "
                    "finished by running it again)")
  with open(description_path, encoding="utf-8") as f:
    description = json.load(f)
  found = {}
  for task, entry in description["tasks"].items():
    paths = [os.path.join(path, task, name) for name in entry["shards"]]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
      raise UserError(f"testset {path} is incomplete ({missing[0]} is missing): run `prepare "
                      "testset` again with the same arguments")
    found[task] = paths
  return description, found


def select_tasks(available: Sequence[str], spec: Optional[str]) -> list[str]:
  """The testset's tasks named by `spec` (names, paper names; None: all of them)."""
  if spec is None:
    return list(available)
  wanted = []
  for item in (s.strip() for s in spec.split(",") if s.strip()):
    if item.lower() in ("all", "procedural"):
      wanted += [t for t in available if t not in wanted]
      continue
    try:
      name = get_task(item).name
    except KeyError as e:
      raise UserError(str(e.args[0])) from None
    if name not in available:
      raise UserError(f"{name} is not in the testset (it holds {len(available)} tasks; "
                      "`prepare testset --tasks` chooses them)")
    wanted.append(name)
  if not wanted:
    raise UserError(f"--tasks {spec!r} selects no task")
  return wanted


def testset_samples(paths: Mapping[str, Sequence[str]], tasks: Sequence[str],
                    num_images: Optional[int], num_prompts: int) -> EvalSamples:
  """The fixed samples of `tasks`: the first `num_images` test pairs (None: all), each with
  prompt pair k of its group for k < `num_prompts`."""
  out = {}
  for name in tasks:
    data = shards.read_testset_task(paths[name], name)
    n = len(data.keys) if num_images is None else min(num_images, len(data.keys))
    groups = data.groups[:n]
    missing = [(g, k) for g in set(groups) for k in range(num_prompts)
               if (g, k) not in data.prompts]
    if missing:
      raise UserError(f"the testset of {name} has no prompt pair {missing[0][1]} for group "
                      f"{missing[0][0]} (it was written with fewer --num-prompts?)")

    def make_prompts(k: int, data=data, n=n):
      ps, pt = data.prompt_arrays(k)
      return ps[:n], pt[:n]

    out[name] = TaskSamples(get_task(name), data.inputs[:n], data.targets[:n], make_prompts)
  return EvalSamples(out, {}, None)


def evaluate_testset(load_model: Callable[[], Any], config, output: str, testset: str, *,
                     protocol: Optional[str] = "glv101", tasks: Optional[str] = None,
                     num_images: Optional[int] = None, num_prompts: Optional[int] = None,
                     batch_size: int = 8, convention: str = "ours",
                     y_channel: Optional[bool] = None, crop_border: Optional[int] = None,
                     lpips_weights: Optional[str] = None,
                     conflicting: Optional[Mapping[str, object]] = None,
                     warn: Callable[[str], None] = logging.warning) -> dict:
  """Checks the options, the report location and the testset, then loads the model and
  evaluates every selected task of the testset; returns the report (`tables_markdown` prints
  it). `conflicting`: options given that a testset fixes ({flag: value or None})."""
  del config  # the testset fixes images, size and prompts; the model comes from load_model
  if protocol is None:
    raise UserError(f"--testset goes with --protocol ({', '.join(PROTOCOLS)})")
  if protocol not in PROTOCOLS:
    raise UserError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
  if not testset:
    raise UserError(f"--protocol {protocol} needs --testset DIR (written by `python -m "
                    "genlv_jax.data.prepare testset`)")
  given = [flag for flag, value in (conflicting or {}).items() if value not in (None, False)]
  if given:
    raise UserError(f"{given[0]} does not apply with --protocol {protocol}: the testset fixes "
                    "the images, their size and the prompts")
  description, paths = read_testset(testset)
  size = int(description["size"])
  available = int(description["num_prompts"])
  num_prompts = available if num_prompts is None else num_prompts
  if not 1 <= num_prompts <= available:
    raise UserError(f"--num-prompts must be between 1 and {available} (the testset's prompt "
                    f"images), got {num_prompts}")
  if num_images is not None and num_images < 1:
    raise UserError(f"--num-images must be at least 1, got {num_images}")
  if batch_size < 1:
    raise UserError(f"--batch-size must be at least 1, got {batch_size}")
  if size > evaluator.MAX_CROP:  # each image runs through the model whole
    raise UserError(f"the testset's images are {size} px; evaluation takes at most "
                    f"{evaluator.MAX_CROP} px")
  crop_border = evaluator.check_metric_options(convention, crop_border, size)
  y_channel = default_y_channel(convention, y_channel)
  check_report_output(output)
  lpips_fn = None
  if lpips_weights:
    if size < lpips.MIN_SIZE:
      raise UserError(f"LPIPS needs images of at least {lpips.MIN_SIZE} px; the testset's are "
                      f"{size} px")
    lpips_fn = evaluator.lpips_metric(lpips.load_lpips(lpips_weights))
  names = select_tasks(list(paths), tasks)
  if lpips_fn is None and any(get_task(n).category == "stylization" for n in names):
    warn("Table VIII reports LPIPS for stylization; add --lpips-weights to measure it")
  samples = testset_samples(paths, names, num_images, num_prompts)
  report, _ = evaluator.evaluate(load_model(), samples, num_prompts, y_channel, batch_size,
                                 lpips_fn, convention=convention, crop_border=crop_border)
  report.update({"protocol": protocol, "testset": testset, "size": size,
                 "levels": description["levels"], "source": description["source"],
                 "seed": description["seed"]})
  report["tables"] = table_rows(report["tasks"])
  if lpips_weights:
    report["lpips_weights"] = lpips_weights
  return report


def _paper_cell(value, metrics: Sequence[str]) -> Optional[list]:
  if value is None:
    return None
  return list(value) if len(metrics) == 2 else [value]


def table_rows(results: Mapping[str, Mapping]) -> dict[str, list[dict]]:
  """{table: rows} in the journal's order; tasks outside Tables VI–IX under "other"."""
  rows: dict[str, list[dict]] = {}
  papers = paper_tables.paper_rows()
  for name, result in results.items():
    task = get_task(name)
    paper = papers.get(name)
    if paper is None:
      metrics = tuple(m for m in ("psnr", "ssim", "mae") if m in result["metrics"])
      table, index = "other", 0
    else:
      metrics, table, index = paper.metrics, paper.table, paper.index
    rows.setdefault(table, []).append({
        "task": name, "paper_name": task.paper_name, "index": index, "group": task.group,
        "metrics": list(metrics),
        "ours": [result["metrics"].get(m, {}).get("mean") for m in metrics],
        "std": [result["metrics"].get(m, {}).get("std") for m in metrics],
        "identity": [result["identity"].get(m) for m in metrics],
        # Table VIII without --lpips-weights: our PSNR / SSIM at least, beside the "–".
        "psnr_ssim": ([result["metrics"][m]["mean"] for m in ("psnr", "ssim")]
                      if "lpips" in metrics and "lpips" not in result["metrics"]
                      and "psnr" in result["metrics"] else None),
        "paper": {c: _paper_cell(paper.values.get(c), metrics) if paper else None
                  for c in PAPER_COLUMNS}})
  order = list(paper_tables.TABLE_METRICS) + ["other"]
  return {t: sorted(rows[t], key=lambda r: r["index"]) for t in order if t in rows}


def _fmt(values: Optional[Sequence[Optional[float]]], metrics: Sequence[str],
         stds: Optional[Sequence[Optional[float]]] = None) -> str:
  """`28.62 / 0.859` (PSNR / SSIM), `0.1378` (LPIPS), `4.44` (MAE); each `± std` when given."""
  if values is None or all(v is None for v in values):
    return "–"
  digits = {"psnr": 2, "ssim": 3, "lpips": 4, "mae": 2}
  out = []
  for i, (value, metric) in enumerate(zip(values, metrics)):
    if value is None:
      out.append("?")
      continue
    text = (f"{value:.{digits[metric]}f}" if np.isfinite(value) else
            "NaN" if np.isnan(value) else "∞" if value > 0 else "−∞")
    if stds is not None and stds[i] is not None:
      text += f" ± {stds[i]:.{digits[metric]}f}"
    out.append(text)
  return " / ".join(out)


def _mean_row(rows: Sequence[Mapping]) -> dict:
  """The mean of ours, identity and each paper column over the rows (a paper column only when
  every row has it), like the journal's per-category averages (its Fig. 9)."""
  def average(cells):
    if not cells or any(c is None or any(v is None for v in c) for c in cells):
      return None
    return [float(np.mean([c[i] for c in cells])) for i in range(len(cells[0]))]
  return {"ours": average([r["ours"] for r in rows]),
          "identity": average([r["identity"] for r in rows]),
          "paper": {c: average([r["paper"][c] for r in rows]) for c in PAPER_COLUMNS}}


def tables_markdown(report: Mapping) -> str:
  """The report as the journal's per-category tables."""
  k = report["num_prompts"]
  lines = [f"# GLV-Bench protocol ({report['protocol']})\n",
           f"{report.get('checkpoint', '')} on the testset `{report['testset']}` (from "
           f"`{report['source']}`): {report['num_images']} test images per task at "
           f"{report['size']}², {report['levels']} severity levels, {k} prompt image(s); "
           f"PSNR/SSIM in the {report['convention']} convention, {report['color']}."]
  columns = " | ".join(f"{paper_tables.COLUMN_TITLES[c]} (paper)" for c in PAPER_COLUMNS)
  spread = f" (mean ± std over {k} prompts)" if k > 1 else ""
  for table, rows in report["tables"].items():
    title = (f"Table {table}: {paper_tables.TABLE_TITLES[table]}" if table != "other"
             else "Tasks outside Tables VI–IX")
    lines += ["", f"## {title}", "",
              f"| group | # | task | metric | ours{spread} | identity | {columns} |",
              "|---|---|---|---|---|---|" + "---|" * len(PAPER_COLUMNS)]
    for r in rows:
      ours = _fmt(r["ours"], r["metrics"], r["std"] if k > 1 else None)
      if r.get("psnr_ssim"):
        ours += f" (PSNR / SSIM {_fmt(r['psnr_ssim'], ('psnr', 'ssim'))})"
      lines.append(f"| {r['group']} | {r['index']} | {r['paper_name']} | "
                   f"{_METRIC_LABELS.get(tuple(r['metrics']), '/'.join(r['metrics']))} | "
                   f"{ours} | {_fmt(r['identity'], r['metrics'])} | " +
                   " | ".join(_fmt(r["paper"][c], r["metrics"]) for c in PAPER_COLUMNS) + " |")
    if table != "other" and len(rows) > 1:
      mean = _mean_row(rows)
      lines.append(f"| | | mean of {len(rows)} | | {_fmt(mean['ours'], rows[0]['metrics'])} | "
                   f"{_fmt(mean['identity'], rows[0]['metrics'])} | " +
                   " | ".join(_fmt(mean["paper"][c], rows[0]["metrics"]) for c in PAPER_COLUMNS)
                   + " |")
    if table == "VIII" and any(r["ours"][0] is None for r in rows):
      lines.append("\nLPIPS needs --lpips-weights (nothing is downloaded).")
  return "\n".join(lines) + "\n"


def write_protocol_report(report: Mapping, output: str) -> tuple[str, str]:
  """Writes the report as JSON at `output` and the tables as Markdown beside it (`.md`)."""
  json_path, md_path = check_report_output(output)
  try:
    with open(json_path, "w", encoding="utf-8") as f:
      json.dump(finite_tree(report), f, indent=2, allow_nan=False)
    with open(md_path, "w", encoding="utf-8") as f:
      f.write(tables_markdown(report))
  except OSError as e:
    raise UserError(f"cannot write the report {output}: {e.strerror or e}") from e
  return json_path, md_path
