"""Convert GenLV / X-Restormer weights between PyTorch files and orbax params checkpoints.

    python -m genlv_jax.convert torch-to-jax --config configs/xrestormer.py \
        --input xrestormer.pth --output /tmp/xrestormer_params
    python -m genlv_jax.convert jax-to-torch --config configs/base.py \
        --input /tmp/base_params --output base.safetensors     # or base.pth
    # an X-Restormer checkpoint as the backbone of GenLV-Base (prompt parts freshly initialised):
    python -m genlv_jax.convert torch-to-jax --config configs/base.py --backbone-only \
        --input xrestormer.pth --output /tmp/base_from_xrestormer

Inputs: `.pth`/`.pt` (BasicSR layouts, read with weights_only=True) or `.safetensors`. The
orbax directory is what `genlv_jax.load_model(config, checkpoint=DIR)` reads. A user error
(missing file, a checkpoint that does not match the config, an unsafe pickle) prints one line,
then for a mismatch every offending key, and exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from genlv_jax.config_io import ConfigError


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m genlv_jax.convert", description=__doc__.split("\n\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  to_jax = sub.add_parser("torch-to-jax", help=".pth/.safetensors -> orbax params directory")
  to_torch = sub.add_parser("jax-to-torch", help="orbax params directory -> .pth/.safetensors")
  for p in (to_jax, to_torch):
    p.add_argument("--config", required=True, help="config file, e.g. configs/base.py[:arg]")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
  to_jax.add_argument("--backbone-only", action="store_true",
                      help="load an X-Restormer checkpoint into a GenLV config's backbone; the "
                           "prompt encoder and prompt attention are initialised from config.seed")
  to_jax.add_argument("--param-key", default=None,
                      help="entry of a BasicSR .pth to read (default: params_ema, else params)")
  return parser


def torch_to_jax(config_path: str, input_path: str, output_dir: str, backbone_only: bool = False,
                 param_key: Optional[str] = None) -> None:
  """Converts a PyTorch checkpoint file to an orbax params directory for `config_path`."""
  from genlv_jax import checkpointing
  from genlv_jax.bridge import load_torch_checkpoint
  from genlv_jax.config_io import load_config
  config = load_config(config_path)
  params = load_torch_checkpoint(input_path, config, backbone_only=backbone_only,
                                 param_key=param_key)
  checkpointing.save_params(output_dir, params)


def jax_to_torch(config_path: str, input_dir: str, output_path: str) -> None:
  """Converts an orbax params directory of `config_path` to a `.pth` or `.safetensors` file."""
  from genlv_jax import checkpointing
  from genlv_jax.api import abstract_params
  from genlv_jax.bridge import flax_to_torch, write_torch_file
  from genlv_jax.bridge.torch_io import TorchCheckpointError
  from genlv_jax.config_io import load_config
  from genlv_jax.models import build_model
  if not output_path.endswith((".pth", ".pt", ".safetensors")):
    raise TorchCheckpointError(f"{output_path}: output must end in .pth, .pt or .safetensors")
  config = load_config(config_path)
  if not checkpointing.is_params_checkpoint(input_dir):
    if not os.path.exists(input_dir):
      raise FileNotFoundError(f"checkpoint not found: {input_dir}")
    raise ConfigError(f"{input_dir} is not an orbax params checkpoint (written by torch-to-jax)")
  model = build_model(config)
  params = checkpointing.restore_params(input_dir, abstract_params(model, config))
  write_torch_file(output_path, flax_to_torch(params, config))


def _user_errors() -> tuple:
  from genlv_jax.bridge.torch_io import TorchCheckpointError
  from genlv_jax.checkpointing import CheckpointMismatchError
  return (FileNotFoundError, ConfigError, CheckpointMismatchError, TorchCheckpointError)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point; returns the exit status (0 ok, 1 user error, 2 bad arguments)."""
  args = _parser().parse_args(argv)
  try:
    if args.command == "torch-to-jax":
      torch_to_jax(args.config, args.input, args.output, args.backbone_only, args.param_key)
    else:
      jax_to_torch(args.config, args.input, args.output)
  except _user_errors() as e:
    summary = getattr(e, "summary", None) or str(e).splitlines()[0]
    print(f"error: {summary}", file=sys.stderr)
    for problem in getattr(e, "problems", ()):
      print(f"  {problem}", file=sys.stderr)
    return 1
  print(f"wrote {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
