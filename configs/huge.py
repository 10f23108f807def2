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

The authors' GenLV-101 data, as their loader (extended_version/dataset/genlv_100_dataloader.py)
mixes and sizes it:

    --config.data.tasks=all --config.data.task_weights=official101 --config.data.crop=resize \
        --config.data.paired_root=/data/GenLV_Processed_Data
"""

from genlv_jax.config_defaults import default_config, pod_training


def get_config():
  config = default_config()
  config.model.dim = 80
  config.model.num_blocks = (6, 8, 8, 12)
  config.model.num_refinement_blocks = 8
  # Random 256² crops (data.crop="random"), not the authors' whole-image resize ("resize"):
  # the papers (§IV-A) state 256x256 crops, and a crop keeps ImageNet's pixel scale, which the
  # scale-sensitive degradations (noise grain, JPEG blocks, blur widths, SR) are defined at;
  # resizing squeezes a ~400x350 photo (aspect ratio lost) into 256². The task mixture stays
  # the defaults' (uniform over `data.tasks`); "official101" with "resize" is the authors'
  # loader, one override away (module docstring).
  config.data.crop = "random"
  return pod_training(config)
