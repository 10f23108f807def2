"""Two layouts of one model's params: unrolled (`<level>/block_<i>/…`) and scanned
(`<level>/blocks/…` with a leading block axis). `nn.scan` changes the layout, not the function."""

from __future__ import annotations

import re
from typing import Any, Mapping

import jax
import numpy as np

PyTree = Any
_BLOCK = re.compile(r"block_(\d+)$")


def _is_unrolled_level(node: Any) -> bool:
  return isinstance(node, Mapping) and bool(node) and all(_BLOCK.match(k) for k in node)


def unrolled_to_scanned(params: PyTree) -> PyTree:
  """Stacks every `block_0 … block_{n-1}` group into one `blocks` subtree (axis 0)."""
  if not isinstance(params, Mapping):
    return params
  if _is_unrolled_level(params):
    blocks = [params[f"block_{i}"] for i in range(len(params))]
    return {"blocks": jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *blocks)}
  return {k: unrolled_to_scanned(v) for k, v in params.items()}


def scanned_to_unrolled(params: PyTree) -> PyTree:
  """Splits every `blocks` subtree along axis 0 into `block_0 … block_{n-1}`."""
  if not isinstance(params, Mapping):
    return params
  if set(params) == {"blocks"}:
    stacked = params["blocks"]
    n = jax.tree.leaves(stacked)[0].shape[0]
    return {f"block_{i}": jax.tree.map(lambda x, i=i: np.asarray(x)[i], stacked) for i in range(n)}
  return {k: scanned_to_unrolled(v) for k, v in params.items()}
