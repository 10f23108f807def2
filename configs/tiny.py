"""A tiny GenLV for tests: every code path of the real model, compiled in seconds on a CPU."""

from genlv_jax.config_defaults import default_config


def get_config():
  config = default_config()
  m = config.model
  m.dim = 8
  m.num_blocks = (1, 1, 1, 2)
  m.num_refinement_blocks = 1
  m.heads = (1, 1, 2, 2)
  m.spatial_dim_head = 8
  m.prompt_encoder_width = 4
  config.batch_size = 2
  config.image_size = 64
  return config
