"""Each compiled XLA:CPU kernel (genlv_jax/models/cpu_kernels.py) against the XLA formulation
it replaces, at the shapes GenLV-Base meets at 128x128, in one process. Prints JSON.

    python benchmarks/cpu_kernels.py            # medians of 20 runs, milliseconds
    python benchmarks/cpu_kernels.py --repeats 50 --torch

Both sides are jitted and warm; "xla" is what the model runs without the kernel ("shifted"
depthwise conv with its custom VJP, XLA's GELU gate, XLA's convolution gradient, autodiff of
LayerNorm). `--torch` adds PyTorch eager's depthwise conv forward + backward for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from genlv_jax.models import cpu_kernels, ops  # noqa: E402


def _median_ms(fn, args, repeats: int) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def _vjp(f):
  """x, params..., cotangent -> all gradients (the forward pass included)."""
  return jax.jit(lambda *a: jax.vjp(f, *a[:-1])[1](a[-1]))


def _gelu_gate_xla(x, kernel, bias):
  y = ops.shifted_depthwise_conv3x3(x, kernel) + bias
  gate, value = jnp.split(y, 2, axis=-1)
  return jax.nn.gelu(gate, approximate=False) * value


def layer_norm_xla(x, weight, bias):
  return cpu_kernels.layer_norm_xla(x, weight, bias, 1e-5)


def run(repeats: int, with_torch: bool) -> dict:
  rng = np.random.default_rng(0)
  normal = lambda *shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)  # noqa: E731
  rows = []

  def add(op, shape, xla_fn, kernel_fn, args):
    rows.append({"op": op, "shape": list(shape), "xla_ms": _median_ms(xla_fn, args, repeats),
                 "kernel_ms": _median_ms(kernel_fn, args, repeats)})

  for shape in [(1, 128, 128, 144), (1, 128, 128, 254), (1, 64, 64, 510), (1, 16, 16, 2042)]:
    x, k, dy = normal(*shape), normal(3, 3, shape[-1]), normal(*shape)
    add("depthwise 3x3 forward", shape, jax.jit(ops.shifted_depthwise_conv3x3),
        jax.jit(cpu_kernels.depthwise_conv3x3), (x, k))
    add("depthwise 3x3 forward+backward", shape, _vjp(ops.shifted_depthwise_conv3x3),
        _vjp(cpu_kernels.depthwise_conv3x3), (x, k, dy))
  for shape in [(1, 128, 128, 254), (1, 64, 64, 510), (1, 16, 16, 2042)]:
    x, k, b = normal(*shape), 0.3 * normal(3, 3, shape[-1]), normal(shape[-1])
    dout = normal(*shape[:-1], shape[-1] // 2)
    add("GDFN conv + GELU gate forward", shape, jax.jit(_gelu_gate_xla),
        jax.jit(cpu_kernels.gated_depthwise_conv3x3), (x, k, b))
    add("GDFN conv + GELU gate forward+backward", shape, _vjp(_gelu_gate_xla),
        _vjp(cpu_kernels.gated_depthwise_conv3x3), (x, k, b, dout))
  for b, s, cin, cout in [(2, 128, 64, 64), (2, 64, 128, 128), (2, 32, 256, 256), (1, 128, 48, 96)]:
    x, k, dy = normal(b, s, s, cin), normal(3, 3, cin, cout), normal(b, s, s, cout)
    add("dense 3x3 conv forward+backward", (b, s, s, cin, cout), _vjp(cpu_kernels.conv3x3_xla),
        _vjp(cpu_kernels.conv3x3), (x, k, dy))
  for shape in [(1, 128, 128, 48), (1, 128, 128, 96), (1, 32, 32, 192)]:
    x, w, b, dy = normal(*shape), normal(shape[-1]), normal(shape[-1]), normal(*shape)
    kernel_ln = lambda x, w, b: cpu_kernels.layer_norm(x, w, b, 1e-5)  # noqa: E731
    add("LayerNorm forward+backward", shape, _vjp(layer_norm_xla), _vjp(kernel_ln), (x, w, b, dy))
  for row in rows:
    row["speedup"] = row["xla_ms"] / row["kernel_ms"]

  result = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "jax": jax.__version__,
            "repeats": repeats, "rows": rows}
  if with_torch:
    import torch  # pylint: disable=import-outside-toplevel
    timings = {}
    for shape in [(1, 254, 128, 128)]:
      conv = torch.nn.Conv2d(shape[1], shape[1], 3, padding=1, groups=shape[1], bias=False)
      x = torch.randn(*shape, requires_grad=True)
      g = torch.randn(*shape)

      def step():
        conv(x).backward(g)

      step()
      times = []
      for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
      timings["depthwise 3x3 forward+backward, NCHW " + "x".join(map(str, shape))] = (
          1e3 * statistics.median(times))
    result["torch_eager_ms"] = timings
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--torch", action="store_true", help="also time PyTorch eager (needs torch)")
  args = parser.parse_args()
  if not cpu_kernels.available():
    print("error: the CPU kernels could not be built here (no C++ compiler?)", file=sys.stderr)
    sys.exit(2)
  print(json.dumps(run(args.repeats, args.torch), indent=1))


if __name__ == "__main__":
  main()
