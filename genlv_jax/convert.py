"""Convert GenLV / X-Restormer weights between PyTorch files and orbax params checkpoints.

    # the authors' GenLV-101 Huge checkpoint, as downloaded:
    python -m genlv_jax.convert torch-to-jax --config configs/huge.py \
        --input huge-checkpoint-49.pth --output /tmp/huge_params
    python -m genlv_jax.convert torch-to-jax --config configs/xrestormer.py \
        --input xrestormer.pth --output /tmp/xrestormer_params
    python -m genlv_jax.convert jax-to-torch --config configs/base.py \
        --input /tmp/base_params --output base.pth     # {"model": state_dict}, or .safetensors

Inputs: `.pth`/`.pt` (the authors' `{"model": …, "args": Namespace, …}` training checkpoints
and BasicSR layouts, read with weights_only=True) or `.safetensors`. GenLV weights are
converted from the authors' BGR channel order to our RGB and back. The
orbax directory is what `genlv_jax.load_model(config, checkpoint=DIR)` reads. Config fields
can be overridden (`--config.model.prompt_encoder_width=64` for GenLV-30's Huge). A user error
(missing file, a checkpoint that does not match the config, an unsafe pickle) prints one line,
then for a mismatch every offending key, and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from genlv_jax.cli import user_errors_exit
from genlv_jax.config_io import ConfigError, ConfigLike, load_config


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
  to_jax.add_argument("--param-key", default=None,
                      help="entry of a BasicSR .pth to read (default: params_ema, else params)")
  return parser


def torch_to_jax(config: ConfigLike, input_path: str, output_dir: str,
                 param_key: Optional[str] = None) -> None:
  """Converts a PyTorch checkpoint file to an orbax params directory for `config`."""
  from genlv_jax import checkpointing
  from genlv_jax.bridge import load_torch_checkpoint
  config = load_config(config)
  params = load_torch_checkpoint(input_path, config, param_key=param_key)
  checkpointing.save_params(output_dir, params)


def jax_to_torch(config: ConfigLike, input_dir: str, output_path: str) -> None:
  """Converts an orbax params directory of `config` to a `.pth` or `.safetensors` file."""
  from genlv_jax import checkpointing
  from genlv_jax.api import abstract_params
  from genlv_jax.bridge import flax_to_torch, write_torch_file
  from genlv_jax.bridge.torch_io import TorchCheckpointError
  from genlv_jax.models import build_model
  if not output_path.endswith((".pth", ".pt", ".safetensors")):
    raise TorchCheckpointError(f"{output_path}: output must end in .pth, .pt or .safetensors")
  out_dir = os.path.dirname(os.path.abspath(output_path))
  if not os.path.isdir(out_dir):
    raise FileNotFoundError(f"output folder does not exist: {out_dir}")
  config = load_config(config)
  if not checkpointing.is_params_checkpoint(input_dir):
    if not os.path.exists(input_dir):
      raise FileNotFoundError(f"checkpoint not found: {input_dir}")
    raise ConfigError(f"{input_dir} is not an orbax params checkpoint (written by torch-to-jax)")
  model = build_model(config)
  params = checkpointing.restore_params(input_dir, abstract_params(model, config))
  # GenLV: the layout the authors' inference.py loads; X-Restormer: BasicSR's.
  write_torch_file(output_path, flax_to_torch(params, config),
                   wrapper="model" if config.model.use_prompt else "params")


@user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point; 0 on success, 2 with one line (plus the key list of a mismatch) on a user
  mistake (missing file, a checkpoint that does not fit the config, an unsafe pickle)."""
  parser = _parser()
  args, overrides = parser.parse_known_args(argv)
  bad = [o for o in overrides if not o.startswith("--config.")]
  if bad:
    parser.error(f"unrecognised arguments: {' '.join(bad)}")
  config = load_config(args.config, overrides)
  if args.command == "torch-to-jax":
    torch_to_jax(config, args.input, args.output, args.param_key)
  else:
    jax_to_torch(config, args.input, args.output)
  print(f"wrote {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
