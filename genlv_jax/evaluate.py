"""`python -m genlv_jax.evaluate`: per-task metrics as in the papers' tables, with the spread
over prompts (large paper Table V / ACMMM Table 4) and the mismatch test (ACMMM §4.4, Fig. 7).

    python -m genlv_jax.evaluate --config configs/base.py --checkpoint CKPT \
        --tasks gaussian_denoising,GB,canny --source builtin --num-images 8 --num-prompts 5 \
        --output report.json [--y-channel] [--mismatch] [--lpips-weights lpips_alex.pth]

For each task, N test images (`--num-images`) are paired with K prompt pairs
(`--num-prompts`), each made from another clean image: the metric of prompt k is the mean over
the N images, and the report gives the mean and standard deviation (numpy's, ddof 0) of these K
means, beside the identity baseline (the input taken as the output). Metrics: PSNR and SSIM
(dm-pix; RGB as in the papers, `--y-channel` for BT.601 luma) for restoration, enhancement and
stylization, MAE on the 0–255 scale for feature extraction (`genlv_jax.evaluation`), and
LPIPS (AlexNet, v0.1; `genlv_jax.lpips`) for restoration and enhancement only when
`--lpips-weights` names its weights file: nothing is downloaded.

Test images come from `--source` (`builtin`, `folder:PATH`, `tfds:NAME`; default the config's
`data.source`): when it is the training source, only its held-out images (`data.holdout`, as the
trainer holds them out) are inputs; otherwise every image is. Images are centre-cropped to
`--crop` px. Procedural tasks are synthesised with fixed seeds: input i has severity
(i + 0.5) / N and its prompts the same severity and shared parameters (a filter choice), so
only the prompt varies with k. `paired_dataset` / `model` tasks need `--paired
'TASK=INPUT_DIR|TARGET_DIR;…'` and are skipped with a note otherwise.

`--mismatch` adds the mismatch test: the prompt of task A on the inputs of task B (and on clean
images), reporting PSNR(prediction, input) — the ideal answer to a wrong prompt is to leave the
input alone — and the metric against B's own target. The JSON report and a Markdown table
(same path, `.md`) are written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
from absl import logging

from genlv_jax import api, image_sources, lpips, paired_sources
from genlv_jax.cli import add_model_arguments, user_errors_exit
from genlv_jax.config_io import load_config
from genlv_jax.finetune import resolve_checkpoint
from genlv_jax.evaluation import image_metrics
from genlv_jax.input_pipeline import center_crop, holdout_indices
from genlv_jax.task_selection import TASK_SETS
from genlv_jax.tasks import get_task

_LABELS = {"psnr": "PSNR (dB) ↑", "ssim": "SSIM ↑", "mae": "MAE (0–255) ↓",
           "lpips": "LPIPS (AlexNet) ↓"}
# LPIPS measures the distance to a natural target photograph: feature-extraction maps (edges,
# depth …) and stylized targets are not what its AlexNet and lin layers were calibrated on.
LPIPS_CATEGORIES = ("restoration", "enhancement")
# (prediction, target) [N, H, W, 3] in [0, 1] -> per-image distances [N].
Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]


def resolve_tasks(spec: str, paired: Mapping[str, object]) -> tuple[list[str], dict[str, str]]:
  """(evaluable task names, {skipped task: why}) for a comma-separated list of task names,
  paper names and sets (`acmmm30`, `procedural`, `all`)."""
  names: dict[str, None] = {}
  for item in (s.strip() for s in spec.split(",")):
    if not item:
      continue
    if item.lower() in TASK_SETS:
      names.update(dict.fromkeys(TASK_SETS[item.lower()]()))
      continue
    try:
      names[get_task(item).name] = None
    except KeyError as e:
      raise ValueError(str(e.args[0])) from None
  if not names:
    raise ValueError(f"--tasks {spec!r} selects no task")
  paired_names = {get_task(k).name for k in paired}
  evaluable, skipped = [], {}
  for name in names:
    task = get_task(name)
    if task.procedural or name in paired_names:
      evaluable.append(name)
    else:
      skipped[name] = (f"{task.source} task ({task.dataset}): give its folders with --paired "
                       f"'{name}=INPUT_DIR|TARGET_DIR'")
  return evaluable, skipped


def _evenly(indices: np.ndarray, k: int) -> np.ndarray:
  return indices[(np.arange(k) * len(indices)) // k]


class TaskSamples:
  """The fixed test inputs/targets of one task and, per prompt index k, its prompt pairs."""

  def __init__(self, task, inputs: np.ndarray, targets: np.ndarray,
               make_prompts: Callable[[int], tuple[np.ndarray, np.ndarray]]):
    self.task, self.inputs, self.targets = task, inputs, targets
    self._make_prompts = make_prompts

  def prompts(self, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(prompt sources, prompt targets), [N, H, W, 3]: prompt pair k for each input."""
    return self._make_prompts(k)


