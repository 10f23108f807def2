"""`python -m genlv_jax.summary --config configs/base.py [--json] [--config.field=value …]`.

Parameters per component and in total, GMACs at 256x256 and the output shape, without
materialising any weights (`genlv_jax.models.summary`).
"""

from __future__ import annotations

import json
import sys
from typing import Optional, Sequence

from genlv_jax import cli
from genlv_jax.config_io import load_config
from genlv_jax.models.summary import summarize


@cli.user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = cli.Parser(prog="python -m genlv_jax.summary", description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="config file, e.g. configs/base.py")
  parser.add_argument("--json", action="store_true", help="print one JSON object")
  args, overrides = cli.parse_with_overrides(parser, argv)
  result = {"config": args.config, **summarize(load_config(args.config, overrides))}
  if args.json:
    print(json.dumps(result))
    return 0
  print(f"{args.config}: {result['params'] / 1e6:.2f} M params, "
        f"{result['gmacs_256']:.2f} GMACs at 256x256, output {tuple(result['output_shape_256'])}")
  for name, n in result["params_per_component"].items():
    print(f"  {name:<24} {n / 1e6:9.3f} M")
  return 0


if __name__ == "__main__":
  sys.exit(main())
