"""GenLV-Giant: the authors' `xrestormer_prompt_crossattn_giant` as released with GenLV-30
(`GenLV-30/ckpt/GenLV-Giant`): their GenLV-30 file, whose prompt encoder has width 64.

dim 96, blocks [8,12,12,16], 12 refinement blocks, heads [1,2,4,8]: 401,825,068 parameters
(their file's comment says 401.57 M; with width 32, 394,862,860).

    python -m genlv_jax.summary --config configs/giant.py
    python -m genlv_jax.infer --config configs/giant.py --checkpoint checkpoint-17.pth ...
"""

from genlv_jax.config_defaults import default_config, pod_training


def get_config():
  config = default_config()
  config.model.dim = 96
  config.model.num_blocks = (8, 12, 12, 16)
  config.model.num_refinement_blocks = 12
  config.model.prompt_encoder_width = 64
  return pod_training(config)