class CleanImages:
  """Centre-cropped clean images of a source, split into test inputs and prompt images."""

  def __init__(self, source, crop: int, num_images: int, seed: int,
               eligible: Optional[np.ndarray] = None):
    n = len(source)
    if n < 2:
      raise ValueError("the image source needs at least two images (input and prompt)")
    eligible = np.arange(n) if eligible is None or len(eligible) == 0 else eligible
    if num_images > len(eligible) or num_images > n - 1:
      num_images = min(len(eligible), n - 1)
      logging.warning("only %d test images available; evaluating %d", num_images, num_images)
    self.input_indices = _evenly(np.asarray(eligible), num_images)
    pool = np.setdiff1d(np.arange(n), self.input_indices)  # prompts never show the input
    self.prompt_indices = pool[np.random.default_rng([seed, 0x9E0]).permutation(len(pool))]
    self._source, self._crop, self._cache = source, crop, {}

  def __getitem__(self, index: int) -> np.ndarray:
    if index not in self._cache:
      self._cache[index] = center_crop([self._source.read_rgb(int(index))], self._crop)[0]
    return self._cache[index]

  def inputs(self) -> np.ndarray:
    return np.stack([self[i] for i in self.input_indices])

  def prompt_index(self, k: int) -> int:
    return int(self.prompt_indices[k % len(self.prompt_indices)])


def procedural_samples(task, clean: CleanImages, seed: int) -> TaskSamples:
  """Synthesised samples: input i at severity (i + 0.5)/N; prompt k from prompt image k with
  input i's severity and shared parameters (so that only the prompt changes with k)."""
  n, key = len(clean.input_indices), zlib.crc32(task.name.encode())
  severities = [(i + 0.5) / n for i in range(n)]
  pairs, shared = [], []
  for i, index in enumerate(clean.input_indices):
    rng = np.random.default_rng([seed, key, i])
    shared.append(task.sample_shared(severities[i], rng))
    pairs.append(task.synthesize(clean[index], severities[i], rng, **shared[i]))

  def make_prompts(k: int):
    prompt_clean = clean[clean.prompt_index(k)]
    made = [task.synthesize(prompt_clean, severities[i],
                            np.random.default_rng([seed, key, i, k, 1]), **shared[i])
            for i in range(n)]
    return np.stack([m[0] for m in made]), np.stack([m[1] for m in made])

  return TaskSamples(task, np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]),
                     make_prompts)


def paired_samples(task, source, crop: int, num_images: int, seed: int) -> TaskSamples:
  """Samples from an input/target folder pair: N pairs as tests, prompt k another pair."""
  n = len(source)
  if n < 2:
    raise ValueError(f"paired data of {task.name} has {n} pair(s); the prompt needs another")
  num_images = min(num_images, n - 1)
  tests = _evenly(np.arange(n), num_images)
  pool = np.setdiff1d(np.arange(n), tests)
  pool = pool[np.random.default_rng([seed, 0x9E1]).permutation(len(pool))]
  read = lambda i: center_crop(list(source.read_pair(int(i))), crop)  # noqa: E731
  inputs, targets = zip(*(read(i) for i in tests))

  def make_prompts(k: int):
    ps, pt = read(pool[k % len(pool)])
    return np.repeat(ps[None], num_images, 0), np.repeat(pt[None], num_images, 0)

  return TaskSamples(task, np.stack(inputs), np.stack(targets), make_prompts)


def _fill(array: np.ndarray, start: int, stop: int, size: int) -> np.ndarray:
  """array[start:stop] padded to `size` rows by repeating its last row."""
  chunk = array[start:stop]
  return np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), 0)])


