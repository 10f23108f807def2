"""GenLV-Large (paper Table I: blocks [4,6,6,8], widths [64,128,256,512], 100.48 M params).

Heads "expand accordingly" (§IV-A.2): spatial heads double to [2,4,8,16], channel heads stay
[1,2,4,8] (README, "Choices").

    python -m genlv_jax.summary --config configs/large.py
"""

from genlv_jax.config_defaults import default_config


def get_config():
  config = default_config()
  config.model.dim = 64
  config.model.num_blocks = (4, 6, 6, 8)
  config.model.channel_heads = (1, 2, 4, 8)
  config.model.spatial_heads = (2, 4, 8, 16)
  config.model.prompt_heads = 16
  return config
