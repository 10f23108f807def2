"""Running a model on the fixed samples and computing the papers' metrics per task.

Metrics: PSNR and SSIM (RGB as in the papers, or BT.601 luma) for restoration, enhancement and
stylization, MAE on the 0–255 scale for feature extraction (`evaluation.metrics`), and LPIPS
(AlexNet v0.1, `evaluation.lpips`) for restoration, enhancement and stylization when its weights
are given. PSNR and SSIM follow one of two conventions (`metrics.CONVENTIONS`): `ours` (dm_pix on
the float images; the trainer's) or `basicsr` (8-bit images, `crop_border`, float64, as the
restoration papers computed them).
The metric of prompt pair k is the mean over the N test images; a report gives the mean and
standard deviation (numpy's, ddof 0) of these K means, beside the identity baseline (the input
taken as the output). The mismatch test (ACMMM §4.4, Fig. 7) applies the prompt of task A to
the inputs of task B (and to clean images) and reports PSNR(prediction, input), since the ideal
answer to a wrong prompt is to leave the input alone.

Predictions that are not finite (NaN or infinity: a diverged checkpoint, an overflow) make the
metrics NaN; the report counts them per task (`non_finite_predictions`) and a warning is
logged, so that a broken model is not read as a measured one.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
from absl import logging

from genlv_jax.errors import UserError
from genlv_jax.evaluation import lpips
from genlv_jax.evaluation.metrics import (CONVENTIONS, SSIM_WINDOW, check_convention,
                                          default_y_channel, image_metrics)
from genlv_jax.evaluation.report import check_report_output
from genlv_jax.evaluation.samples import EvalSamples, TaskSamples, make_samples

# Restoration and enhancement targets are natural photographs, what LPIPS was calibrated on;
# the journal's Table VIII reports LPIPS for stylization too, where PSNR alone says little of
# a style. Feature-extraction maps (edges, depth …) get MAE only, as in the papers.
LPIPS_CATEGORIES = ("restoration", "enhancement", "stylization")
# (prediction, target) [N, H, W, 3] in [0, 1] -> per-image distances [N].
Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]


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
                 lpips_fn: Optional[Distance] = None, *, convention: str = "ours",
                 crop_border: int = 0) -> dict[str, np.ndarray]:
  """`image_metrics`, plus per-image LPIPS for the `LPIPS_CATEGORIES` when `lpips_fn` is set."""
  metrics = image_metrics(prediction, target, category, y_channel, convention, crop_border)
  if lpips_fn is not None and category in LPIPS_CATEGORIES:
    # Clipped like the prediction PSNR/SSIM see; LPIPS is on the whole RGB image whatever the
    # convention, --y-channel or --crop-border (as the lpips package measures it).
    metrics["lpips"] = np.asarray(lpips_fn(np.clip(prediction, 0.0, 1.0), target))
  return metrics


def lpips_metric(params: lpips.LPIPSParams) -> Distance:
  """The `lpips_fn` of `evaluate` for weights from `lpips.load_lpips`."""
  return lambda a, b: np.asarray(lpips.lpips_distance(params, a, b))


def evaluate_task(predictor, samples: TaskSamples, num_prompts: int, y_channel: bool,
                  batch_size: int, lpips_fn: Optional[Distance] = None, *,
                  convention: str = "ours", crop_border: int = 0) -> tuple[dict, np.ndarray]:
  """(metrics of one task: mean and std over the K prompt pairs and the identity baseline,
  the predictions with prompt pair 0)."""
  category = samples.task.category
  per_prompt: dict[str, list[float]] = {}
  first, non_finite = None, 0
  for k in range(num_prompts):
    ps, pt = samples.prompts(k)
    prediction = predict_batched(predictor, samples.inputs, ps, pt, batch_size)
    non_finite += int(prediction.size - np.count_nonzero(np.isfinite(prediction)))
    first = prediction if first is None else first
    for name, values in task_metrics(prediction, samples.targets, category, y_channel,
                                     lpips_fn, convention=convention,
                                     crop_border=crop_border).items():
      per_prompt.setdefault(name, []).append(float(np.mean(values)))
  identity = task_metrics(samples.inputs, samples.targets, category, y_channel, lpips_fn,
                          convention=convention, crop_border=crop_border)
  result = {"paper_name": samples.task.paper_name, "category": category,
            "source": samples.task.source, "num_images": int(len(samples.inputs)),
            "metrics": {name: _spread(v) for name, v in per_prompt.items()},
            "identity": {name: float(np.mean(v)) for name, v in identity.items()}}
  if non_finite:
    logging.warning("%s: %d prediction value(s) are not finite (NaN or infinity): its metrics "
                    "are not meaningful", samples.task.name, non_finite)
    result["non_finite_predictions"] = non_finite
  return result, first


def mismatch_test(predictor, samples: Mapping[str, TaskSamples], clean_inputs: Optional[np.ndarray],
                  y_channel: bool, batch_size: int, *, convention: str = "ours",
                  crop_border: int = 0) -> list[dict]:
  """Prompt of task A (its first prompt pairs) on the inputs of task B and on clean images."""
  measure = lambda a, b, category: image_metrics(  # noqa: E731
      a, b, category, y_channel, convention, crop_border)
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
          "vs_input": mean(measure(prediction, inputs[:n], "restoration")),
          "vs_target": mean(measure(prediction, targets[:n], category)),
          "identity": mean(measure(inputs[:n], targets[:n], category))})
  return cells


def evaluate(predictor, samples: EvalSamples, num_prompts: int = 5, y_channel: bool = False,
             batch_size: int = 8, lpips_fn: Optional[Distance] = None, mismatch: bool = False,
             *, convention: str = "ours", crop_border: int = 0
             ) -> tuple[dict, dict[str, np.ndarray]]:
  """Evaluates `predictor` (a `genlv_jax.models.Predictor`) on fixed samples (`make_samples`).

  `convention` and `crop_border` choose how PSNR / SSIM are computed (`evaluation.metrics`);
  the defaults are what the trainer logs.

  Returns the report (a JSON-serialisable dict: per task the mean and std over `num_prompts`
  prompt pairs of the per-prompt mean metric, and the identity baseline; the mismatch test when
  asked) and, per task, the predictions with prompt pair 0 (for sample grids).
  """
  if num_prompts < 1 or batch_size < 1:
    raise UserError("the number of prompts and the batch size must be positive")
  try:
    check_convention(convention, crop_border)
  except ValueError as e:
    raise UserError(str(e)) from None
  settings = {"convention": convention, "crop_border": crop_border}
  results, predictions = {}, {}
  for name, task_samples in samples.tasks.items():
    results[name], predictions[name] = evaluate_task(predictor, task_samples, num_prompts,
                                                     y_channel, batch_size, lpips_fn,
                                                     **settings)
    logging.info("evaluated %s: %s", name, {k: round(v["mean"], 4)
                                            for k, v in results[name]["metrics"].items()})
  report = {"num_images": max((len(s.inputs) for s in samples.tasks.values()), default=0),
            "num_prompts": num_prompts, "color": "Y (BT.601)" if y_channel else "RGB",
            "convention": convention, "tasks": results, "skipped": dict(samples.skipped)}
  if convention == "basicsr":
    report["crop_border"] = int(crop_border)
  non_finite = {name: r["non_finite_predictions"] for name, r in results.items()
                if "non_finite_predictions" in r}
  if non_finite:
    report["non_finite_predictions"] = non_finite
  if samples.clean is not None:
    report["test_images"] = [int(i) for i in samples.clean.input_indices]
    report["prompt_images"] = [samples.clean.prompt_index(k) for k in range(num_prompts)]
  if mismatch:
    clean = samples.clean.inputs() if samples.clean is not None else None
    report["mismatch"] = mismatch_test(predictor, samples.tasks, clean, y_channel, batch_size,
                                       **settings)
  return report, predictions


def scalar_metrics(report: Mapping) -> dict[str, float]:
  """The report's per-task means as metric-writer scalars: `eval/<task>/<metric>` (the model,
  mean over the prompt pairs) and `eval/<task>/identity_<metric>` (the input as the output)."""
  out = {}
  for name, result in report["tasks"].items():
    for metric, spread in result["metrics"].items():
      out[f"eval/{name}/{metric}"] = spread["mean"]
    for metric, value in result["identity"].items():
      out[f"eval/{name}/identity_{metric}"] = value
  return out


def run_evaluation(config, predictor, tasks: Optional[str] = None, *,
                   source: Optional[str] = None, paired: Optional[str] = None,
                   num_images: int = 8, num_prompts: int = 5, crop: Optional[int] = None,
                   seed: Optional[int] = None, y_channel: bool = False, mismatch: bool = False,
                   batch_size: int = 8, lpips_fn: Optional[Distance] = None,
                   samples: Optional[EvalSamples] = None, convention: str = "ours",
                   crop_border: int = 0) -> dict:
  """`make_samples` then `evaluate`: the whole report, with the settings that made it.

  `samples`: what `make_samples` made of these arguments already (`evaluate` makes them before
  it loads the model, so that a bad source or task fails first); None makes them here.

  With `tasks` = `config.eval_tasks` (or the training tasks), `num_images` =
  `config.eval_images`, `num_prompts` = `config.eval_prompts`, `batch_size` =
  `config.eval_batch_size` and the other arguments at their defaults, the metrics are the ones
  the trainer logs at each evaluation step (`scalar_metrics`).
  """
  if samples is None:
    samples = make_samples(config, tasks, source=source, paired=paired, num_images=num_images,
                           crop=crop, seed=seed, mismatch=mismatch)
  report, _ = evaluate(predictor, samples, num_prompts, y_channel, batch_size, lpips_fn,
                       mismatch, convention=convention, crop_border=crop_border)
  data_source = str(config.data.source)
  return {**report, "source": source or data_source,
          "crop": int(config.image_size) if crop is None else int(crop),
          "seed": int(config.seed) if seed is None else int(seed),
          "test_images_from": ("held-out images of the training source"
                               if (source or data_source) == data_source
                               else "all images of the source")}


# The largest crop: a 1024 px crop already holds 128x128 latent tokens, whose global attention
# map takes 1 GiB per head and image in float32; beyond it, run `infer --tile`.
MAX_CROP = 1024


def check_metric_options(convention: str, crop_border: Optional[int], crop: int) -> int:
  """Checks `--convention` and `--crop-border` against the crop; returns the border to cut.

  Raises:
    UserError: an unknown convention, a negative border, a border with the `ours` convention
      (which measures whole images), or one that leaves less than SSIM's 11×11 window.
  """
  if convention not in CONVENTIONS:
    raise UserError(f"--convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
  if crop_border is None:
    return 0
  if crop_border < 0:
    raise UserError(f"--crop-border must be at least 0, got {crop_border}")
  if crop_border and convention != "basicsr":
    raise UserError(f"--crop-border {crop_border} applies to --convention basicsr only (the "
                    "ours convention measures whole images)")
  if crop - 2 * crop_border < SSIM_WINDOW:
    raise UserError(f"--crop-border {crop_border} leaves {max(crop - 2 * crop_border, 0)} px "
                    f"of the {crop} px crop; SSIM needs at least {SSIM_WINDOW}")
  return crop_border


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


def evaluate_checkpoint(load_model: Callable[[], Any], config, output: str,
                        tasks: Optional[str] = None, *, source: Optional[str] = None,
                        paired: Optional[str] = None, num_images: int = 8,
                        num_prompts: int = 5, crop: Optional[int] = None,
                        seed: Optional[int] = None, y_channel: Optional[bool] = None,
                        mismatch: bool = False, batch_size: int = 8,
                        lpips_weights: Optional[str] = None,
                        warn: Callable[[str], None] = logging.warning,
                        convention: str = "ours", crop_border: Optional[int] = None) -> dict:
  """`python -m genlv_jax.evaluate` as a function: checks the numbers, the metric options, the
  report location `output`, the LPIPS weights, the tasks and the samples, then calls
  `load_model()` (a predictor) and returns `run_evaluation`'s report (with `lpips_weights` and
  the count of non-finite predictions). Skipped tasks and other caveats go to `warn`.

  `y_channel` None takes the convention's default (`metrics.default_y_channel`: Y for
  `basicsr`, RGB for `ours`); `crop_border` None is 0.
  """
  crop = int(config.image_size) if crop is None else crop
  check_numbers(num_images, num_prompts, batch_size, crop,
                int(config.seed) if seed is None else seed)
  crop_border = check_metric_options(convention, crop_border, crop)
  y_channel = default_y_channel(convention, y_channel)
  check_report_output(output)
  lpips_fn = None
  if lpips_weights:  # a wrong file fails here, before the model is built
    if crop < lpips.MIN_SIZE:
      raise UserError(f"LPIPS needs crops of at least {lpips.MIN_SIZE} px (--crop {crop})")
    lpips_fn = lpips_metric(lpips.load_lpips(lpips_weights))
  # The samples before the model: an unknown task, a missing source or paired folder, or no
  # evaluable task at all fails without the cost of loading it.
  samples = make_samples(config, tasks, source=source, paired=paired, num_images=num_images,
                         crop=crop, seed=seed, mismatch=mismatch)
  if not samples.tasks:
    reasons = "; ".join(f"{name}: {why}" for name, why in samples.skipped.items())
    raise UserError(f"none of the requested tasks can be evaluated ({reasons})")
  for name, why in samples.skipped.items():
    warn(f"skipping {name}: {why}")
  categories = {s.task.category for s in samples.tasks.values()}
  if lpips_fn is not None and not categories & set(LPIPS_CATEGORIES):
    warn(f"LPIPS is computed for {', '.join(LPIPS_CATEGORIES[:-1])} and {LPIPS_CATEGORIES[-1]} "
         "tasks only; none is evaluated here, so the report has no LPIPS")
  if lpips_fn is None and "stylization" in categories:
    # Table VIII judges styles by LPIPS beside PSNR/SSIM; say how to get the same columns.
    warn("stylization tasks are reported with LPIPS in the papers (Table VIII); add "
         "--lpips-weights to measure it (nothing is downloaded)")
  report = run_evaluation(config, load_model(), tasks, source=source, paired=paired,
                          num_images=num_images, num_prompts=num_prompts, crop=crop, seed=seed,
                          y_channel=y_channel, mismatch=mismatch, batch_size=batch_size,
                          lpips_fn=lpips_fn, samples=samples, convention=convention,
                          crop_border=crop_border)
  if lpips_weights:
    report["lpips_weights"] = lpips_weights
  for name, count in report.get("non_finite_predictions", {}).items():
    warn(f"{name}: {count} prediction value(s) are not finite (NaN or infinity); its metrics "
         "are NaN")
  return report
