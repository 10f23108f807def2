"""GenLV-Huge: the authors' `xrestormer_prompt_crossattn_huge` (GenLV-101, journal Table I).

dim 80, blocks [6,8,8,12], 8 refinement blocks, heads [1,2,4,8], prompt encoder width 32:
204,592,220 parameters. GenLV-30's Huge (the ACMMM model, `GenLV-30/ckpt/GenLV-Huge`) is
this network with a prompt encoder of width 64 (211,259,516 parameters):
`--config.model.prompt_encoder_width=64`.

The paper's recipe: batch 64 of 256x256 crops, L1, AdamW(0.9, 0.99), lr 1e-4; bfloat16
compute with rematerialised, scanned levels on accelerators; ImageNet as a tfds ArrayRecord
dataset. On a TPU pod slice (launch/README.md has the recipes and memory figures):

    python -m genlv_jax.train --config configs/huge.py --workdir gs://BUCKET/genlv_huge \\
        --config.data.data_dir=gs://BUCKET/tfds
Shrink it for a laptop: --config.data.source=builtin --config.batch_size=2 --config.image_size=64
"""

from genlv_jax.config_defaults import default_config, pod_training


def get_config():
  config = default_config()
  config.model.dim = 80
  config.model.num_blocks = (6, 8, 8, 12)
  config.model.num_refinement_blocks = 8
  return pod_training(config)
