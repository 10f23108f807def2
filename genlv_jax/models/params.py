"""The parameter tree of a config's model: initialised, as shapes only, flattened to keys."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genlv_jax.errors import UserError

PyTree = Any

# Params do not depend on the image size: initialise on the smallest legal input.
_INIT_SIZE = 64


def _dummy_inputs(config: ml_collections.ConfigDict) -> tuple[jax.Array, ...]:
  x = jnp.zeros((1, _INIT_SIZE, _INIT_SIZE, 3), jnp.float32)
  return (x, x, x) if config.model.use_prompt else (x,)


def init_params(model, config: ml_collections.ConfigDict,
                rng: Optional[jax.Array] = None) -> PyTree:
  """Initialises the parameter tree (float32) from `config.seed` or an explicit key."""
  rng = jax.random.key(config.seed, impl=config.prng_impl) if rng is None else rng
  return jax.jit(model.init)(rng, *_dummy_inputs(config))["params"]


def abstract_params(model, config: ml_collections.ConfigDict) -> PyTree:
  """The parameter tree's shapes and dtypes, without computing anything."""
  return jax.eval_shape(model.init, jax.random.key(0), *_dummy_inputs(config))["params"]


def flatten_params(tree: Mapping[str, Any], sep: str = "/") -> dict[str, Any]:
  """{'a': {'b': x}} -> {'a/b': x}."""
  flat = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    flat[sep.join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)] = leaf
  return flat


def unflatten_params(flat: Mapping[str, Any], sep: str = "/") -> dict[str, Any]:
  """{'a/b': x} -> {'a': {'b': x}}."""
  tree: dict[str, Any] = {}
  for key, value in flat.items():
    node = tree
    *parents, leaf = key.split(sep)
    for name in parents:
      node = node.setdefault(name, {})
    node[leaf] = value
  return tree


class CheckpointMismatchError(UserError):
  """A parameter tree whose keys or shapes do not match the model; `problems` lists every one."""

  def __init__(self, summary: str, problems: list[str]):
    super().__init__(summary + "\n" + "\n".join("  " + p for p in problems))
    self.summary = summary
    self.problems = problems


def compare_param_trees(expected: PyTree, actual: PyTree) -> list[str]:
  """Every missing, unexpected and wrongly shaped key of `actual` against `expected` (shapes)."""
  want, got = flatten_params(expected), flatten_params(actual)
  problems = [f"missing: {k} {tuple(np.shape(want[k]))}" for k in sorted(want.keys() - got.keys())]
  problems += [f"unexpected: {k} {tuple(np.shape(got[k]))}"
               for k in sorted(got.keys() - want.keys())]
  for k in sorted(want.keys() & got.keys()):
    if tuple(np.shape(want[k])) != tuple(np.shape(got[k])):
      problems.append(f"shape mismatch: {k} expected {tuple(np.shape(want[k]))}, "
                      f"got {tuple(np.shape(got[k]))}")
  return problems


def _count_blocks(flat: Mapping[str, Any], level: str) -> Optional[int]:
  """Blocks of one level: `block_<i>` subtrees (unrolled) or the leading axis of `blocks`."""
  indices = {k.split("/")[1] for k in flat if k.startswith(level + "/block_")}
  if indices:
    return len(indices)
  stacked = [v for k, v in flat.items() if k.startswith(level + "/blocks/")]
  return int(np.shape(stacked[0])[0]) if stacked else None


def architecture(tree: PyTree) -> dict[str, Any]:
  """The `config.model` fields a parameter tree's shapes reveal (absent fields are left out):
  what a checkpoint was trained as, to name the config it fits."""
  flat = flatten_params(tree)
  shape = lambda key: tuple(np.shape(flat[key])) if key in flat else None  # noqa: E731
  found: dict[str, Any] = {"use_prompt": any(k.startswith("prompt_encoder/") for k in flat)}
  if shape("patch_embed/kernel"):
    found["dim"] = shape("patch_embed/kernel")[-1]
  if shape("prompt_encoder/conv_first/kernel"):
    found["prompt_encoder_width"] = shape("prompt_encoder/conv_first/kernel")[-1]
  levels = ("encoder_level1", "encoder_level2", "encoder_level3", "latent_blocks")
  blocks = tuple(_count_blocks(flat, level) for level in levels)
  if not found["use_prompt"]:
    blocks = blocks[:3] + (_count_blocks(flat, "latent"),)
  if all(b is not None for b in blocks):
    found["num_blocks"] = blocks
  refinement = _count_blocks(flat, "refinement")
  if refinement is not None:
    found["num_refinement_blocks"] = refinement
  heads = []
  for level in levels[:3] + (levels[3] if found["use_prompt"] else "latent",):
    temperature = [v for k, v in flat.items()
                   if k.startswith(level + "/") and k.endswith("channel_attn/temperature")]
    heads.append(int(np.shape(temperature[0])[-1]) if temperature else None)
  if all(h is not None for h in heads):
    found["heads"] = tuple(heads)
  found["bias"] = any(k.endswith("qkv/bias") for k in flat)
  found["scan_blocks"] = any("/blocks/" in k for k in flat)  # the layout nn.scan gives
  return found


def _architecture_difference(expected: PyTree, actual: PyTree) -> str:
  """"it has model.dim=48, … where the config has 8, …" or "" when the shapes reveal none."""
  want, got = architecture(expected), architecture(actual)
  fields = [k for k in want if k in got and want[k] != got[k]]
  if not fields:
    return ""
  has = ", ".join(f"model.{k}={got[k]}".replace(" ", "") for k in fields)
  config = ", ".join(str(want[k]).replace(" ", "") for k in fields)
  return f"; it has {has} where the config has {config}"


def check_params_match(expected: PyTree, actual: PyTree, what: str) -> None:
  """Raises CheckpointMismatchError listing every problem when `actual` does not fit `expected`;
  its one-line summary names the model fields that differ when the shapes reveal them."""
  problems = compare_param_trees(expected, actual)
  if problems:
    raise CheckpointMismatchError(
        f"{what} does not match the config{_architecture_difference(expected, actual)}: "
        f"{len(problems)} problem(s) (missing/unexpected/shape-mismatched keys listed below)",
        problems)
