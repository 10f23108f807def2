"""X-Restormer as released (no prompt path; the papers' X-Restormer* baseline).

dim 48, blocks [2,4,4,4], 4 refinement blocks, heads [1,2,4,8], overlap 0.5, window 8,
dim_head 16, expansion 2.66, no bias, global residual; its checkpoints are RGB (BasicSR).
`scale` 1; pass `:sr` for the x4 SR checkpoint shape (bilinear x4 upsampling of the input
before the network, as the official forward does):

    python -m genlv_jax.summary --config configs/xrestormer.py
    python -m genlv_jax.summary --config configs/xrestormer.py:sr
"""

from genlv_jax.config_defaults import default_config
from genlv_jax.config_io import ConfigError


def get_config(arg: str = ""):
  if arg not in ("", "sr"):
    raise ConfigError(f"configs/xrestormer.py takes no argument or ':sr', got {arg!r}")
  config = default_config()
  config.model.use_prompt = False
  config.model.checkpoint_channel_order = "rgb"
  config.model.scale = 4 if arg == "sr" else 1
  return config
