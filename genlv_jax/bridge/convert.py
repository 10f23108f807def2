"""Lossless conversion between Flax params (NHWC, HWIO) and PyTorch state dicts (NCHW, OIHW).

Pure functions on dicts of numpy arrays; no torch import. The mapping, leaf by leaf:

    Flax                                   PyTorch
    conv kernel (3, 3, I, O)               weight (O, I, 3, 3)          patch_embed, output, …
    depthwise kernel (3, 3, 1, C)          weight (C, 1, 3, 3)          groups=C
    Dense kernel (I, O)                    weight (O, I, 1, 1)          every 1x1 conv
    channel_attn/temperature (h,)          temperature (h, 1, 1)
    normN/weight, normN/bias               normN.body.weight, .body.bias
    spatial_attn/rel_height|rel_width      spatial_attn.rel_pos_emb.rel_height|rel_width
    patch_embed/kernel                     patch_embed.proj.weight
    down1_2/conv/kernel                    down1_2.body.0.weight         (up*_* alike)
    <level>/block_<i>/…                    <level>.<i>.…
    <level>/blocks/… (n, …)  (scan)        <level>.<i>.… for i < n
    prompt_encoder/level<L>_block_<i>/…    prompt_encoder.level<L>.<i>.…

Pixel (un)shuffle needs no permutation: the Flax model orders channels as PyTorch does.
Every transform is a transpose or a reshape, so both directions are bit-exact.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Mapping, Optional

import jax
import ml_collections
import numpy as np

from genlv_jax import checkpointing
from genlv_jax.api import abstract_params, init_params
from genlv_jax.models import build_model

PyTree = Any

_LEVEL_BLOCK = re.compile(r"^([^/]+)/block_(\d+)/(.+)$")
_LEVEL_SCAN = re.compile(r"^([^/]+)/blocks/(.+)$")
_PROMPT_LEVEL_BLOCK = re.compile(r"^level(\d+)_block_(\d+)$")
_NORM = re.compile(r"^norm(\d+|_prompt)$")


# ----------------------------------------------------------------------------- names and leaves


def torch_name(flax_key: str) -> str:
  """The PyTorch parameter name of an (unrolled) Flax key such as `latent/block_0/norm1/weight`.

  Segment rules only, so it also maps the params of a single block or of the prompt encoder.
  """
  parts = flax_key.split("/")
  out = []
  for i, part in enumerate(parts):
    leaf = i == len(parts) - 1
    parent = parts[i - 1] if i else ""
    if leaf:
      if part == "kernel":
        part = "weight"
      elif part in ("rel_height", "rel_width"):
        part = "rel_pos_emb." + part
      elif _NORM.match(parent) and part in ("weight", "bias"):
        part = "body." + part
    elif re.fullmatch(r"block_(\d+)", part):
      part = part[len("block_"):]
    elif (m := _PROMPT_LEVEL_BLOCK.match(part)):
      part = f"level{m.group(1)}.{m.group(2)}"
    elif part == "conv" and re.fullmatch(r"(down|up)\d_\d", parent):
      part = "body.0"
    elif part == "patch_embed" and i == 0:
      part = "patch_embed.proj"
    out.append(part)
  return ".".join(out)


def _leaf_kind(flax_key: str, ndim: int) -> str:
  leaf = flax_key.rsplit("/", 1)[-1]
  if leaf == "kernel":
    return "conv" if ndim == 4 else "dense"
  if leaf == "temperature":
    return "temperature"
  return "identity"


def flax_leaf_to_torch(flax_key: str, value: np.ndarray) -> np.ndarray:
  """One Flax array in PyTorch layout (HWIO->OIHW, Dense (I,O)->(O,I,1,1), (h,)->(h,1,1))."""
  value = np.asarray(value)
  kind = _leaf_kind(flax_key, value.ndim)
  if kind == "conv":
    return np.ascontiguousarray(value.transpose(3, 2, 0, 1))
  if kind == "dense":
    return np.ascontiguousarray(value.T)[:, :, None, None]
  if kind == "temperature":
    return value.reshape(-1, 1, 1)
  return value


def torch_leaf_to_flax(flax_key: str, value: np.ndarray, flax_ndim: int) -> np.ndarray:
  """The inverse of `flax_leaf_to_torch` for the Flax leaf `flax_key` of rank `flax_ndim`."""
  value = np.asarray(value)
  kind = _leaf_kind(flax_key, flax_ndim)
  if kind == "conv":
    return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
  if kind == "dense":
    return np.ascontiguousarray(value.reshape(value.shape[0], value.shape[1]).T)
  if kind == "temperature":
    return value.reshape(-1)
  return value


def _torch_shape(flax_key: str, shape: tuple) -> tuple:
  kind = _leaf_kind(flax_key, len(shape))
  if kind == "conv":
    return (shape[3], shape[2], shape[0], shape[1])
  if kind == "dense":
    return (shape[1], shape[0], 1, 1)
  if kind == "temperature":
    return (shape[0], 1, 1)
  return tuple(shape)


def rename_flax_to_torch(flat_params: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """Unrolled flat Flax params (`a/b/kernel`) -> a PyTorch state dict, with no config check.

  Works on any sub-tree (one block, the prompt encoder), which is what the per-component parity
  tests use; `flax_to_torch` is the checked whole-model version.
  """
  return {torch_name(k): flax_leaf_to_torch(k, v) for k, v in flat_params.items()}


def rename_torch_to_flax(state_dict: Mapping[str, Any], flax_shapes: Mapping[str, tuple]
                         ) -> dict[str, np.ndarray]:
  """A PyTorch state dict -> flat unrolled Flax params whose keys/ranks are `flax_shapes`'."""
  by_torch = {torch_name(k): k for k in flax_shapes}
  return {by_torch[name]: torch_leaf_to_flax(by_torch[name], v, len(flax_shapes[by_torch[name]]))
          for name, v in state_dict.items()}


