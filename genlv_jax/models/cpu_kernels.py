"""Compiled XLA:CPU kernels for what XLA:CPU computes slowly, called through the XLA FFI.

XLA:CPU has no fast depthwise convolution (about 25x slower than PyTorch's), and some
gradients come out of its code generator several times slower than the forward passes they
belong to. `cpu_kernels.cc` holds, run on XLA's intra-op thread pool:
- `depthwise_conv3x3`: the depthwise 3x3 conv, forward and backward (the shifted multiply-adds'
  kernel gradient is nine column reductions, a quarter of a training step);
- `gated_depthwise_conv3x3`: GDFN's depthwise conv fused with its exact-GELU gate, forward and
  backward, the 2h-channel conv output never written to memory;
- `conv3x3`: the dense 3x3 conv, forward pass, input gradient (the same kernel with the
  weights flipped and transposed) and kernel gradient: XLA:CPU runs the narrow convolutions of
  the prompt encoder and of the U-Net's resampling at about half PyTorch's speed, and their
  kernel gradient 5-8x slower than the forward pass;
- `layer_norm`: LayerNorm whose backward runs in the kernel (XLA's forward pass stays).

The C++ source ships with the package and is compiled with the host's C++ compiler the first
time it is needed (a few seconds), into a cache keyed by the source, the compiler flags, the
jaxlib version and the CPU, so it is reused by every later process:
``$GENLV_KERNEL_CACHE`` or ``~/.cache/genlv_jax/kernels``. Without a compiler, or when the
build fails, `available()` is False and "auto" falls back to XLA's own formulations (same
functions, slower gradients). Set ``GENLV_CPU_KERNELS=0`` to never build or use them.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

SOURCE = pathlib.Path(__file__).with_name("cpu_kernels.cc")
_FORWARD_TARGET = "genlv_depthwise_conv3x3_forward"
_BACKWARD_TARGET = "genlv_depthwise_conv3x3_backward"
_GATED_TARGET = "genlv_gated_depthwise_conv3x3_forward"
_GATED_BACKWARD_TARGET = "genlv_gated_depthwise_conv3x3_backward"
_CONV_FORWARD_TARGET = "genlv_conv3x3_forward"
_CONV_KERNEL_GRAD_TARGET = "genlv_conv3x3_kernel_grad"
_LAYER_NORM_BACKWARD_TARGET = "genlv_layer_norm_backward"
# FFI target name -> the handler symbol cpu_kernels.cc exports for it.
_HANDLERS = {
    _FORWARD_TARGET: "GenlvDepthwiseConv3x3Forward",
    _BACKWARD_TARGET: "GenlvDepthwiseConv3x3Backward",
    _GATED_TARGET: "GenlvGatedDepthwiseConv3x3Forward",
    _GATED_BACKWARD_TARGET: "GenlvGatedDepthwiseConv3x3Backward",
    _CONV_FORWARD_TARGET: "GenlvConv3x3Forward",
    _CONV_KERNEL_GRAD_TARGET: "GenlvConv3x3KernelGrad",
    _LAYER_NORM_BACKWARD_TARGET: "GenlvLayerNormBackward",
}
_CXX_FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC")


def _cpu_signature() -> str:
  """What -march=native depends on, so a shared cache never serves another CPU's build."""
  try:
    info = pathlib.Path("/proc/cpuinfo").read_text()
    lines = [l for l in info.splitlines() if l.startswith(("model name", "flags"))][:2]
    return "\n".join(lines)
  except OSError:
    return platform.processor() or platform.machine()


def _cache_dir() -> pathlib.Path:
  root = os.environ.get("GENLV_KERNEL_CACHE") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "genlv_jax", "kernels")
  return pathlib.Path(root)


def _build(compiler: str) -> pathlib.Path:
  """Compiles SOURCE into the cache (atomically) unless an identical build is already there."""
  import jaxlib  # the FFI headers and ABI belong to the installed jaxlib

  key = hashlib.sha256("\0".join(
      [SOURCE.read_text(), compiler, *_CXX_FLAGS, jaxlib.__version__, _cpu_signature()]
  ).encode()).hexdigest()[:16]
  library = _cache_dir() / f"cpu_kernels-{key}.so"
  if library.exists():
    return library
  library.parent.mkdir(parents=True, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=library.parent) as tmp:
    out = pathlib.Path(tmp) / library.name
    subprocess.run(
        [compiler, *_CXX_FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", str(out)],
        check=True, capture_output=True, text=True)
    os.replace(out, library)  # concurrent builders both produce the same file
  return library


@functools.cache
def available() -> bool:
  """Builds (once per machine) and registers the kernels; False where that is not possible."""
  if os.environ.get("GENLV_CPU_KERNELS", "1") == "0":
    return False
  compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
  if not compiler:
    logging.info("No C++ compiler: the CPU kernels are off (XLA's own formulations run).")
    return False
  try:
    library = ctypes.cdll.LoadLibrary(str(_build(compiler)))
    for target, symbol in _HANDLERS.items():
      jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)),
                                  platform="cpu")
  except (OSError, AttributeError, subprocess.CalledProcessError) as e:
    lines = (getattr(e, "stderr", "") or str(e)).strip().splitlines()
    logging.warning("Could not build the CPU kernels (%s); using XLA's own formulations "
                    "instead.", lines[-1] if lines else type(e).__name__)
    return False
  return True


