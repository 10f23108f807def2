"""GenLV models in Flax linen (NHWC, params as a pytree). Imports only jax and flax."""

from genlv_jax.models.genlv import GenLV, PAD_MULTIPLE, XRestormer
from genlv_jax.models.build import build_model, compute_dtype

__all__ = ["GenLV", "XRestormer", "PAD_MULTIPLE", "build_model", "compute_dtype"]
