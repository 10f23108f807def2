"""The ACMMM paper's mixed-degradation training samples (§4.1 "Simple mixed degradations are
also considered"), after PromptGIP's `DatasetLowlevel_Train.__getitem__`: one pass through five
slots, each picking one operator or nothing —

  1. low light            | —
  2. Gaussian blur | ringing | Richardson–Lucy | —
  3. Gaussian | salt & pepper | Poisson noise   | —
  4. JPEG                 | —
  5. inpainting | rain    | —

PromptGIP applies the same chain to the prompt and the input image (levels drawn per image);
here the chain is a shared parameter of the quadruplet and every step uses the quadruplet's
severity through its own catalogue range. Like PromptGIP, each step's output is rounded to
8 bits. Unlike it, we require at least two active steps (PromptGIP's chain can be empty, which
would make the pair an identity; a single step is an ordinary task).
"""

from __future__ import annotations

import numpy as np

from genlv_jax.tasks import _util, color
from genlv_jax.tasks.registry import Severity, Task, get_task

LOW_LIGHT = "low_light"
SLOTS: tuple[tuple[str, ...], ...] = (
    (LOW_LIGHT, ""),
    ("gaussian_deblurring", "ringing_removal", "lucy_richardson_deconvolution", ""),
    ("gaussian_denoising", "impulse_denoising", "poisson_denoising", ""),
    ("jpeg_restoration", ""),
    ("inpainting", "simple_deraining", ""),
)
# PromptGIP's chain uses lum_scale ~ U(0.3, 0.4).
LOW_LIGHT_SEVERITY = Severity("lum_scale", 0.4, 0.3,
                              reference="PromptGIP add_degradation_two_images 'LowLight'")
MIN_STEPS = 2


def sample_chain(severity: float, rng: np.random.Generator) -> dict:
  """Draws one operator (or none) per slot, with at least `MIN_STEPS` active steps."""
  del severity
  while True:
    chain = tuple(step for step in (str(rng.choice(slot)) for slot in SLOTS) if step)
    if len(chain) >= MIN_STEPS:
      return {"chain": chain}


def apply_chain(clean: np.ndarray, severity: float, rng: np.random.Generator,
                chain: tuple[str, ...]) -> np.ndarray:
  """Applies the degradations of `chain` in order at `severity`, rounding to 8 bits between
  steps as PromptGIP does."""
  x = clean
  for step in chain:
    if step == LOW_LIGHT:
      x = color.low_light(x, LOW_LIGHT_SEVERITY.value(severity))
    else:
      task = get_task(step)
      x, _ = task.op(x, task.severity.value(severity), rng)
    x = _util.quantize8(x)
  return x


def _mixed_op(clean: np.ndarray, severity: float, rng: np.random.Generator,
              chain: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
  if not chain:
    chain = sample_chain(severity, rng)["chain"]
  return apply_chain(clean, severity, rng, tuple(chain)), clean


MIXED_DEGRADATION = Task(
    name="mixed_degradation", paper_name="Mixed Degradation", category="restoration",
    source="procedural",
    severity=Severity("severity", 0.0, 1.0, reference="each step maps the severity through "
                      "its own task's range (PromptGIP chain)"),
    table="ACMMM", index=0, group=0, op=_mixed_op, shared=sample_chain, monotonic=False,
    notes="ACMMM §4.1 mixed degradations; not one of the 101 GLV-Bench tasks")
