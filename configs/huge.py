"""GenLV-Huge (paper Table I: blocks [6,8,8,12], widths [80,160,320,640], 211.11 M params).

Heads as Large (spatial [2,4,8,16], channel [1,2,4,8]). The paper's recipe: batch 64 of 256x256
crops, L1, AdamW(0.9, 0.99), lr 1e-4, bfloat16 compute on accelerators, on ImageNet prepared
as a tfds ArrayRecord dataset.

    python -m genlv_jax.summary --config configs/huge.py
    python -m genlv_jax.train --config configs/huge.py --workdir gs://BUCKET/genlv_huge \
        --config.data.data_dir=gs://BUCKET/tfds
Shrink it for a laptop: --config.data.source=builtin --config.batch_size=2 --config.image_size=64
"""

from genlv_jax.config_defaults import default_config


def get_config():
  config = default_config()
  config.model.dim = 80
  config.model.num_blocks = (6, 8, 8, 12)
  config.model.channel_heads = (1, 2, 4, 8)
  config.model.spatial_heads = (2, 4, 8, 16)
  config.model.prompt_heads = 16
  config.dtype = "bfloat16"
  config.remat = True
  config.model.scan_blocks = True
  config.data.source = "tfds:imagenet2012"
  return config
