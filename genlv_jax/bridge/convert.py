"""Lossless conversion between Flax params (NHWC, HWIO) and PyTorch state dicts (NCHW, OIHW).

Pure functions on dicts of numpy arrays; no torch import. PyTorch names are the authors'
(`chxy95/GenLV`, `XRestormer_Prompt_SpatCrossAttn`) for GenLV and X-Restormer's for
`configs/xrestormer.py`, so their `state_dict`s load with `strict=True` both ways. The
mapping, segment by segment:

    Flax                                    PyTorch
    conv kernel (3, 3, I, O)                weight (O, I, 3, 3)
    depthwise kernel (3, 3, 1, C)           weight (C, 1, 3, 3)          groups=C
    Dense kernel (I, O), a 1x1 conv         weight (O, I, 1, 1)
    Dense kernel (I, O), an nn.Linear       weight (O, I)                to_q, to_k, to_v, to_out
    channel_attn/temperature (h,)           temperature (h, 1, 1)
    <level>/block_<i>/…                     <level>.<i>.…
    <level>/blocks/… (n, …)  (scan)         <level>.<i>.… for i < n
    normN/weight (Restormer's LayerNorm)    normN.body.weight            backbone blocks, and
                                                                         latent norm1, norm2
    normN/weight (nn.LayerNorm)             normN.weight                 prompt encoder, latent
                                                                         norm3-norm5
    spatial_attn/rel_height|rel_width       spatial_attn.rel_pos_emb.rel_height|rel_width
    patch_embed/kernel                      patch_embed.proj.weight
    down1_2/conv/kernel                     down1_2.body.0.weight        (up*_* alike)
    …/to_out/kernel                         ….to_out.0.weight
    prompt_encoder/…                        Prompt_KV_Encoder.prompt_embedding.…
    prompt_encoder/fea_level1/layer_<i>/…   ….fea_level1.<i>.…

Channel order: the authors' GenLV weights expect BGR images (they read with OpenCV and never
flip); our model takes RGB. With `model.checkpoint_channel_order = "bgr"` the input channels
of `patch_embed` and of the prompt encoder's first conv, and the output channels of `output`,
are reversed on the way in and on the way out (the permutation is its own inverse).
Pixel (un)shuffle needs no permutation: the Flax model orders channels as PyTorch does.
Every transform is a transpose, a reshape or a reversal, so both directions are bit-exact.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Mapping

import ml_collections
import numpy as np

from genlv_jax.errors import UserError
from genlv_jax.models import build_model
from genlv_jax.models.params import (CheckpointMismatchError, abstract_params, check_params_match,
                                     flatten_params, unflatten_params)

PyTree = Any

_LEVEL_BLOCK = re.compile(r"^([^/]+)/block_(\d+)/(.+)$")
_LEVEL_SCAN = re.compile(r"^([^/]+)/blocks/(.+)$")
_INDEXED = re.compile(r"^(?:block|layer)_(\d+)$")
_NORM = re.compile(r"^norm\d*$")
_LINEAR = ("to_q", "to_k", "to_v", "to_out")
# nn.LayerNorm (no `.body`) in the latent block; norm1/norm2 there are Restormer's.
_LATENT_PLAIN_NORMS = ("norm3", "norm4", "norm5")
PROMPT_ENCODER_TORCH = "Prompt_KV_Encoder.prompt_embedding"
# The three places where the channel order of images enters or leaves the network:
# (PyTorch name, axis of the colour channels).
_COLOUR_AXES = (("patch_embed.proj.weight", 1), (f"{PROMPT_ENCODER_TORCH}.conv_first.weight", 1),
                ("output.weight", 0), ("output.bias", 0))


# ----------------------------------------------------------------------------- names and leaves


def _plain_layer_norm(parts: list[str]) -> bool:
  """True where the authors use `nn.LayerNorm` (params not under `.body`)."""
  return parts[0] == "prompt_encoder" or (parts[0] == "latent_blocks"
                                          and parts[-2] in _LATENT_PLAIN_NORMS)


def torch_name(flax_key: str) -> str:
  """The PyTorch parameter name of an unrolled Flax key such as `latent_blocks/block_0/norm1/weight`."""
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
      elif _NORM.match(parent) and part in ("weight", "bias") and not _plain_layer_norm(parts):
        part = "body." + part
    elif i == 0 and part == "prompt_encoder":
      part = PROMPT_ENCODER_TORCH
    elif i == 0 and part == "patch_embed":
      part = "patch_embed.proj"
    elif (m := _INDEXED.match(part)):
      part = m.group(1)
    elif part == "conv" and re.fullmatch(r"(down|up)\d_\d", parent):
      part = "body.0"
    elif part == "to_out":
      part = "to_out.0"
    out.append(part)
  return ".".join(out)


def _leaf_kind(flax_key: str, ndim: int) -> str:
  parts = flax_key.rsplit("/", 2)
  leaf, parent = parts[-1], parts[-2] if len(parts) > 1 else ""
  if leaf == "kernel":
    if ndim == 4:
      return "conv"
    return "linear" if parent in _LINEAR else "pointwise"
  if leaf == "temperature":
    return "temperature"
  return "identity"


def flax_leaf_to_torch(flax_key: str, value: np.ndarray) -> np.ndarray:
  """One Flax array in PyTorch layout (HWIO->OIHW, Dense (I,O)->(O,I[,1,1]), (h,)->(h,1,1))."""
  value = np.asarray(value)
  kind = _leaf_kind(flax_key, value.ndim)
  if kind == "conv":
    return np.ascontiguousarray(value.transpose(3, 2, 0, 1))
  if kind == "pointwise":
    return np.ascontiguousarray(value.T)[:, :, None, None]
  if kind == "linear":
    return np.ascontiguousarray(value.T)
  if kind == "temperature":
    return value.reshape(-1, 1, 1)
  return value


def torch_leaf_to_flax(flax_key: str, value: np.ndarray, flax_ndim: int) -> np.ndarray:
  """The inverse of `flax_leaf_to_torch` for the Flax leaf `flax_key` of rank `flax_ndim`."""
  value = np.asarray(value)
  kind = _leaf_kind(flax_key, flax_ndim)
  if kind == "conv":
    return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
  if kind in ("pointwise", "linear"):
    return np.ascontiguousarray(value.reshape(value.shape[0], value.shape[1]).T)
  if kind == "temperature":
    return value.reshape(-1)
  return value


def _torch_shape(flax_key: str, shape: tuple) -> tuple:
  kind = _leaf_kind(flax_key, len(shape))
  if kind == "conv":
    return (shape[3], shape[2], shape[0], shape[1])
  if kind == "pointwise":
    return (shape[1], shape[0], 1, 1)
  if kind == "linear":
    return (shape[1], shape[0])
  if kind == "temperature":
    return (shape[0], 1, 1)
  return tuple(shape)


def rename_flax_to_torch(flat_params: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """Unrolled flat Flax params (`a/b/kernel`) -> a PyTorch state dict, with no config check.

  Names depend on the full path (which norms are `nn.LayerNorm`), so a component's params are
  renamed under their place in the model; `component_state_dict` does that for one block.
  """
  return {torch_name(k): flax_leaf_to_torch(k, v) for k, v in flat_params.items()}


def component_state_dict(flat_params: Mapping[str, Any], flax_prefix: str) -> dict[str, np.ndarray]:
  """The PyTorch state dict of one component (e.g. one latent block) whose flat Flax params
  sit at `flax_prefix` in the model (e.g. "latent_blocks/block_0"); names are relative."""
  renamed = rename_flax_to_torch({f"{flax_prefix}/{k}": v for k, v in flat_params.items()})
  torch_prefix = torch_name(f"{flax_prefix}/x").rsplit(".", 1)[0] + "."
  return {k[len(torch_prefix):]: v for k, v in renamed.items()}


def rename_torch_to_flax(state_dict: Mapping[str, Any], flax_shapes: Mapping[str, tuple]
                         ) -> dict[str, np.ndarray]:
  """A PyTorch state dict -> flat unrolled Flax params whose keys/ranks are `flax_shapes`'."""
  by_torch = {torch_name(k): k for k in flax_shapes}
  return {by_torch[name]: torch_leaf_to_flax(by_torch[name], v, len(flax_shapes[by_torch[name]]))
          for name, v in state_dict.items()}


