"""Which tasks the input pipeline trains on, and how often (host code; no jax).

`config.data.tasks` is a comma-separated list of task-set names and task names (or paper
names):
  - `acmmm30`: the ACMMM paper's 30 tasks (31 catalogue entries, see
    `tasks.ACMMM_TASK_SET`) plus its mixed-degradation composition (§4.1);
  - `procedural`: every GLV-Bench task synthesised from clean images;
  - `all`: the 101 GLV-Bench tasks plus the mixed-degradation composition.
A task takes part only when it has data (`genlv_jax.data.task_sources`: clean images for the
procedural tasks, their domain's for the satellite, CT, … tasks; paired folders from
`data.paired` or `data.paired_root` for the others): a set drops the others with one warning, a
task named without data is an error.

`config.data.task_weights` sets the sampling probabilities:
  - `uniform` (default): every selected task equally often;
  - `category:restoration=2,enhancement=1`: the categories' total probabilities in these
    proportions (a category not listed weighs 1), split equally among its selected tasks;
  - `task:gaussian_denoising=3,canny=0.5`: per-task weights (a task not listed weighs 1;
    weight 0 leaves a task out);
  - `official101`: the mixture of the authors' GenLV-101 training loader (`OFFICIAL101`), over
    the selected tasks (a task left out gives its share to the others in proportion); its
    X-Distortion tasks also draw their severity from five levels, as the authors' loader
    draws ImageNet-C-style severities 1–5 (`severity_levels`).

`task_vocabulary()` fixes the integer ids (`task_id` in batches): the 101 GLV-Bench tasks in
paper order, then the extra tasks — the same ids whatever the configured selection.
"""

from __future__ import annotations

import collections
import functools
from typing import Collection, Optional, Sequence, Union

import numpy as np
from absl import logging

from genlv_jax import tasks
from genlv_jax.errors import UserError
from genlv_jax.tasks import registry


@functools.lru_cache(maxsize=None)
def task_vocabulary() -> tuple[str, ...]:
  """All registered task names in id order (GLV-Bench Tables VI–IX, then extra tasks)."""
  return tuple(t.name for t in registry.all_tasks() + registry.extra_tasks())


# Operators below 50 samples/s per core at 256² (BENCHMARKS.md, "Data pipeline"): RTV and MTM
# solve sparse systems (~1 s a sample), LLF filters a pyramid per reference level, JPEG 2000 is
# bound by the OpenJPEG encoder. Their targets can be precomputed (data/README.md).
HEAVY_TASKS = ("rtv", "multi_scale_tm", "local_laplacian_filtering", "jpeg2000_restoration")

