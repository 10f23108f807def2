"""Task metadata (`Task`, `Severity`), the registry and the quadruplet maker.

A task is one row of GLV-Bench (Tables VI–IX of "GenLV: scalable unified modeling"): its
paper name, category, where its pairs come from, and — for the procedural tasks — an operator
that turns a clean image into an (input, target) pair at a given severity.

Severity is a float in [0, 1]: 0 is the mildest setting, 1 the strongest, mapped linearly (or
log-linearly) onto the task's physical parameter range, `Severity.mild` → `Severity.strong`.
A training quadruplet uses one severity for its prompt pair and its input pair, so that a mild
prompt shows a mild input (the large paper, Sec. III-C2, "Task Granularity and Prompt
Sensitivity").
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Optional, Protocol

import numpy as np

from genlv_jax.tasks import _util

CATEGORIES = ("restoration", "enhancement", "stylization", "feature_extraction")
SOURCES = ("procedural", "paired_dataset", "model")


class Operator(Protocol):
  """op(clean, value, rng, **shared) -> (input, target): `value` is the physical parameter."""

  def __call__(self, clean: np.ndarray, value: float, rng: np.random.Generator,
               **shared: Any) -> tuple[np.ndarray, np.ndarray]:
    ...


SharedSampler = Callable[[float, np.random.Generator], dict]


@dataclasses.dataclass(frozen=True)
class Severity:
  """How severity in [0, 1] maps onto a task's parameter.

  Attributes:
    param: name of the physical parameter (e.g. "sigma_255", "jpeg_quality").
    mild: parameter value at severity 0.
    strong: parameter value at severity 1 (equal to `mild` for tasks without a knob).
    scale: "linear" or "log" interpolation between the two.
    integer: round the value to the nearest integer.
    reference: where the range comes from (PromptGIP operator, ImageNet-C, or our choice).
  """

  param: str
  mild: float
  strong: float
  scale: str = "linear"
  integer: bool = False
  reference: str = ""

  def __post_init__(self):
    if self.scale not in ("linear", "log"):
      raise ValueError(f"unknown severity scale {self.scale!r}")
    if self.scale == "log" and (self.mild <= 0 or self.strong <= 0):
      raise ValueError("log severity needs positive endpoints")

  @property
  def fixed(self) -> bool:
    """True when the task has no severity knob (mild == strong)."""
    return self.mild == self.strong

  def value(self, severity: float) -> float:
    """Parameter value for `severity` in [0, 1] (clipped into the range)."""
    s = min(max(float(severity), 0.0), 1.0)
    if self.scale == "log":
      v = math.exp(math.log(self.mild) + s * (math.log(self.strong) - math.log(self.mild)))
    else:
      v = self.mild + s * (self.strong - self.mild)
    return float(round(v)) if self.integer else v

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def fixed(param: str, value: float, reference: str) -> Severity:
  """A `Severity` for tasks without a severity knob."""
  return Severity(param, value, value, reference=reference)


@dataclasses.dataclass(frozen=True)
class Task:
  """One GLV-Bench task.

  Attributes:
    name: snake_case identifier, unique.
    paper_name: the name exactly as spelled in Tables VI–IX (typos included).
    category: restoration | enhancement | stylization | feature_extraction.
    source: procedural (synthesised here from clean images) | paired_dataset | model
      (pairs produced by a third-party model, e.g. AdaAttN neural styles).
    severity: the severity → parameter mapping.
    table: paper table ("VI".."IX"); index: task index in it; group: the paper's task group.
    op: procedural operator (None for the others); see `Operator`.
    shared: samples parameters that the prompt pair and the input pair must share
      (a filter choice, a degradation chain), called once per quadruplet.
    domain: preferred clean-image domain for procedural tasks on domain data (e.g. "satellite").
    dataset: the paired dataset / model / toolkit that defines the task in the papers.
    monotonic: the input degrades monotonically with severity (PSNR(input, target) falls).
    notes: free-text documentation of the operator and of choices we made.
  """

  name: str
  paper_name: str
  category: str
  source: str
  severity: Severity
  table: str
  index: int
  group: int
  op: Optional[Operator] = dataclasses.field(default=None, repr=False, compare=False)
  shared: Optional[SharedSampler] = dataclasses.field(default=None, repr=False, compare=False)
  domain: Optional[str] = None
  dataset: Optional[str] = None
  monotonic: bool = True
  notes: str = ""

  def __post_init__(self):
    if self.category not in CATEGORIES:
      raise ValueError(f"{self.name}: bad category {self.category!r}")
    if self.source not in SOURCES:
      raise ValueError(f"{self.name}: bad source {self.source!r}")
    if (self.source == "procedural") != (self.op is not None):
      raise ValueError(f"{self.name}: procedural tasks (and only they) need an op")

  @property
  def procedural(self) -> bool:
    return self.source == "procedural"

  def sample_shared(self, severity: float, rng: np.random.Generator) -> dict:
    """Parameters shared by the two pairs of one quadruplet ({} for most tasks)."""
    return dict(self.shared(severity, rng)) if self.shared else {}

  def synthesize(self, clean: np.ndarray, severity: float, rng: np.random.Generator, *,
                 out: Optional[tuple[np.ndarray, np.ndarray]] = None,
                 copy_clean: bool = True, **shared: Any) -> tuple[np.ndarray, np.ndarray]:
    """Makes an (input, target) pair from a clean HxWx3 float32 image in [0, 1].

    Restoration: input = degraded(clean), target = clean. Stylization and feature
    extraction: input = clean, target = f(clean) (maps replicated to 3 channels).
    Enhancement: the direction the paper uses (see `notes`).
    Deterministic given `rng`'s state. `shared` overrides the per-pair sampling of
    parameters in `Task.shared` (used by `make_quadruplet`). `out`: two float32 arrays of the
    clean image's shape to write the pair into (the input pipeline passes slots of its batch,
    which saves a copy per image); they are returned. `copy_clean=False` skips the defensive
    clipped copy of `clean`, for callers whose image is already float32 in [0, 1] and their
    own (the pipeline's fresh crops; operators never write into their input).
    """
    if self.op is None:
      raise ValueError(
          f"task {self.name!r} is {self.source} ({self.dataset}); it cannot be synthesised "
          "from a clean image")
    if not 0.0 <= float(severity) <= 1.0:
      raise ValueError(f"severity must be in [0, 1], got {severity}")
    clean = _util.check_image(clean, "clean")
    if copy_clean:
      clean = _util.finish(clean)
    if self.shared and not shared:
      shared = self.sample_shared(severity, rng)
    inp, tgt = self.op(clean, self.severity.value(severity), rng, **shared)
    if inp.shape != clean.shape or tgt.shape != clean.shape:
      raise AssertionError(f"{self.name}: op returned {inp.shape}/{tgt.shape} "
                           f"for {clean.shape}")
    out = out or (None, None)
    return _store(inp, clean, out[0]), _store(tgt, clean, out[1])

  def to_dict(self) -> dict:
    """JSON-friendly metadata (what `python -m genlv_jax.tasks list --json` prints)."""
    return {
        "name": self.name, "paper_name": self.paper_name, "category": self.category,
        "source": self.source,
        "severity_range": [self.severity.mild, self.severity.strong],
        "severity": self.severity.to_dict(),
        "table": self.table, "index": self.index, "group": self.group,
        "domain": self.domain, "dataset": self.dataset, "notes": self.notes,
    }


def _store(image: np.ndarray, clean: np.ndarray, out: Optional[np.ndarray]) -> np.ndarray:
  """An operator's output finished (into `out` when given). The side an operator passes
  through unchanged is `clean`, already finished: it is copied, not clipped again."""
  if image is clean:
    if out is None:
      return clean
    np.copyto(out, clean)
    return out
  return _util.finish(image, out=out)


_REGISTRY: dict[str, Task] = {}
_BY_PAPER_NAME: dict[str, Task] = {}


def register(tasks: Iterable[Task]) -> None:
  """Adds tasks to the registry (names and paper names must be unique)."""
  for task in tasks:
    if task.name in _REGISTRY:
      raise ValueError(f"duplicate task name {task.name!r}")
    key = task.paper_name.lower()
    if key in _BY_PAPER_NAME:
      raise ValueError(f"duplicate paper name {task.paper_name!r}")
    _REGISTRY[task.name] = task
    _BY_PAPER_NAME[key] = task


def _ensure_loaded() -> None:
  # The catalogue modules register themselves on import; importing here keeps
  # `registry` importable on its own without an import cycle.
  from genlv_jax.tasks import catalogue  # noqa: F401  pylint: disable=import-outside-toplevel


def get_task(name_or_paper_name: str | Task) -> Task:
  """Looks a task up by `name` or by `paper_name` (case-insensitive).

  Raises:
    KeyError: with a one-line message naming the unknown task.
  """
  if isinstance(name_or_paper_name, Task):
    return name_or_paper_name
  _ensure_loaded()
  key = str(name_or_paper_name).strip()
  task = _REGISTRY.get(key) or _REGISTRY.get(key.lower().replace("-", "_").replace(" ", "_"))
  task = task or _BY_PAPER_NAME.get(key.lower())
  if task is None:
    raise KeyError(f"unknown task {name_or_paper_name!r} (see `python -m genlv_jax.tasks list`)")
  return task


def all_tasks() -> tuple[Task, ...]:
  """The 101 GLV-Bench tasks in paper order (Tables VI, VII, VIII, IX)."""
  _ensure_loaded()
  return tuple(t for t in _REGISTRY.values() if t.table in ("VI", "VII", "VIII", "IX"))


def extra_tasks() -> tuple[Task, ...]:
  """Registered tasks outside GLV-Bench (the ACMMM mixed-degradation composition)."""
  _ensure_loaded()
  return tuple(t for t in _REGISTRY.values() if t.table not in ("VI", "VII", "VIII", "IX"))


def procedural_tasks() -> tuple[Task, ...]:
  """The GLV-Bench tasks that `synthesize` can make from clean images."""
  return tuple(t for t in all_tasks() if t.procedural)


def make_quadruplet(task: str | Task, prompt_clean: np.ndarray, input_clean: np.ndarray,
                    severity: float, rng: np.random.Generator,
                    out: Optional[dict[str, np.ndarray]] = None,
                    copy_clean: bool = True) -> dict[str, np.ndarray]:
  """One training sample: a prompt pair and an input pair of the same task and severity.

  The prompt pair is made from `prompt_clean`, the input pair from `input_clean` (a different
  clean image, as in both papers); parameters that define *which* transformation is shown (a
  filter, a degradation chain) are drawn once and shared, noise realisations are not.
  `out` (optional) holds the four arrays to write into, keyed as the result; `copy_clean`:
  see `Task.synthesize`.

  Returns:
    dict with `prompt_source`, `prompt_target`, `input`, `target`: HxWx3 float32 in [0, 1]
    (the prompt may have another size than the input).
  """
  task = get_task(task)
  if prompt_clean is input_clean:
    raise ValueError("the prompt pair must come from a different clean image than the input")
  out = out or {}
  shared = task.sample_shared(severity, rng)
  prompt_source, prompt_target = task.synthesize(
      prompt_clean, severity, rng, out=_pair(out, "prompt_source", "prompt_target"),
      copy_clean=copy_clean, **shared)
  inp, target = task.synthesize(input_clean, severity, rng, out=_pair(out, "input", "target"),
                                copy_clean=copy_clean, **shared)
  return {"prompt_source": prompt_source, "prompt_target": prompt_target,
          "input": inp, "target": target}


def _pair(out: dict, first: str, second: str) -> Optional[tuple[np.ndarray, np.ndarray]]:
  return (out[first], out[second]) if first in out else None


def degrade(fn: Callable[..., np.ndarray]) -> Operator:
  """Restoration operator: input = fn(clean), target = clean."""
  def op(clean, value, rng, **shared):
    return fn(clean, value, rng, **shared), clean
  op.__name__ = op.__qualname__ = f"degrade({fn.__name__})"
  op.__doc__ = fn.__doc__
  return op


def transform(fn: Callable[..., np.ndarray]) -> Operator:
  """Forward operator (stylization, feature extraction, some enhancements):
  input = clean, target = fn(clean)."""
  def op(clean, value, rng, **shared):
    return clean, fn(clean, value, rng, **shared)
  op.__name__ = op.__qualname__ = f"transform({fn.__name__})"
  op.__doc__ = fn.__doc__
  return op


def paired(name: str, paper_name: str, category: str, table: str, index: int, group: int,
           dataset: str, notes: str = "", source: str = "paired_dataset") -> Task:
  """A task whose pairs come from a dataset (or a model): metadata only."""
  return Task(name=name, paper_name=paper_name, category=category, source=source,
              severity=fixed("none", 0.0, f"defined by {dataset}"), table=table,
              index=index, group=group, dataset=dataset, monotonic=False, notes=notes)

