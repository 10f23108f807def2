"""GenLV-Base (paper Table I: blocks [2,4,4,4], widths [48,96,192,384], 38.77 M params).

    python -m genlv_jax.summary --config configs/base.py
    python -m genlv_jax.train --config configs/base.py --workdir /tmp/genlv_base
"""

from genlv_jax.config_defaults import default_config


def get_config():
  config = default_config()
  config.model.dim = 48
  config.model.num_blocks = (2, 4, 4, 4)
  config.model.channel_heads = (1, 2, 4, 8)
  config.model.spatial_heads = (1, 2, 4, 8)
  config.model.prompt_heads = 8
  return config
