"""GenLV-Large: the authors' `xrestormer_prompt_crossattn_large` (GenLV-101, journal Table I).

dim 64, blocks [4,6,6,8], 6 refinement blocks, heads [1,2,4,8], prompt encoder width 32:
94,196,822 parameters (width 64: 100,569,206; Table I says 100.48 M).

    python -m genlv_jax.summary --config configs/large.py
    python -m genlv_jax.train --config configs/large.py --workdir gs://BUCKET/genlv_large
"""

from genlv_jax.config_defaults import default_config


def get_config():
  config = default_config()
  config.model.dim = 64
  config.model.num_blocks = (4, 6, 6, 8)
  config.model.num_refinement_blocks = 6
  return config
