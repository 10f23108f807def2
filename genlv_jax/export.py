"""`python -m genlv_jax.export`: write a model's forward pass as StableHLO or ONNX, for serving.

    python -m genlv_jax.export --config configs/base.py --checkpoint CKPT \
        --format stablehlo --output genlv_base.stablehlo [--height 256 --width 256]
    python -m genlv_jax.export --config configs/base.py --checkpoint CKPT \
        --format onnx --output genlv_base.onnx [--height 256 --width 256]

The exported function takes (input, prompt_source, prompt_target), NHWC float32 in [0, 1] (just
the input for X-Restormer), and returns the output, NHWC float32; the parameters are constants
inside it. StableHLO (jax.export, for JAX/XLA serving on CPUs, GPUs and TPUs; read it back with
`genlv_jax.exporting.load_stablehlo` or `jax.export.deserialize`) keeps batch, height and width
symbolic unless --height/--width fix the input size; ONNX (jax2onnx, for onnxruntime and other
runtimes, CPU and edge) fixes them (default 256x256), batch symbolic. Both use the ops layer's
portable formulations: no compiled CPU kernel inside an exported graph.

CKPT is anything `genlv_jax.load_model` reads (orbax params folder, training or fine-tuning
workdir, .pth / .safetensors); `--random-init` exports untrained weights. A user mistake (a
size that is not a multiple of 64, a missing checkpoint, an output folder that does not exist or
cannot be written, ONNX without jax2onnx) prints one line and exits with status 2, before the
model is loaded.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from genlv_jax import api, cli, exporting
from genlv_jax.models import PAD_MULTIPLE


def _parser() -> cli.Parser:
  parser = cli.Parser(prog="python -m genlv_jax.export", description=__doc__.split("\n\n")[0])
  cli.add_model_arguments(parser, "untrained weights from config.seed (to try the export)")
  parser.add_argument("--format", required=True, choices=exporting.FORMATS,
                      help="stablehlo (jax.export: JAX/XLA serving, CPU/GPU/TPU) or onnx "
                           "(jax2onnx: onnxruntime and other runtimes, CPU/edge)")
  parser.add_argument("--output", required=True,
                      help="file to write (its folder must exist)")
  parser.add_argument("--height", type=int, default=None,
                      help=f"fixed input height, a multiple of {PAD_MULTIPLE} (with --width); "
                           "StableHLO default: symbolic, ONNX default: "
                           f"{exporting.DEFAULT_ONNX_SIZE}")
  parser.add_argument("--width", type=int, default=None,
                      help=f"fixed input width, a multiple of {PAD_MULTIPLE} (with --height)")
  parser.add_argument("--prompt-height", type=int, default=None,
                      help="fixed prompt height, a multiple of 8 (with --prompt-width); "
                           "StableHLO default: symbolic, ONNX default: the input's")
  parser.add_argument("--prompt-width", type=int, default=None,
                      help="fixed prompt width, a multiple of 8 (with --prompt-height)")
  parser.add_argument("--platforms", default=",".join(exporting.DEFAULT_PLATFORMS),
                      help="StableHLO only: comma-separated platforms to lower for, of "
                           f"{', '.join(exporting.PLATFORMS)} (default: %(default)s)")
  return parser


@cli.user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point: parse, check the request (sizes, platforms, libraries, output location), load
  the model, export. Returns the exit status."""
  args, overrides = cli.parse_with_overrides(_parser(), argv)
  sizes = dict(height=args.height, width=args.width, prompt_height=args.prompt_height,
               prompt_width=args.prompt_width)
  platforms = args.platforms.split(",")
  exporting.check_request(args.format, args.output, platforms=platforms, **sizes)
  checkpoint = None if args.random_init else api.resolve_checkpoint(args.checkpoint)
  config = api.config_for(args.config, checkpoint, overrides)
  exporting.check_prompt_size(config, args.prompt_height)
  model = api.load_model(config, checkpoint)
  if args.format == "stablehlo":
    exported = exporting.export_stablehlo(model.config, model.params, args.output,
                                          platforms=platforms, **sizes)
    shapes = [aval.shape for aval in exported.in_avals]
    target = f"StableHLO for {', '.join(exported.platforms)}"
  else:
    proto = exporting.export_onnx(model.config, model.params, args.output, **sizes)
    shapes = exporting.onnx_input_shapes(proto)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    target = f"ONNX opset {opset}"
  size_mb = os.path.getsize(args.output) / 2**20
  print(f"wrote {args.output} ({target}, {size_mb:.1f} MB): "
        f"{exporting.describe_shapes(shapes)} float32")
  return 0


if __name__ == "__main__":
  sys.exit(main())