def predict_batched(predictor, inputs: np.ndarray, prompt_source: np.ndarray,
                    prompt_target: np.ndarray, batch_size: int) -> np.ndarray:
  """`predictor` over N images in chunks of `batch_size`; the last chunk is filled up with
  repeats so that every call has one shape (one compilation)."""
  outputs = []
  for start in range(0, len(inputs), batch_size):
    stop = min(start + batch_size, len(inputs))
    size = min(batch_size, len(inputs))
    chunk = [_fill(a, start, stop, size) for a in (inputs, prompt_source, prompt_target)]
    outputs.append(predictor(*chunk)[:stop - start])
  return np.concatenate(outputs)


def _spread(values: Sequence[float]) -> dict:
  return {"mean": float(np.mean(values)), "std": float(np.std(values)),
          "per_prompt": [float(v) for v in values]}


def task_metrics(prediction: np.ndarray, target: np.ndarray, category: str, y_channel: bool,
                 lpips_fn: Optional[Distance] = None) -> dict[str, np.ndarray]:
  """`image_metrics`, plus per-image LPIPS for restoration/enhancement when `lpips_fn` is set."""
  metrics = image_metrics(prediction, target, category, y_channel)
  if lpips_fn is not None and category in LPIPS_CATEGORIES:
    # Clipped like the prediction PSNR/SSIM see; LPIPS is on RGB even with --y-channel.
    metrics["lpips"] = np.asarray(lpips_fn(np.clip(prediction, 0.0, 1.0), target))
  return metrics


def lpips_metric(params: lpips.LPIPSParams) -> Distance:
  """The `lpips_fn` of `evaluate` for weights from `lpips.load_lpips`."""
  return lambda a, b: np.asarray(lpips.lpips_distance(params, a, b))


def evaluate_task(predictor, samples: TaskSamples, num_prompts: int, y_channel: bool,
                  batch_size: int, lpips_fn: Optional[Distance] = None) -> dict:
  """Metrics of one task: mean and std over the K prompt pairs, and the identity baseline."""
  category = samples.task.category
  per_prompt: dict[str, list[float]] = {}
  for k in range(num_prompts):
    ps, pt = samples.prompts(k)
    prediction = predict_batched(predictor, samples.inputs, ps, pt, batch_size)
    for name, values in task_metrics(prediction, samples.targets, category, y_channel,
                                     lpips_fn).items():
      per_prompt.setdefault(name, []).append(float(np.mean(values)))
  identity = task_metrics(samples.inputs, samples.targets, category, y_channel, lpips_fn)
  return {"paper_name": samples.task.paper_name, "category": category,
          "source": samples.task.source, "num_images": int(len(samples.inputs)),
          "metrics": {name: _spread(v) for name, v in per_prompt.items()},
          "identity": {name: float(np.mean(v)) for name, v in identity.items()}}


def mismatch_test(predictor, samples: Mapping[str, TaskSamples], clean_inputs: Optional[np.ndarray],
                  y_channel: bool, batch_size: int) -> list[dict]:
  """Prompt of task A (its first prompt pairs) on the inputs of task B and on clean images."""
  cells = []
  columns = [(name, s.inputs, s.targets, s.task.category) for name, s in samples.items()]
  if clean_inputs is not None:
    columns.append(("clean", clean_inputs, clean_inputs, "restoration"))
  for prompt_name, prompt_samples in samples.items():
    ps, pt = prompt_samples.prompts(0)
    for input_name, inputs, targets, category in columns:
      n = min(len(inputs), len(ps))
      prediction = predict_batched(predictor, inputs[:n], ps[:n], pt[:n], batch_size)
      mean = lambda m: {k: float(np.mean(v)) for k, v in m.items()}  # noqa: E731
      cells.append({
          "prompt_task": prompt_name, "input_task": input_name,
          "vs_input": mean(image_metrics(prediction, inputs[:n], "restoration", y_channel)),
          "vs_target": mean(image_metrics(prediction, targets[:n], category, y_channel)),
          "identity": mean(image_metrics(inputs[:n], targets[:n], category, y_channel))})
  return cells


def needs_clean_images(names: Sequence[str], mismatch: bool) -> bool:
  """Whether an evaluation of `names` reads the clean-image source."""
  return mismatch or any(get_task(n).procedural for n in names)


