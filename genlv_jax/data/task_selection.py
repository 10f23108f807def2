"""Which tasks the input pipeline trains on, and how often (host code; no jax).

`config.data.tasks` is a comma-separated list of task-set names and task names (or paper
names):
  - `acmmm30`: the ACMMM paper's 30 tasks (31 catalogue entries, see
    `tasks.ACMMM_TASK_SET`) plus its mixed-degradation composition (§4.1);
  - `procedural`: every GLV-Bench task synthesised from clean images;
  - `all`: the 101 GLV-Bench tasks plus the mixed-degradation composition.
Tasks that need paired data (`paired_dataset`, `model`) take part only when `data.paired` gives
their folders: a set drops the others with one warning, a task named alone without data is an
error.

`config.data.task_weights` sets the sampling probabilities:
  - `uniform` (default): every selected task equally often;
  - `category:restoration=2,enhancement=1`: the categories' total probabilities in these
    proportions (a category not listed weighs 1), split equally among its selected tasks;
  - `task:gaussian_denoising=3,canny=0.5`: per-task weights (a task not listed weighs 1;
    weight 0 leaves a task out).

`task_vocabulary()` fixes the integer ids (`task_id` in batches): the 101 GLV-Bench tasks in
paper order, then the extra tasks — the same ids whatever the configured selection.
"""

from __future__ import annotations

import collections
import functools
from typing import Collection, Sequence, Union

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


def select_tasks(spec: Union[str, Sequence[str]],
                 paired: Collection[str] = ()) -> tuple[str, ...]:
  """Task names selected by `spec` (see the module docstring), in order, without repeats.

  Args:
    spec: the `data.tasks` value (a string, or a list of names).
    paired: names of the non-procedural tasks that have paired data configured.

  Raises:
    UserError: one line, for an unknown name, a named task without data, or an empty set.
  """
  items = spec.split(",") if isinstance(spec, str) else list(spec)
  selected: dict[str, None] = {}
  dropped = []
  for item in (str(i).strip() for i in items):
    if not item:
      continue
    if item.lower() in TASK_SETS:
      for name in TASK_SETS[item.lower()]():
        task = registry.get_task(name)
        if task.procedural or task.name in paired:
          selected[task.name] = None
        else:
          dropped.append(task.name)
      continue
    task = _lookup(item)
    if not (task.procedural or task.name in paired):
      raise UserError(f"task {task.name!r} needs {task.source} data ({task.dataset}): give "
                       f"its folders as data.paired='{task.name}=INPUT_DIR|TARGET_DIR'")
    selected[task.name] = None
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
  elif spec.startswith("task:"):
    given = {_lookup(k).name: w for k, w in
             _parse_weights(spec[len("task:"):], "task").items()}
    outside = set(given) - set(names)
    if outside:
      raise UserError(f"task_weights names tasks not in data.tasks: {sorted(outside)}")
    weights = np.array([given.get(n, 1.0) for n in names])
  else:
    raise UserError(f"task_weights {spec!r}: expected 'uniform', 'category:NAME=W,...' or "
                     "'task:NAME=W,...'")
  if weights.sum() <= 0:
    raise UserError(f"task_weights {spec!r} gives every selected task weight 0")
  return weights / weights.sum()
