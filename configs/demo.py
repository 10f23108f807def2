"""The CPU demo (`make demo`): a small GenLV trained on the builtin images over 8 procedural
tasks, then a per-task PSNR table (input vs prediction) and a sample grid PNG.

    python -m genlv_jax.demo --config configs/demo.py --workdir workdir/demo
About 5 minutes of training on a 2-core CPU (README, "Demo" has the numbers).
"""

from genlv_jax.config_defaults import default_config

DEMO_TASKS = (
    "gaussian_denoising", "impulse_denoising", "jpeg_restoration", "inpainting",
    "simple_deraining", "brightness_darkening_correction", "contrast_weakening_correction",
    "exposure_correction",
)


def get_config():
  config = default_config()
  m = config.model
  m.dim = 8
  m.num_blocks = (1, 1, 1, 2)
  m.num_refinement_blocks = 1
  m.channel_heads = (1, 1, 2, 2)
  m.spatial_heads = (1, 1, 2, 2)
  m.spatial_dim_head = 8
  m.prompt_channels = 8
  m.prompt_blocks = 1
  m.prompt_heads = 2
  config.batch_size = 8
  config.image_size = 64
  config.total_steps = 250
  config.optimizer.learning_rate = 2e-3
  config.optimizer.warmup_steps = 20
  config.log_every = 50
  config.checkpoint_every = 200
  config.eval_every = 0          # the demo evaluates once at the end
  config.eval_images = 8
  config.data.source = "builtin"
  config.data.tasks = ",".join(DEMO_TASKS)
  return config