def evaluate(predictor, tasks: str, source, num_images: int = 8, num_prompts: int = 5,
             crop: int = 256, seed: int = 0, y_channel: bool = False, mismatch: bool = False,
             paired: str = "", batch_size: int = 8, holdout: Optional[int] = None,
             lpips_fn: Optional[Distance] = None) -> dict:
  """The whole report (a JSON-serialisable dict); see the module docstring.

  Args:
    predictor: a `genlv_jax.api.Predictor`.
    tasks: `--tasks` (names, paper names, sets).
    source: the clean-image source: a spec (`builtin`, `folder:…`, `tfds:…`) or an opened one.
    holdout: None: every image of `source` may be a test input; an int: only the images the
      trainer holds out of this (its training) source with `data.holdout = holdout`.
    lpips_fn: per-image LPIPS (`lpips_metric(lpips.load_lpips(path))`), reported for
      restoration and enhancement tasks; None: no LPIPS.
  """
  if num_images < 1 or num_prompts < 1 or crop < 1 or batch_size < 1:
    raise ValueError("--num-images, --num-prompts, --crop and --batch-size must be positive")
  paired_dirs = paired_sources.parse_paired(paired)
  names, skipped = resolve_tasks(tasks, paired_dirs)
  by_name = {get_task(k).name: v for k, v in paired_dirs.items()}
  clean = None
  if needs_clean_images(names, mismatch):
    opened = image_sources.parse_source(source) if isinstance(source, str) else source
    eligible = None if holdout is None else holdout_indices(len(opened), holdout)
    clean = CleanImages(opened, crop, num_images, seed, eligible)
  samples: dict[str, TaskSamples] = {}
  results = {}
  for name in names:
    task = get_task(name)
    if task.procedural:
      samples[name] = procedural_samples(task, clean, seed)
    else:
      samples[name] = paired_samples(task, paired_sources.PairedFolderSource(*by_name[name]),
                                     crop, num_images, seed)
    results[name] = evaluate_task(predictor, samples[name], num_prompts, y_channel, batch_size,
                                  lpips_fn)
    logging.info("evaluated %s: %s", name, {k: round(v["mean"], 4)
                                            for k, v in results[name]["metrics"].items()})
  report = {"source": source if isinstance(source, str) else type(source).__name__,
            "num_images": num_images, "num_prompts": num_prompts,
            "crop": crop, "seed": seed, "color": "Y (BT.601)" if y_channel else "RGB",
            "tasks": results, "skipped": skipped}
  if clean is not None:
    report["test_images"] = [int(i) for i in clean.input_indices]
    report["prompt_images"] = [clean.prompt_index(k) for k in range(num_prompts)]
  if mismatch:
    report["mismatch"] = mismatch_test(predictor, samples, clean.inputs() if clean else None,
                                       y_channel, batch_size)
  return report


def markdown_report(report: Mapping) -> str:
  """The report as Markdown tables (per-task metrics; mismatch matrices when present)."""
  k = report["num_prompts"]
  lines = [f"# GenLV evaluation\n\n{report.get('checkpoint', '')} on `{report['source']}`: "
           f"{report['num_images']} test images × {k} prompt pairs per task, {report['crop']} px "
           f"centre crops, {report['color']}, seed {report['seed']}."
           + (f" LPIPS: AlexNet v0.1, weights `{report['lpips_weights']}`."
              if report.get("lpips_weights") else "") + "\n",
           f"| task | category | metric | model (mean ± std over {k} prompts) | identity | Δ |",
           "|---|---|---|---|---|---|"]
  for name, r in report["tasks"].items():
    for metric, spread in r["metrics"].items():
      base = r["identity"][metric]
      mean, std = spread["mean"], spread["std"]
      delta = None if mean is None or base is None else mean - base
      lines.append(f"| {name} ({r['paper_name']}) | {r['category']} | {_LABELS[metric]} | "
                   f"{_number(mean, 4)} ± {_number(std, 4)} | {_number(base, 4)} | "
                   f"{_number(delta, 4, '+')} |")
  for name, why in report.get("skipped", {}).items():
    lines.append(f"\nSkipped {name}: {why}.")
  cells = report.get("mismatch")
  if cells:
    rows = list(dict.fromkeys(c["prompt_task"] for c in cells))
    cols = list(dict.fromkeys(c["input_task"] for c in cells))
    table = {(c["prompt_task"], c["input_task"]): c for c in cells}
    lines.append("\n## Mismatch test: the prompt of the row's task on the column's inputs")
    for title, pick in (
        ("PSNR(prediction, input) in dB: high means the input was left alone, the ideal "
         "answer to a prompt of another task", lambda c: _number(c["vs_input"]["psnr"])),
        ("Against the input task's own target: PSNR in dB (MAE for feature extraction), "
         "identity in brackets", lambda c: "{} ({})".format(
             *[_number(c[s].get("psnr", c[s].get("mae"))) for s in ("vs_target", "identity")]))):
      lines += [f"\n{title}\n", "| prompt \\ input | " + " | ".join(cols) + " |",
                "|---" * (len(cols) + 1) + "|"]
      lines += [f"| {r} | " + " | ".join(pick(table[(r, c)]) for c in cols) + " |" for r in rows]
  return "\n".join(lines) + "\n"


