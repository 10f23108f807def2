"""genlv-jax: GenLV, the visual-task-prompt generalist for low-level vision, in JAX/Flax."""

__version__ = "0.1.0"


def load_model(config, checkpoint=None):
  """Returns a callable predictor; see `genlv_jax.api.load_model`."""
  from genlv_jax.api import load_model as _load_model  # keeps `import genlv_jax` light
  return _load_model(config, checkpoint)
