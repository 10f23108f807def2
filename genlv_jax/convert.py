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
(missing file, a checkpoint that does not match the config, an unsafe pickle, an output that
cannot be written) prints one line, then for a mismatch every offending key, and exits with
status 2.

The input and the output location are checked before anything is read or converted: missing
parent folders of `--output` are created, a location that cannot be written is refused, and
torch-to-jax never replaces an existing folder unless it is a params checkpoint (orbax would
delete whatever it holds).
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from genlv_jax import api, cli
from genlv_jax.config_io import load_config
from genlv_jax.data import image_io
from genlv_jax.errors import PathNotFoundError, UserError
from genlv_jax.training import checkpointing


def _parser() -> cli.Parser:
  parser = cli.Parser(prog="python -m genlv_jax.convert", description=__doc__.split("\n\n")[0])
  sub = parser.add_subparsers(dest="command", required=True, parser_class=cli.Parser)
  to_jax = sub.add_parser("torch-to-jax", help=".pth/.safetensors -> orbax params directory")
  to_torch = sub.add_parser("jax-to-torch", help="orbax params directory, training or "
                                                  "fine-tuning workdir -> .pth/.safetensors")
  to_jax.add_argument("--config", required=True, help="config file, e.g. configs/base.py[:arg]")
  to_torch.add_argument("--config", help="config file; default for a training workdir --input: "
                                         "the config it recorded")
  for p in (to_jax, to_torch):
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
  to_jax.add_argument("--param-key", default=None,
                      help="entry of a BasicSR .pth to read (default: params_ema, else params)")
  return parser


def check_torch_to_jax(input_path: str, output_dir: str) -> None:
  """Before any reading: the PyTorch file exists, and `output_dir` can become a params folder
  (its parent created and writable; not a file; not a folder of other things, which orbax's
  overwrite would delete)."""
  if not os.path.exists(input_path):
    raise PathNotFoundError(f"checkpoint not found: {input_path}")
  if os.path.isdir(input_path):
    raise UserError(f"--input {input_path} is a folder; torch-to-jax reads a .pth, .pt or "
                    ".safetensors file (jax-to-torch reads params folders)")
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise UserError(f"--output {output_dir} is a file; torch-to-jax writes an orbax params "
                    "folder")
  checkpointing.check_params_destination(output_dir, "--output")
  image_io.prepare_output_dir(os.path.dirname(os.path.abspath(output_dir)), "--output",
                              output_dir)


def check_jax_to_torch(input_dir: str, output_path: str) -> checkpointing.CheckpointRef:
  """Before any reading: the input is an orbax checkpoint of a kind `resolve_checkpoint` knows
  (params folder, training or fine-tuning workdir), and a .pth/.pt/.safetensors file can be
  written at `output_path` (its parent folders created). Returns what the input is."""
  if not output_path.endswith(checkpointing.TORCH_SUFFIXES):
    raise UserError(f"{output_path}: output must end in .pth, .pt or .safetensors")
  ref = checkpointing.resolve_checkpoint(input_dir)
  if ref.kind == "torch":
    raise UserError(f"{input_dir} is a PyTorch file already; jax-to-torch reads orbax "
                    "checkpoints (torch-to-jax converts the other way)")
  image_io.prepare_output_file(output_path, "--output")
  return ref


@cli.user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point; 0 on success, 2 with one line (plus the key list of a mismatch) on a user
  mistake (missing file, a checkpoint that does not fit the config, an unsafe pickle, an
  output location that cannot be written)."""
  args, overrides = cli.parse_with_overrides(_parser(), argv)
  if args.command == "torch-to-jax":
    config = load_config(args.config, overrides)
    check_torch_to_jax(args.input, args.output)
    checkpointing.torch_to_params_dir(config, args.input, args.output, args.param_key)
  else:
    ref = check_jax_to_torch(args.input, args.output)
    config = api.config_for(args.config, ref, overrides)
    checkpointing.params_dir_to_torch(config, ref, args.output)
  print(f"wrote {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