# ----------------------------------------------------------------------------- scan layout


def unstack_blocks(flat_params: Mapping[str, Any]) -> dict[str, Any]:
  """`<level>/blocks/…` leaves with a leading block axis -> `<level>/block_<i>/…` leaves."""
  out = {}
  for key, value in flat_params.items():
    m = _LEVEL_SCAN.match(key)
    if not m:
      out[key] = value
      continue
    value = np.asarray(value)
    for i in range(value.shape[0]):
      out[f"{m.group(1)}/block_{i}/{m.group(2)}"] = value[i]
  return out


def stack_blocks(flat_params: Mapping[str, Any]) -> dict[str, Any]:
  """The inverse of `unstack_blocks`: `<level>/block_<i>/…` -> `<level>/blocks/…` (stacked)."""
  out, groups = {}, {}
  for key, value in flat_params.items():
    m = _LEVEL_BLOCK.match(key)
    if m:
      groups.setdefault(f"{m.group(1)}/blocks/{m.group(3)}", {})[int(m.group(2))] = value
    else:
      out[key] = value
  for key, members in groups.items():
    out[key] = np.stack([np.asarray(members[i]) for i in sorted(members)])
  return out


# ----------------------------------------------------------------------------- config-aware


def _model_cache_key(config: Any) -> str:
  return config.model.to_json_best_effort(sort_keys=True)


@functools.lru_cache(maxsize=16)
def _unrolled_shapes_cached(model_json: str) -> tuple:
  # Keyed on the model section only: dtype, remat and the data settings do not change params.
  config = ml_collections.ConfigDict({"model": json.loads(model_json), "dtype": "float32",
                                      "remat": False})
  config.model.scan_blocks = False  # the unrolled layout is the one that names map onto
  abstract = abstract_params(build_model(config), config)
  flat = checkpointing.flatten_params(abstract)
  return tuple((k, tuple(v.shape)) for k, v in flat.items())


