"""The Python API: `load_model(config, checkpoint)` -> a callable predictor.

    model = genlv_jax.load_model("configs/base.py")          # random init from config.seed
    out = model(images, prompt_source, prompt_target)         # numpy NHWC float32 in [0, 1]
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import ml_collections

from genlv_jax.config_io import ConfigLike, load_config
from genlv_jax.errors import UserError
from genlv_jax.models import Predictor, abstract_params, build_model, init_params
from genlv_jax.training.checkpointing import (CheckpointRef, load_params, read_workdir_config,
                                              resolve_checkpoint, restore_params, save_params)

__all__ = ["CheckpointRef", "Predictor", "abstract_params", "config_for", "init_params",
           "load_model", "load_params", "resolve_checkpoint", "restore_params", "save_params"]


def config_for(config: Optional[ConfigLike], checkpoint: Optional[CheckpointRef],
               overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """The config to run `checkpoint` with: `config` when given; otherwise the one a training
  workdir recorded (`WORKDIR/config.json`), so that a model trained with overrides loads without
  a config file of its own. `overrides` (`field=value`) apply either way."""
  if config is not None:
    return load_config(config, overrides)
  recorded = read_workdir_config(checkpoint.path) if checkpoint and checkpoint.kind == "training" \
      else None
  if recorded is None:
    raise UserError("--config is required unless --checkpoint is a training workdir that "
                    "recorded its config (WORKDIR/config.json)")
  return load_config(recorded, overrides)


def load_model(config: ConfigLike,
               checkpoint: Optional[Union[str, CheckpointRef]] = None) -> Predictor:
  """Builds the model of `config` (a config file path, `path.py:arg`, or a ConfigDict).

  `checkpoint`: None for a random init from `config.seed`; an orbax params directory (as
  written by `genlv_jax.convert`); a training workdir (its latest checkpoint's params, EMA
  params when the run kept an EMA); a fine-tuning workdir (its best params); a `.pth` or
  `.safetensors` PyTorch file (converted on the fly); or what `resolve_checkpoint` made of one.
  """
  config = load_config(config)
  model = build_model(config)
  params = init_params(model, config) if checkpoint is None else load_params(model, config,
                                                                             checkpoint)
  return Predictor(model, params, config)