# ---- the authors' mixture (`data.task_weights="official101"`) ----------------------------------
# From chxy95/GenLV, extended_version/dataset/genlv_100_dataloader.py, DatasetPrompt_Train
# (tasks_version 0): `__getitem__` draws one of 64 entries with `np.random.choice(dataset_list,
# p=[33/100, 1/100, ...])`. 'Base' (33 %) is on-the-fly synthesis on ImageNet, split by
# `np.random.choice(['X-Distortion', 'Extra-Degradation', 'Operators', 'Mixture'],
# p=[20/33, 7/33, 2/33, 4/33])`; X-Distortion picks one of 13 families uniformly
# (`onthefly_degradation_list1`), then one of the family's functions uniformly
# (`distortions_dict` in extended_version/dataset/x_distortion/__init__.py) at a severity
# `random.choice([1, 2, 3, 4, 5])`; Extra-Degradation picks one of 7
# (`onthefly_degradation_list2`), Operators one of 2 (Laplacian, Canny), Mixture is one round
# of their mixed degradation. Every other entry is a prepared dataset at 1 % (0.5 % each for
# ShadowRemovalISTD and ShadowRemovalSRD; 2 % for SDRHDR, InstagramFilter, CT, MRI and
# Satellite, each split 50/50 between its two tasks by `np.random.choice`).
_X_DISTORTION_PERCENT = 33 * 20 / 33        # 20 % of all samples
# Family -> the catalogue task of each function in `distortions_dict[family]` (repeats: two
# functions of one task, e.g. Gaussian noise in RGB and in YCrCb).
OFFICIAL101_X_DISTORTIONS: dict[str, tuple[str, ...]] = {
    "blur": ("gaussian_deblurring", "motion_deblurring", "glass_deblurring",
             "lens_deblurring", "zoom_deblurring", "jitter_deblurring"),
    "noise": ("gaussian_denoising", "gaussian_denoising", "speckle_denoising",
              "spatially_correlated_denoising", "poisson_denoising", "impulse_denoising"),
    "compression": ("jpeg_restoration", "jpeg2000_restoration"),
    "brighten": ("brightness_brightening_correction",) * 4,
    "darken": ("brightness_darkening_correction",) * 4,
    "spatter": ("spatter_removal",),
    "contrast_strengthen": ("contrast_strengthening_correction",) * 2,
    "contrast_weaken": ("contrast_weakening_correction",) * 2,
    "saturate_strengthen": ("saturation_strengthening_correction",) * 2,
    "saturate_weaken": ("saturation_weakening_correction",) * 2,
    "oversharpen": ("oversharpen_restoration",),
    "pixelate": ("pixelation_removal",),
    "quantization": ("quantization_otsu_restoration", "quantization_median_restoration",
                     "quantization_hist_restoration"),
}
# Extra-Degradation (7 % in all: 1 % each), Operators (1 % each), Mixture (4 %).
_OFFICIAL101_BASE_OTHERS = {
    "simple_deraining": 1.0, "ringing_removal": 1.0, "lucy_richardson_deconvolution": 1.0,
    "inpainting": 1.0, "demosaicing": 1.0, "sr_x2": 1.0, "sr_x4": 1.0,   # Rain … SRx4
    "laplacian": 1.0, "canny": 1.0,
    "mixed_degradation": 4.0,
}
# The prepared datasets, in percent (their `dataset_list` entry in brackets where the name differs).
_OFFICIAL101_DATASETS = {
    "complex_deraining": 1.0, "raindrop_removal": 1.0, "marine_snow_removal": 1.0,  # Derain, …
    "reflection_removal": 1.0, "shadow_removal": 0.5 + 0.5,  # ShadowRemovalISTD + …SRD
    "cloud_removal": 1.0, "watermark_removal": 1.0, "real_lowlight_sr": 1.0,  # RealLLSR
    "udc_poled_restoration": 1.0, "udc_toled_restoration": 1.0, "dehazing": 1.0,
    "demoireing": 1.0, "dust_removal": 1.0, "desnowing": 1.0, "flare_removal": 1.0,
    "highlight_removal": 1.0, "raw_to_rgb_isp": 1.0, "lowlight_enhancement": 1.0,
    "backlit_enhancement": 1.0, "exposure_correction": 1.0, "bokeh_rendering": 1.0,
    "underwater_histogram_equalization": 1.0, "color_correction": 1.0,  # HistoEqual, …
    "vignetting_removal": 1.0, "photo_retouching": 1.0, "local_laplacian_filtering": 1.0,
    "multi_scale_tm": 1.0, "white_balance_correction": 1.0,
    "sdr_to_hdr": 1.0, "hdr_to_sdr": 1.0,                                   # SDRHDR 2 %
    "instagram_filter_addition": 1.0, "instagram_filter_removal": 1.0,      # InstagramFilter 2 %
    "depth_estimation": 1.0, "perceptual_edge_detection": 1.0, "salient_object": 1.0,
    "hough_line": 1.0, "surface_normal": 1.0, "hed_boundary": 1.0,
    "pencil_drawing": 1.0, "photographic_style": 1.0, "rtv": 1.0,
    "cloisonnism_style": 1.0, "divisionism_style": 1.0, "fauvism_style": 1.0,
    "vermeer_style": 1.0, "jojo_style": 1.0, "raphael_style": 1.0, "modernism_style": 1.0,
    "monet_style": 1.0, "pop_art_style": 1.0, "neo_impressionism_style": 1.0,
    "ukiyoe_style": 1.0, "van_gogh_style": 1.0, "tuner_style": 1.0, "regionalism_style": 1.0,
    "impressionism_style": 1.0,
    "face_sr": 1.0, "infrared_sr": 1.0, "ct_sr": 1.0, "ct_denoising": 1.0,   # CT 2 %
    "mri_sr": 1.0, "mri_denoising": 1.0, "satellite_sr": 1.0, "satellite_denoising": 1.0,
    "weather_sr": 1.0, "fluid_flow_sr": 1.0, "cosmology_sr": 1.0,
}


def _official101() -> dict[str, float]:
  percent: dict[str, float] = collections.defaultdict(float)
  family = _X_DISTORTION_PERCENT / len(OFFICIAL101_X_DISTORTIONS)
  for functions in OFFICIAL101_X_DISTORTIONS.values():
    for name in functions:
      percent[name] += family / len(functions)
  for table in (_OFFICIAL101_BASE_OTHERS, _OFFICIAL101_DATASETS):
    for name, value in table.items():
      percent[name] += value
  return dict(percent)


# Task name -> percent of the authors' samples (sums to 100 over the 101 tasks and their
# mixed degradation).
OFFICIAL101: dict[str, float] = _official101()
# The tasks whose severity the authors draw from five levels (X-Distortion).
OFFICIAL101_LEVELED = frozenset(n for f in OFFICIAL101_X_DISTORTIONS.values() for n in f)
SEVERITY_LEVELS = 5


TASK_SETS = {
    "acmmm30": lambda: tasks.ACMMM_TASKS + (tasks.MIXED_DEGRADATION.name,),
    "procedural": lambda: tuple(t.name for t in registry.procedural_tasks()),
    "all": lambda: task_vocabulary(),
}


def _lookup(name: str) -> registry.Task:
  try:
    return registry.get_task(name)
  except KeyError as e:
    raise UserError(str(e.args[0])) from None


