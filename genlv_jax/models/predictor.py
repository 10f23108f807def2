"""Applying a model to images: the one place that knows whether it takes a prompt pair.

`apply_model` is the traced function (training loss, evaluation, summaries, export);
`Predictor` wraps it for numpy callers (`genlv_jax.load_model` returns one).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Optional

import jax
import ml_collections
import numpy as np

from genlv_jax.errors import UserError

PyTree = Any


def apply_model(model, params: PyTree, images: jax.Array,
                prompt_source: Optional[jax.Array] = None,
                prompt_target: Optional[jax.Array] = None) -> jax.Array:
  """`model.apply` on NHWC images, with the prompt pair when the model takes one (GenLV) and
  without it when it does not (X-Restormer, whose callers may still carry prompts)."""
  if not model.takes_prompt:
    return model.apply({"params": params}, images)
  if prompt_source is None or prompt_target is None:
    raise UserError("this model needs prompt_source and prompt_target")
  return model.apply({"params": params}, images, prompt_source, prompt_target)


def apply_to_batch(model, params: PyTree, batch: Mapping[str, jax.Array]) -> jax.Array:
  """`apply_model` on a batch dict (`input`, and `prompt_source` / `prompt_target`)."""
  return apply_model(model, params, batch["input"], batch.get("prompt_source"),
                     batch.get("prompt_target"))


def _as_batch(array: Any, what: str) -> np.ndarray:
  array = np.asarray(array, np.float32)
  batch = array[None] if array.ndim == 3 else array
  if batch.ndim != 4 or batch.shape[-1] != 3:
    raise UserError(f"{what} must be (H, W, 3) or (N, H, W, 3), got shape {array.shape}")
  return batch


class Predictor:
  """A model with its params: call it on numpy images, get numpy images back.

  Images are float32 in [0, 1], NHWC (or HWC for one image); any size (padded inside the
  model). The forward is jit-compiled once per input shape. A prompt pair with batch 1 is
  shared by every image of the batch; P_S and P_T must have one size (any size: the model
  reflect-pads prompts to a multiple of 8), else a `UserError` before any model work.
  """

  def __init__(self, model, params: PyTree, config: ml_collections.ConfigDict,
               forward: Optional[Callable[..., jax.Array]] = None):
    """`forward(params, images[, prompt_source, prompt_target])`: default `apply_model` of
    `model` under `jax.jit`; the trainer passes one with its mesh's output sharding."""
    self.model = model
    self.params = params
    self.config = config
    self._forward = forward or jax.jit(functools.partial(apply_model, model))

  def with_params(self, params: PyTree) -> "Predictor":
    """The same model and compiled forward with other params (the trainer's evaluations)."""
    return Predictor(self.model, params, self.config, self._forward)

  def __call__(self, images: np.ndarray, prompt_source: Optional[np.ndarray] = None,
               prompt_target: Optional[np.ndarray] = None) -> np.ndarray:
    single = np.ndim(images) == 3
    batch = _as_batch(images, "images")
    if not self.model.takes_prompt:
      return self._finish(self._forward(self.params, batch), single)
    if prompt_source is None or prompt_target is None:
      raise UserError("this model needs prompt_source and prompt_target")
    prompts = []
    for prompt in (prompt_source, prompt_target):
      prompt = _as_batch(prompt, "prompts")
      if prompt.shape[0] == 1 and batch.shape[0] > 1:
        prompt = np.broadcast_to(prompt, (batch.shape[0],) + prompt.shape[1:])
      if prompt.shape[0] != batch.shape[0]:
        raise UserError(f"prompt batch {prompt.shape[0]} != image batch {batch.shape[0]}")
      prompts.append(prompt)
    if prompts[0].shape != prompts[1].shape:
      # z_S gives the bottleneck cross-attention's keys and z_T its values, token for token.
      raise UserError(f"prompt_source {prompts[0].shape[1:3]} and prompt_target "
                      f"{prompts[1].shape[1:3]} must have the same size (H, W): a prompt pair "
                      "shows one transformation pixel for pixel")
    return self._finish(self._forward(self.params, batch, *prompts), single)

  @staticmethod
  def _finish(output: jax.Array, single: bool) -> np.ndarray:
    out = np.asarray(output)
    return out[0] if single else out
