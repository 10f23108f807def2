"""GenLV models in Flax linen (NHWC, params as a pytree). Imports only jax and flax."""

from genlv_jax.models.build import build_model, compute_dtype
from genlv_jax.models.genlv import GenLV, PAD_MULTIPLE, XRestormer
from genlv_jax.models.params import (CheckpointMismatchError, abstract_params, flatten_params,
                                     init_params, unflatten_params)
from genlv_jax.models.predictor import Predictor, apply_model, apply_to_batch

__all__ = ["CheckpointMismatchError", "GenLV", "PAD_MULTIPLE", "Predictor", "XRestormer",
           "abstract_params", "apply_model", "apply_to_batch", "build_model", "compute_dtype",
           "flatten_params", "init_params", "unflatten_params"]