def expand_tasks(spec: Union[str, Sequence[str]]) -> dict[str, bool]:
  """{task name: named explicitly} for `spec` (the `data.tasks` value), in order, without
  repeats, whatever data is configured; a task both named and in a set counts as named.

  Raises:
    UserError: one line, for an unknown name.
  """
  items = spec.split(",") if isinstance(spec, str) else list(spec)
  selected: dict[str, bool] = {}
  for item in (str(i).strip() for i in items):
    if not item:
      continue
    if item.lower() in TASK_SETS:
      for name in TASK_SETS[item.lower()]():
        selected.setdefault(registry.get_task(name).name, False)
      continue
    selected[_lookup(item).name] = True
  return selected


def select_tasks(spec: Union[str, Sequence[str]],
                 paired: Collection[str] = ()) -> tuple[str, ...]:
  """Task names selected by `spec` (see the module docstring), in order, without repeats,
  when the only data are the clean images and the paired folders of `paired`
  (`genlv_jax.data.task_sources.configured_tasks` decides with every configured source).

  Args:
    spec: the `data.tasks` value (a string, or a list of names).
    paired: names of the non-procedural tasks that have paired data configured.

  Raises:
    UserError: one line, for an unknown name, a named task without data, or an empty set.
  """
  selected: dict[str, None] = {}
  dropped = []
  for name, named in expand_tasks(spec).items():
    task = registry.get_task(name)
    if task.procedural or task.name in paired:
      selected[task.name] = None
    elif named:
      raise UserError(f"task {task.name!r} needs {task.source} data ({task.dataset}): give "
                       f"its folders as data.paired='{task.name}=INPUT_DIR|TARGET_DIR'")
    else:
      dropped.append(task.name)
  if dropped:
    logging.warning("data.tasks=%s: %d tasks without paired data are left out (%s); give "
                    "their folders in data.paired to train on them", spec, len(dropped),
                    ", ".join(dropped))
  if not selected:
    raise UserError(f"data.tasks={spec!r} selects no task")
  return tuple(selected)


def _parse_weights(text: str, what: str) -> dict[str, float]:
  weights = {}
  for entry in text.split(","):
    if not entry.strip():
      continue
    key, sep, value = entry.partition("=")
    try:
      weight = float(value) if sep else float("nan")
    except ValueError:
      weight = float("nan")
    if not weight >= 0:  # also rejects nan
      raise UserError(f"task_weights: {what} weight must be KEY=NUMBER >= 0, got {entry!r}")
    weights[key.strip()] = weight
  return weights


def task_probabilities(task_names: Sequence[str], spec: str = "uniform") -> np.ndarray:
  """Sampling probabilities of `task_names` under `data.task_weights` (module docstring).

  Raises:
    UserError: one line, for a malformed spec, a name outside the selection, or all-zero
      weights.
  """
  spec = (spec or "uniform").strip()
  names = list(task_names)
  if spec == "uniform":
    weights = np.ones(len(names))
  elif spec.startswith("category:"):
    given = _parse_weights(spec[len("category:"):], "category")
    unknown = set(given) - set(registry.CATEGORIES)
    if unknown:
      raise UserError(f"task_weights: unknown categories {sorted(unknown)}; expected "
                       f"{list(registry.CATEGORIES)}")
    categories = [registry.get_task(n).category for n in names]
    counts = collections.Counter(categories)
    weights = np.array([given.get(c, 1.0) / counts[c] for c in categories])
  elif spec == "official101":
    # Every registered task has an entry (tested), so a selection never falls outside it.
    weights = np.array([OFFICIAL101[n] for n in names])
  elif spec.startswith("task:"):
    given = {_lookup(k).name: w for k, w in
             _parse_weights(spec[len("task:"):], "task").items()}
    outside = set(given) - set(names)
    if outside:
      raise UserError(f"task_weights names tasks not in data.tasks: {sorted(outside)}")
    weights = np.array([given.get(n, 1.0) for n in names])
  else:
    raise UserError(f"task_weights {spec!r}: expected 'uniform', 'official101', "
                     "'category:NAME=W,...' or 'task:NAME=W,...'")
  if weights.sum() <= 0:
    raise UserError(f"task_weights {spec!r} gives every selected task weight 0")
  return weights / weights.sum()


def severity_levels(task_names: Sequence[str], spec: str = "uniform"
                    ) -> tuple[Optional[np.ndarray], ...]:
  """Per task, the severities it is drawn from, or None for a uniform draw in [0, 1].

  Only `official101` has levels: its X-Distortion tasks take one of `SEVERITY_LEVELS` evenly
  spaced severities (0, 0.25, …, 1), as the authors' loader takes ImageNet-C severity 1–5
  (how our severity range maps onto theirs is each task's `Severity`).
  """
  if (spec or "").strip() != "official101":
    return (None,) * len(task_names)
  levels = np.linspace(0.0, 1.0, SEVERITY_LEVELS)
  return tuple(levels if n in OFFICIAL101_LEVELED else None for n in task_names)
