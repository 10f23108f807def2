"""The Python API: `load_model(config, checkpoint)` -> a callable predictor (DESIGN §6).

    model = genlv_jax.load_model("configs/base.py")          # random init from config.seed
    out = model(images, prompt_source, prompt_target)         # numpy NHWC float32 in [0, 1]
"""

from __future__ import annotations

import os
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genlv_jax import checkpointing
from genlv_jax.config_io import ConfigLike, load_config
from genlv_jax.models import build_model

PyTree = Any

# Params do not depend on the image size: initialise on the smallest legal input.
_INIT_SIZE = 64


def init_params(model, config: ml_collections.ConfigDict, rng: Optional[jax.Array] = None) -> PyTree:
  """Initialises the parameter tree (float32) from `config.seed` or an explicit key."""
  rng = jax.random.key(config.seed, impl=config.prng_impl) if rng is None else rng
  return jax.jit(model.init)(rng, *_dummy_inputs(config))["params"]


def abstract_params(model, config: ml_collections.ConfigDict) -> PyTree:
  """The parameter tree's shapes and dtypes, without computing anything."""
  return jax.eval_shape(model.init, jax.random.key(0), *_dummy_inputs(config))["params"]


def _dummy_inputs(config):
  x = jnp.zeros((1, _INIT_SIZE, _INIT_SIZE, 3), jnp.float32)
  return (x, x, x) if config.model.use_prompt else (x,)


def load_params(model, config: ml_collections.ConfigDict, checkpoint: str) -> PyTree:
  """Params from an orbax params directory, or a PyTorch `.pth` / `.safetensors` file."""
  path = os.fspath(checkpoint)
  if path.endswith((".pth", ".pt", ".safetensors")):
    from genlv_jax.bridge import load_torch_checkpoint  # torch is an extra: import on use
    return load_torch_checkpoint(path, config)
  if not os.path.exists(path):
    raise FileNotFoundError(f"checkpoint not found: {path}")
  if checkpointing.is_params_checkpoint(path):
    return checkpointing.restore_params(path, abstract_params(model, config))
  if checkpointing.is_training_workdir(path):
    checkpointer = checkpointing.TrainCheckpointer(path, every=1, keep=1)
    try:
      return checkpointer.restore_params(abstract_params(model, config))
    finally:
      checkpointer.close()
  raise ValueError(f"{path} is neither an orbax params checkpoint, a training workdir nor a "
                   ".pth/.safetensors file")


class Predictor:
  """A GenLV model with its params: call it on numpy images, get numpy images back.

  Images are float32 in [0, 1], NHWC (or HWC for one image); any size (padded inside the
  model). The forward is jit-compiled once per input shape. A prompt pair with batch 1 is
  shared by every image of the batch; P_S and P_T must have one size (any size: the model
  reflect-pads prompts to a multiple of 8), else ValueError before any model work.
  """

  def __init__(self, model, params: PyTree, config: ml_collections.ConfigDict):
    self.model = model
    self.params = params
    self.config = config
    self._forward = jax.jit(lambda p, *args: model.apply({"params": p}, *args))

  def __call__(self, images: np.ndarray, prompt_source: Optional[np.ndarray] = None,
               prompt_target: Optional[np.ndarray] = None) -> np.ndarray:
    images = np.asarray(images, np.float32)
    single = images.ndim == 3
    batch = images[None] if single else images
    if batch.ndim != 4 or batch.shape[-1] != 3:
      raise ValueError(f"images must be (H, W, 3) or (N, H, W, 3), got shape {images.shape}")
    args = [batch]
    if self.config.model.use_prompt:
      if prompt_source is None or prompt_target is None:
        raise ValueError("this model needs prompt_source and prompt_target")
      for prompt in (prompt_source, prompt_target):
        prompt = np.asarray(prompt, np.float32)
        prompt = prompt[None] if prompt.ndim == 3 else prompt
        if prompt.ndim != 4 or prompt.shape[-1] != 3:
          raise ValueError(f"prompts must be (H, W, 3) or (N, H, W, 3), got {prompt.shape}")
        if prompt.shape[0] == 1 and batch.shape[0] > 1:
          prompt = np.broadcast_to(prompt, (batch.shape[0],) + prompt.shape[1:])
        if prompt.shape[0] != batch.shape[0]:
          raise ValueError(f"prompt batch {prompt.shape[0]} != image batch {batch.shape[0]}")
        args.append(prompt)
      if args[1].shape != args[2].shape:
        # z_S gives the bottleneck cross-attention's keys and z_T its values, token for token.
        raise ValueError(f"prompt_source {args[1].shape[1:3]} and prompt_target "
                         f"{args[2].shape[1:3]} must have the same size (H, W): a prompt pair "
                         "shows one transformation pixel for pixel")
    out = np.asarray(self._forward(self.params, *args))
    return out[0] if single else out


def load_model(config: ConfigLike, checkpoint: Optional[str] = None) -> Predictor:
  """Builds the model of `config` (a config file path, `path.py:arg`, or a ConfigDict).

  `checkpoint`: None for a random init from `config.seed`; an orbax params directory (as
  written by `genlv_jax.convert`); a training workdir (its latest checkpoint's params); a
  `.pth` or `.safetensors` PyTorch file (converted on the fly).
  """
  config = load_config(config)
  model = build_model(config)
  if checkpoint is None:
    params = init_params(model, config)
  else:
    params = load_params(model, config, checkpoint)
  return Predictor(model, params, config)
