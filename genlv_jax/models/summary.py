"""What a config's model is: parameters per component (from `jax.eval_shape`, nothing
materialised), GMACs at 256x256 (the input plus the two prompts) from XLA's cost analysis of
the lowered forward (no compile), and the output shape. `python -m genlv_jax.summary` prints it.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genlv_jax.config_io import load_config
from genlv_jax.models.build import build_model
from genlv_jax.models.params import abstract_params, flatten_params
from genlv_jax.models.predictor import apply_model

# Top-level modules grouped into the papers' components (Fig. 2).
COMPONENTS = {
    "patch_embed": "input_encoder", "encoder_level1": "input_encoder",
    "down1_2": "input_encoder", "encoder_level2": "input_encoder", "down2_3": "input_encoder",
    "encoder_level3": "input_encoder", "down3_4": "input_encoder",
    "latent": "latent_blocks", "latent_blocks": "latent_blocks",
    "prompt_encoder": "prompt_encoder",
    "up4_3": "decoder", "reduce_chan_level3": "decoder", "decoder_level3": "decoder",
    "up3_2": "decoder", "reduce_chan_level2": "decoder", "decoder_level2": "decoder",
    "up2_1": "decoder", "decoder_level1": "decoder",
    "refinement": "refinement", "output": "refinement",
}
# The latent blocks' prompt cross-attention and its norm, counted apart from the blocks.
_PCA_KEYS = ("/cross_attn/", "/norm4/")


def count_params(abstract: Any) -> dict[str, int]:
  """Parameters per component (the prompt cross-attention separately) and `total`."""
  counts: dict[str, int] = {}
  for key, leaf in flatten_params(abstract).items():
    top = key.split("/")[0]
    prompt_attention = top == "latent_blocks" and any(k in f"/{key}/" for k in _PCA_KEYS)
    component = "prompt_cross_attention" if prompt_attention else COMPONENTS.get(top, top)
    counts[component] = counts.get(component, 0) + int(np.prod(leaf.shape))
  counts["total"] = sum(counts.values())
  return counts


def forward_cost(model, abstract, use_prompt: bool, size: int = 256) -> tuple[float, tuple]:
  """(GMACs, output shape) of one forward on a 1 x size x size image (and prompts), by XLA."""
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  args = (x, x, x) if use_prompt else (x,)
  fn = jax.jit(functools.partial(apply_model, model))
  cost = fn.lower(abstract, *args).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  out = jax.eval_shape(fn, abstract, *args)
  return float(cost["flops"]) / 2e9, tuple(out.shape)


def costing_twin(config):
  """The config whose model XLA's cost analysis counts in full: the same function with every
  level unrolled (XLA counts a while loop's body once), no remat (its recomputation is not the
  model's work) and XLA's own convolutions and norms (nothing is counted inside an FFI call,
  such as the compiled CPU kernels)."""
  return load_config(config, ["model.scan_blocks=false", "remat=false",
                              "ops.depthwise=shifted", "ops.conv=xla", "ops.layer_norm=xla"])


def summarize(config) -> dict[str, Any]:
  """The summary as a dict: params (total), params_per_component, gmacs_256, output_shape_256."""
  model = build_model(config)
  abstract = abstract_params(model, config)
  counts = count_params(abstract)
  unrolled = costing_twin(config)
  unrolled_model = build_model(unrolled)
  gmacs, out_shape = forward_cost(unrolled_model, abstract_params(unrolled_model, unrolled),
                                  config.model.use_prompt)
  return {
      "params": counts.pop("total"),
      "params_per_component": counts,
      "gmacs_256": round(gmacs, 2),
      "output_shape_256": list(out_shape),
  }