def _number(value: Optional[float], digits: int = 2, sign: str = "") -> str:
  """A metric for Markdown; None stands for a non-finite value (PSNR of identical images)."""
  return "∞" if value is None else f"{value:{sign}.{digits}f}"


def _finite(tree):
  """Non-finite floats → None (strict JSON has no Infinity: PSNR of identical images)."""
  if isinstance(tree, Mapping):
    return {k: _finite(v) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return [_finite(v) for v in tree]
  return None if isinstance(tree, float) and not np.isfinite(tree) else tree


def write_report(report: Mapping, output: str) -> tuple[str, str]:
  """Writes `output` (JSON) and the Markdown table beside it; returns both paths."""
  md_path = os.path.splitext(output)[0] + ".md"
  try:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
      json.dump(_finite(report), f, indent=2, allow_nan=False)
    with open(md_path, "w") as f:
      f.write(markdown_report(_finite(report)))
  except OSError as e:
    raise ValueError(f"cannot write the report {output}: {e.strerror or e}") from e
  return output, md_path


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m genlv_jax.evaluate",
                              description=__doc__.split("\n\n")[0])
  add_model_arguments(p, "untrained weights")
  p.add_argument("--tasks", default=None, help="task names, paper names or sets (acmmm30, "
                 "procedural, all), comma-separated; default: the config's data.tasks")
  p.add_argument("--source", default=None, help="builtin | folder:PATH | tfds:NAME; default: "
                                                "the config's data.source")
  p.add_argument("--paired", default="", help="'TASK=INPUT_DIR|TARGET_DIR;…' for paired tasks")
  p.add_argument("--num-images", type=int, default=8)
  p.add_argument("--num-prompts", type=int, default=5)
  p.add_argument("--crop", type=int, default=None, help="centre crop (px); default "
                                                        "config.image_size")
  p.add_argument("--batch-size", type=int, default=8)
  p.add_argument("--seed", type=int, default=0)
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


@user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point: parse, check the tasks and the source, load, evaluate, write."""
  args = _parser().parse_args(argv)
  config = load_config(args.config)
  data = config.get("data", None) or {}
  training_source = str(data.get("source", "builtin"))
  spec, tasks = args.source or training_source, args.tasks or str(data.get("tasks", "acmmm30"))
  names, _ = resolve_tasks(tasks, paired_sources.parse_paired(args.paired))  # fail fast
  crop = args.crop or int(config.image_size)
  lpips_fn = None
  if args.lpips_weights:  # a wrong file fails here, before the model is built
    if crop < lpips.MIN_SIZE:
      raise ValueError(f"LPIPS needs crops of at least {lpips.MIN_SIZE} px (--crop {crop})")
    lpips_fn = lpips_metric(lpips.load_lpips(args.lpips_weights))
  source = image_sources.parse_source(spec) if needs_clean_images(names, args.mismatch) else spec
  holdout = data.get("holdout", -1)
  holdout = (-1 if holdout is None else int(holdout)) if spec == training_source else None
  checkpoint = None if args.random_init else resolve_checkpoint(args.checkpoint)
  predictor = api.load_model(config, checkpoint)
  report = evaluate(predictor, tasks, source, args.num_images, args.num_prompts,
                    crop, args.seed, args.y_channel, args.mismatch, args.paired, args.batch_size,
                    holdout, lpips_fn)
  if args.lpips_weights:
    report["lpips_weights"] = args.lpips_weights
  report = {"config": args.config, "checkpoint": checkpoint or "random init", **report,
            "source": spec, "test_images_from": "held-out images of the training source"
            if holdout is not None else "all images of the source"}
  json_path, md_path = write_report(report, args.output)
  print(f"wrote {json_path} and {md_path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