@jax.custom_vjp
def depthwise_conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Depthwise 3x3 cross-correlation with zero padding 1: x (B, H, W, C), kernel (3, 3, C).

  float32 only, XLA:CPU only; call `available()` first (the model does, through "auto").
  """
  return jax.ffi.ffi_call(
      _FORWARD_TARGET, jax.ShapeDtypeStruct(x.shape, x.dtype), vmap_method="sequential")(
          x, kernel)


def _forward(x, kernel):
  return depthwise_conv3x3(x, kernel), (x, kernel)


def _backward(residuals, dy):
  x, kernel = residuals
  dx, dkernel = jax.ffi.ffi_call(
      _BACKWARD_TARGET,
      (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(kernel.shape, kernel.dtype)),
      vmap_method="sequential")(x, kernel, dy.astype(jnp.float32))
  return dx, dkernel


depthwise_conv3x3.defvjp(_forward, _backward)


@jax.custom_vjp
def gated_depthwise_conv3x3(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
  """GDFN's middle: y = depthwise_conv3x3(x, kernel) + bias, then gelu(y[..., :C/2]) * y[..., C/2:].

  One fused kernel with PyTorch's exact erf GELU: the 2h-channel convolution output never
  reaches memory. The backward pass recomputes it from x rather than keeping it, so the only
  residuals are the inputs.
  """
  return jax.ffi.ffi_call(
      _GATED_TARGET, jax.ShapeDtypeStruct((*x.shape[:-1], x.shape[-1] // 2), x.dtype),
      vmap_method="sequential")(x, kernel, bias)


def _gated_forward(x, kernel, bias):
  return gated_depthwise_conv3x3(x, kernel, bias), (x, kernel, bias)


def _gated_backward(residuals, dout):
  x, kernel, bias = residuals
  like = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype)  # noqa: E731
  dx, dkernel, dbias = jax.ffi.ffi_call(
      _GATED_BACKWARD_TARGET, (like(x), like(kernel), like(bias)),
      vmap_method="sequential")(x, kernel, bias, dout.astype(jnp.float32))
  return dx, dkernel, dbias


gated_depthwise_conv3x3.defvjp(_gated_forward, _gated_backward)


def conv3x3_xla(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """XLA's stride-1, zero-padding-1 3x3 conv (NHWC, HWIO): the forward pass of `conv3x3`."""
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


# Where the compiled forward pass beats XLA's (measured, BENCHMARKS.md): from 16 output
# channels (its register blocks are 16 output channels wide) and below 256 input channels
# (beyond that a block's weights outgrow L2 and XLA's GEMM blocking wins).
MIN_CONV_CHANNELS = 16
MAX_CONV_INPUT_CHANNELS = 255


def _conv3x3_compiled(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The compiled forward pass (any channel counts; fastest within the bounds above)."""
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return jax.ffi.ffi_call(
      _CONV_FORWARD_TARGET,
      jax.ShapeDtypeStruct((*x.shape[:-1], kernel.shape[-1]), jnp.float32),
      vmap_method="sequential")(padded, kernel)


def _conv3x3_any(x: jax.Array, kernel: jax.Array) -> jax.Array:
  if kernel.shape[-1] >= MIN_CONV_CHANNELS and kernel.shape[-2] <= MAX_CONV_INPUT_CHANNELS:
    return _conv3x3_compiled(x, kernel)
  return conv3x3_xla(x, kernel)


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Dense 3x3 convolution, stride 1, zero padding 1: x (B, H, W, C_in), kernel HWIO, float32.

  Forward pass and input gradient in the compiled kernel where it is faster than XLA's
  (`_conv3x3_any`); the kernel gradient, which XLA:CPU computes 5-8x slower than the forward
  pass, always in the compiled kernel.
  """
  return _conv3x3_any(x, kernel)


def _conv3x3_forward(x, kernel):
  return _conv3x3_any(x, kernel), (x, kernel)


def _conv3x3_backward(residuals, dy):
  x, kernel = residuals
  # The input gradient is the convolution of dy with the kernel flipped in both spatial axes
  # and its channel axes swapped.
  dx = _conv3x3_any(dy.astype(jnp.float32), kernel[::-1, ::-1].transpose(0, 1, 3, 2))
  dkernel = jax.ffi.ffi_call(
      _CONV_KERNEL_GRAD_TARGET, jax.ShapeDtypeStruct(kernel.shape, jnp.float32),
      vmap_method="sequential")(x.astype(jnp.float32), dy.astype(jnp.float32))
  return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


conv3x3.defvjp(_conv3x3_forward, _conv3x3_backward)


def layer_norm_xla(x: jax.Array, weight: jax.Array, bias: jax.Array, epsilon: float
                   ) -> jax.Array:
  """LayerNorm over the last axis in jnp (biased variance): the forward pass of `layer_norm`."""
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + epsilon) * weight + bias


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def layer_norm(x: jax.Array, weight: jax.Array, bias: jax.Array, epsilon: float) -> jax.Array:
  """LayerNorm over the last axis (biased variance), float32, with the backward pass compiled.

  The forward pass is plain XLA (it fuses into the next matmul); only the input x is kept for
  the backward pass, which recomputes each pixel's statistics in the kernel.
  """
  return layer_norm_xla(x, weight, bias, epsilon)


def _layer_norm_forward(x, weight, bias, epsilon):
  return layer_norm_xla(x, weight, bias, epsilon), (x, weight)


def _layer_norm_backward(epsilon, residuals, dy):
  x, weight = residuals
  like = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype)  # noqa: E731
  return tuple(jax.ffi.ffi_call(
      _LAYER_NORM_BACKWARD_TARGET, (like(x), like(weight), like(weight)),
      vmap_method="sequential")(x, weight, dy.astype(jnp.float32), epsilon=np.float32(epsilon)))


layer_norm.defvjp(_layer_norm_forward, _layer_norm_backward)