def flax_shapes(config: Any) -> dict[str, tuple]:
  """Unrolled flat Flax key -> shape for the model of `config` (no arrays are allocated)."""
  return dict(_unrolled_shapes_cached(_model_cache_key(config)))


def is_prompt_key(flax_key: str) -> bool:
  """True for the prompt encoder and the latent blocks' prompt cross-attention (not backbone)."""
  return (flax_key.startswith("prompt_encoder/") or "/norm_prompt/" in flax_key
          or "/prompt_attn/" in flax_key)


def torch_shapes(config: Any, backbone_only: bool = False) -> dict[str, tuple]:
  """The PyTorch state dict's names and shapes that `config` expects."""
  return {torch_name(k): _torch_shape(k, s) for k, s in flax_shapes(config).items()
          if not (backbone_only and is_prompt_key(k))}


def check_state_dict(state_dict: Mapping[str, Any], config: Any, backbone_only: bool = False,
                     what: str = "PyTorch checkpoint") -> None:
  """Raises CheckpointMismatchError listing every missing, unexpected and misshaped key."""
  expected = {k: _ShapeOnly(s) for k, s in torch_shapes(config, backbone_only).items()}
  got = {k: _ShapeOnly(np.shape(v)) for k, v in state_dict.items()}
  checkpointing.check_params_match(expected, got, what)


class _ShapeOnly:
  """A pytree leaf that only carries a shape (np.shape reads `.shape`): checks allocate nothing."""

  def __init__(self, shape):
    self.shape = tuple(shape)


def torch_to_flax(state_dict: Mapping[str, Any], config: Any, *, backbone_only: bool = False,
                  init_params: Optional[PyTree] = None, rng: Optional[jax.Array] = None
                  ) -> PyTree:
  """A PyTorch state dict (name -> numpy array) -> the Flax params pytree of `config`.

  Strict: any missing, unexpected or wrongly shaped key raises CheckpointMismatchError with
  the full list. `backbone_only=True` loads an X-Restormer checkpoint into a GenLV config: the
  file must hold exactly the backbone's keys, and the prompt encoder and prompt cross-attention
  come from `init_params` (a params tree of this config) or, when that is None, from a fresh
  initialisation with `rng` (default: `jax.random.key(config.seed)`).
  Arrays come back as float32 numpy arrays, stacked per level when `config.model.scan_blocks`.
  """
  check_state_dict(state_dict, config, backbone_only)
  shapes = flax_shapes(config)
  flat = {k: v.astype(np.float32, copy=False)
          for k, v in rename_torch_to_flax(state_dict, shapes).items()}
  if backbone_only:
    fresh = init_params if init_params is not None else _fresh_params(config, rng)
    fresh = unstack_blocks(checkpointing.flatten_params(fresh))
    flat.update({k: np.asarray(v, np.float32) for k, v in fresh.items() if is_prompt_key(k)})
  if config.model.scan_blocks:
    flat = stack_blocks(flat)
  return checkpointing.unflatten_params(flat)


def _fresh_params(config: Any, rng: Optional[jax.Array]) -> PyTree:
  return init_params(build_model(config), config, rng)


def flax_to_torch(params: PyTree, config: Any) -> dict[str, np.ndarray]:
  """The Flax params of `config` (unrolled or scan-stacked) -> a PyTorch state dict (numpy).

  The tree is checked against the config first (CheckpointMismatchError lists the problems).
  """
  flat = unstack_blocks({k: np.asarray(v) for k, v in
                         checkpointing.flatten_params(params).items()})
  expected = {k: _ShapeOnly(s) for k, s in flax_shapes(config).items()}
  checkpointing.check_params_match(expected, {k: _ShapeOnly(v.shape) for k, v in flat.items()},
                                   "Flax params")
  return rename_flax_to_torch(flat)
