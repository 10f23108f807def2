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


def check_params_match(expected: PyTree, actual: PyTree, what: str) -> None:
  """Raises CheckpointMismatchError listing every problem when `actual` does not fit `expected`."""
  problems = compare_param_trees(expected, actual)
  if problems:
    raise CheckpointMismatchError(
        f"{what} does not match the config: {len(problems)} problem(s) "
        f"(missing/unexpected/shape-mismatched keys listed below)", problems)
