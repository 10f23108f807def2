"""GenLV-Base: the authors' `xrestormer_prompt_crossattn_base` (GenLV-101, journal Table I).

dim 48, blocks [2,4,4,4], 4 refinement blocks, heads [1,2,4,8], prompt encoder width 32:
32,743,960 parameters, exactly their module's (Table I's 38.77 M counts width 64:
`--config.model.prompt_encoder_width=64` gives 38,821,432).

    python -m genlv_jax.summary --config configs/base.py
    python -m genlv_jax.infer --config configs/base.py --checkpoint base-checkpoint-49.pth \\
        --prompt-input PS.png --prompt-target PT.png --input X.png --output Y.png
    python -m genlv_jax.train --config configs/base.py --workdir /tmp/genlv_base
"""

from genlv_jax.config_defaults import default_config


def get_config():
  return default_config()  # the defaults are GenLV-Base's