def reverse_colour_channels(state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """BGR <-> RGB for the layers that read or write image channels (its own inverse)."""
  out = dict(state_dict)
  for name, axis in _COLOUR_AXES:
    if name in out:
      out[name] = np.ascontiguousarray(np.flip(np.asarray(out[name]), axis=axis))
  return out


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
  flat = flatten_params(abstract)
  return tuple((k, tuple(v.shape)) for k, v in flat.items())


def flax_shapes(config: Any) -> dict[str, tuple]:
  """Unrolled flat Flax key -> shape for the model of `config` (no arrays are allocated)."""
  return dict(_unrolled_shapes_cached(_model_cache_key(config)))


def torch_shapes(config: Any) -> dict[str, tuple]:
  """The PyTorch state dict's names and shapes that `config` expects."""
  return {torch_name(k): _torch_shape(k, s) for k, s in flax_shapes(config).items()}


def _check_prompt_encoder_width(state_dict: Mapping[str, Any], config: Any) -> None:
  """The authors ship two prompt encoder widths (32: GenLV-101, 64: GenLV-30); a checkpoint of
  the other width is one config field away, so say which instead of listing every key."""
  if not config.model.use_prompt:
    return
  first = state_dict.get(f"{PROMPT_ENCODER_TORCH}.conv_first.weight")
  width, expected = (None if first is None else np.shape(first)[0]), config.model.prompt_encoder_width
  if width is not None and width != expected:
    raise CheckpointMismatchError(
        f"the checkpoint's prompt encoder has width {width}, the config's {expected}: add "
        f"--config.model.prompt_encoder_width={width}", [])


def check_state_dict(state_dict: Mapping[str, Any], config: Any,
                     what: str = "PyTorch checkpoint") -> None:
  """Raises CheckpointMismatchError listing every missing, unexpected and misshaped key."""
  _check_prompt_encoder_width(state_dict, config)
  expected = {k: _ShapeOnly(s) for k, s in torch_shapes(config).items()}
  got = {k: _ShapeOnly(np.shape(v)) for k, v in state_dict.items()}
  check_params_match(expected, got, what)


class _ShapeOnly:
  """A pytree leaf that only carries a shape (np.shape reads `.shape`): checks allocate nothing."""

  def __init__(self, shape):
    self.shape = tuple(shape)


def _bgr(config: Any) -> bool:
  order = config.model.get("checkpoint_channel_order", "rgb")
  if order not in ("rgb", "bgr"):
    raise UserError(f"model.checkpoint_channel_order must be 'rgb' or 'bgr', got {order!r}")
  return order == "bgr"


def torch_to_flax(state_dict: Mapping[str, Any], config: Any) -> PyTree:
  """A PyTorch state dict (name -> numpy array) -> the Flax params pytree of `config`.

  Strict: any missing, unexpected or wrongly shaped key raises CheckpointMismatchError with
  the full list. Arrays come back as float32 numpy arrays, stacked per level when
  `config.model.scan_blocks`; colour channels reversed for a "bgr" checkpoint.
  """
  check_state_dict(state_dict, config)
  if _bgr(config):
    state_dict = reverse_colour_channels(state_dict)
  flat = {k: v.astype(np.float32, copy=False)
          for k, v in rename_torch_to_flax(state_dict, flax_shapes(config)).items()}
  if config.model.scan_blocks:
    flat = stack_blocks(flat)
  return unflatten_params(flat)


def flax_to_torch(params: PyTree, config: Any) -> dict[str, np.ndarray]:
  """The Flax params of `config` (unrolled or scan-stacked) -> a PyTorch state dict (numpy),
  in the checkpoint's channel order. The tree is checked against the config first."""
  flat = unstack_blocks({k: np.asarray(v) for k, v in
                         flatten_params(params).items()})
  expected = {k: _ShapeOnly(s) for k, s in flax_shapes(config).items()}
  check_params_match(expected, {k: _ShapeOnly(v.shape) for k, v in flat.items()},
                                   "Flax params")
  state_dict = rename_flax_to_torch(flat)
  return reverse_colour_channels(state_dict) if _bgr(config) else state_dict
