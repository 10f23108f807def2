"""Reading and writing PyTorch checkpoints (`.pth` / `.pt` / `.safetensors`) as numpy state dicts.

`.pth` files are read with `torch.load(weights_only=True)`: PyTorch's restricted unpickler
accepts tensors, dicts, lists and numbers and refuses any other global, so a pickle whose
`__reduce__` would run code is rejected *before* anything runs (`UnsafeCheckpointError`).

Layouts recognised:
- the GenLV authors' MAE-style training checkpoint `{'model': sd, 'optimizer': …, 'epoch': …,
  'scaler': …, 'args': argparse.Namespace}` (their `inference.py` reads `['model']`).
  `argparse.Namespace` is the one global added to the safe unpickler: it only carries
  attributes, so allowing it cannot run code;
- BasicSR's `{'params': sd}`, `{'params_ema': sd}`, both (then `params_ema` is taken: it holds
  the EMA weights BasicSR evaluates and releases, as with `param_key_g: params_ema` in its
  test options; pass `param_key='params'` for the raw ones), `{'state_dict': sd}`;
- a bare state dict. A `module.` prefix (DataParallel) is stripped.
Floating tensors of any precision come back as float32 numpy arrays (the params dtype policy).
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
from typing import Any, Mapping, Optional

import numpy as np
from absl import logging

from genlv_jax.bridge import convert
from genlv_jax.errors import PathNotFoundError, UserError

PyTree = Any

_PTH_SUFFIXES = (".pth", ".pt")
_SAFETENSORS_SUFFIX = ".safetensors"
# Preference order of the BasicSR-style wrappers (see the module docstring).
PARAM_KEYS = ("model", "params_ema", "params", "state_dict")
# How `write_torch_file` wraps the state dict: the authors' GenLV layout, or BasicSR's.
WRAPPERS = ("model", "params")


class TorchCheckpointError(UserError):
  """A PyTorch checkpoint file that cannot be used (unreadable, unsupported layout)."""


class UnsafeCheckpointError(TorchCheckpointError):
  """A `.pth` whose pickle refers to code (it was refused, nothing was executed)."""


def _require_file(path: str) -> None:
  if not os.path.isfile(path):
    raise PathNotFoundError(f"checkpoint not found: {path}")


def _to_numpy(tensor: Any) -> np.ndarray:
  import torch
  if not isinstance(tensor, torch.Tensor):
    raise TorchCheckpointError(f"expected a tensor, got {type(tensor).__name__}")
  tensor = tensor.detach().cpu()
  if tensor.is_floating_point():
    tensor = tensor.float()  # bfloat16/float16 have no (portable) numpy form
  return tensor.numpy()


def select_state_dict(obj: Any, param_key: Optional[str] = None, path: str = "checkpoint"
                      ) -> tuple[dict, str]:
  """Picks the state dict out of a loaded BasicSR-style object; returns (state_dict, key used)."""
  if not isinstance(obj, Mapping):
    raise TorchCheckpointError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
  if param_key is not None:
    if param_key not in obj:
      raise TorchCheckpointError(f"{path}: no {param_key!r} entry (has: {sorted(obj)[:8]})")
    return dict(obj[param_key]), param_key
  for key in PARAM_KEYS:
    if key in obj and isinstance(obj[key], Mapping):
      return dict(obj[key]), key
  return dict(obj), ""


def strip_module_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """Drops the `module.` prefix that (Distributed)DataParallel adds to every name."""
  return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}


def read_torch_file(path: str | os.PathLike, param_key: Optional[str] = None
                    ) -> dict[str, np.ndarray]:
  """A `.pth`/`.pt`/`.safetensors` file -> {name: float32 numpy array} (see module docstring).

  Raises FileNotFoundError, UnsafeCheckpointError (a pickle that would run code; nothing is
  run) or TorchCheckpointError (corrupt file, unknown layout).
  """
  path = os.fspath(path)
  _require_file(path)
  if path.endswith(_SAFETENSORS_SUFFIX):
    state_dict, used = _read_safetensors(path), ""
  elif path.endswith(_PTH_SUFFIXES):
    raw, used = select_state_dict(_load_pickle_safely(path), param_key, path)
    state_dict = {k: _to_numpy(v) for k, v in raw.items()}
  else:
    raise TorchCheckpointError(f"{path}: not a .pth, .pt or .safetensors file")
  logging.info("read %d tensors from %s%s", len(state_dict), path,
               f" (entry {used!r})" if used else "")
  return strip_module_prefix(state_dict)


def _load_pickle_safely(path: str) -> Any:
  import torch
  try:
    with torch.serialization.safe_globals([argparse.Namespace]):
      return torch.load(path, map_location="cpu", weights_only=True)
  except pickle.UnpicklingError as e:
    # torch's restricted unpickler stopped before running anything: name what it refused.
    message = str(e)
    culprit = re.search(r"GLOBAL ([\w.]+)", message)
    if culprit:
      reason = f"the pickle refers to {culprit.group(1)}, which could run code"
    else:
      detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", message)
      reason = f"not a plain weights pickle ({detail.group(1).strip() if detail else 'unreadable'})"
    raise UnsafeCheckpointError(
        f"{path}: refused by weights_only loading: {reason}; nothing was executed") from None
  except (RuntimeError, EOFError, OSError, ValueError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise TorchCheckpointError(f"{path}: cannot read as a PyTorch checkpoint: {first}") from None


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
  from safetensors import SafetensorError
  from safetensors.torch import load_file
  try:
    tensors = load_file(path, device="cpu")
  except (SafetensorError, OSError, ValueError) as e:
    raise TorchCheckpointError(f"{path}: cannot read as safetensors: {e}") from None
  return {k: _to_numpy(v) for k, v in tensors.items()}


def write_torch_file(path: str | os.PathLike, state_dict: Mapping[str, np.ndarray],
                     wrapper: str = "model") -> None:
  """Writes a numpy state dict as `.safetensors`, or as `.pth` wrapped as `{wrapper: sd}`:
  "model" is what the GenLV authors' `inference.py` loads, "params" is BasicSR's layout."""
  import torch
  if wrapper not in WRAPPERS:
    raise ValueError(f"wrapper must be one of {WRAPPERS}, got {wrapper!r}")
  path = os.fspath(path)
  # Arrays that come from jax are read-only views; torch tensors must own writable memory.
  tensors = {k: torch.from_numpy(np.array(v, order="C", copy=True))
             for k, v in state_dict.items()}
  if path.endswith(_SAFETENSORS_SUFFIX):
    from safetensors.torch import save_file
    save_file(tensors, path)
  elif path.endswith(_PTH_SUFFIXES):
    torch.save({wrapper: tensors}, path)
  else:
    raise TorchCheckpointError(f"{path}: output must end in .pth, .pt or .safetensors")
  logging.info("wrote %d tensors to %s", len(tensors), path)


def load_torch_checkpoint(path: str | os.PathLike, config: Any, *,
                          param_key: Optional[str] = None) -> PyTree:
  """A PyTorch checkpoint file -> the Flax params of `config` (float32 numpy leaves).

  What `genlv_jax.load_model(config, checkpoint="x.pth")` calls. Strict (see
  `convert.torch_to_flax`), with the colour channels of a BGR checkpoint permuted to RGB.
  """
  from genlv_jax.config_io import load_config
  config = load_config(config)
  return convert.torch_to_flax(read_torch_file(path, param_key), config)
