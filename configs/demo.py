"""The CPU demo (`make demo`): a small GenLV trained on the builtin images over 8 procedural
tasks, then a per-task PSNR table (input vs prediction) and a sample grid PNG.

    python -m genlv_jax.demo --config configs/demo.py --workdir workdir/demo
About 5 minutes of training on a 2-core CPU (README, "Demo" has the numbers).
"""

import os

from genlv_jax.config_io import load_config

DEMO_TASKS = (
    "gaussian_denoising", "impulse_denoising", "jpeg_restoration", "inpainting",
    "simple_deraining", "brightness_darkening_correction", "contrast_weakening_correction",
    "exposure_correction",
)


def get_config():
  # The model of configs/tiny.py (0.54 M params): small enough to learn something in minutes.
  config = load_config(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny.py"))
  config.batch_size = 8
  config.image_size = 64
  config.total_steps = 250
  config.optimizer.learning_rate = 2e-3
  config.optimizer.warmup_steps = 20
  config.log_every = 50
  config.checkpoint_every = 200
  config.eval_every = 0          # the demo evaluates once at the end
  config.eval_images = 4         # the 4 builtin images held out of training (of 40) …
  config.eval_prompts = 2        # … each with two prompt pairs: 8 measurements per task
  config.data.source = "builtin"
  config.data.tasks = ",".join(DEMO_TASKS)
  return config
