"""The PyTorch bridge: a PyTorch reference GenLV and lossless weight conversion both ways.

The only part of genlv_jax that uses torch, and only when called: the converters work on numpy
dicts, file I/O imports torch inside its functions, and `build_torch_model` (which needs torch
at import) is loaded on first access.

    from genlv_jax.bridge import load_torch_checkpoint, torch_to_flax, flax_to_torch
    params = load_torch_checkpoint("xrestormer.pth", "configs/xrestormer.py")
"""

from __future__ import annotations

from typing import Any

from genlv_jax.bridge.convert import (check_state_dict, flax_to_torch, rename_flax_to_torch,
                                      stack_blocks, torch_to_flax, unstack_blocks)
from genlv_jax.bridge.torch_io import (TorchCheckpointError, UnsafeCheckpointError,
                                       load_torch_checkpoint, read_torch_file, write_torch_file)

__all__ = [
    "TorchCheckpointError", "UnsafeCheckpointError", "build_torch_model", "check_state_dict",
    "flax_to_torch", "load_torch_checkpoint", "read_torch_file", "rename_flax_to_torch",
    "stack_blocks", "torch_to_flax", "unstack_blocks", "write_torch_file",
]


def __getattr__(name: str) -> Any:
  # torch_reference imports torch at module level: load it only when asked for.
  if name == "build_torch_model":
    from genlv_jax.bridge.torch_reference import build_torch_model
    return build_torch_model
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
