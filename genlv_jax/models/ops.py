"""The ops layer: the one place that decides *how* an operation is computed on this backend.

The Flax modules say what they compute (`ops.depthwise_conv3x3(x, kernel)`,
`ops.dot_product_attention(q, k, v)`, ...) and carry no implementation fields; this module
picks the formulation, once per trace, from an `Implementations` record:

    field        choices                      "auto" picks
    depthwise    cpu_kernel | shifted | grouped   cpu_kernel on one CPU device (when it builds),
                                               shifted on several CPU devices, grouped on GPU/TPU
    windows      reshape | patches            reshape on CPU and on several devices, patches on
                                               one GPU/TPU
    attention    matmul | xla | cudnn | default   default on GPU (jax picks cuDNN's fused
                                               attention where it applies), xla on TPU,
                                               matmul on CPU
    conv         cpu_kernel | xla             the dense 3x3 convs (forward and gradients)
    layer_norm   cpu_kernel | xla             LayerNorm's backward pass

Every choice computes the same function with the same parameters (tests check each pair);
only speed and memory differ. Why the CPU needs its own formulations: XLA:CPU's grouped
convolution is ~25x slower than PyTorch's and its patch extraction ~25x slower than a reshape,
and some of its gradients are several times slower than the forward passes they belong to
(BENCHMARKS.md). The compiled kernels of `cpu_kernels` cannot be partitioned by XLA, so "auto"
uses them only when the program runs on a single CPU device.

The root model (`GenLV`, `XRestormer`) enters `use(implementations)` around its body, so
the choice made from `config.ops` by `build_model` reaches every layer without being threaded
through them; a layer traced outside any model uses "auto". The choice is read when a function
is traced and is not part of `jax.jit`'s cache key: a jitted function of a single layer keeps
the choice it was first traced under (root models carry theirs as a field, so they cannot).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import Iterator, Optional

import jax
import jax.numpy as jnp

from genlv_jax.errors import UserError
from genlv_jax.models import cpu_kernels

CHOICES = {
    "depthwise": ("cpu_kernel", "shifted", "grouped"),
    "windows": ("reshape", "patches"),
    "attention": ("matmul", "xla", "cudnn", "default"),
    "conv": ("cpu_kernel", "xla"),
    "layer_norm": ("cpu_kernel", "xla"),
}


@dataclasses.dataclass(frozen=True)
class Implementations:
  """One formulation per operation (see the module docstring); "auto" = the backend's best."""

  depthwise: str = "auto"
  windows: str = "auto"
  attention: str = "auto"
  conv: str = "auto"
  layer_norm: str = "auto"

  def __post_init__(self):
    for field, allowed in CHOICES.items():
      value = getattr(self, field)
      if value != "auto" and value not in allowed:
        raise UserError(f"ops.{field} must be 'auto' or one of {allowed}, got {value!r}")


def from_config(ops_config) -> Implementations:
  """`Implementations` from a config's `ops` section (a ConfigDict or mapping; missing = auto)."""
  if ops_config is None:
    return Implementations()
  values = dict(ops_config)
  unknown = sorted(set(values) - set(CHOICES))
  if unknown:
    raise UserError(f"unknown ops field(s) {unknown}; expected {sorted(CHOICES)}")
  return Implementations(**values)


def _single_cpu_device() -> bool:
  return jax.default_backend() == "cpu" and jax.device_count() == 1


def resolve(impls: Optional[Implementations] = None) -> Implementations:
  """Replaces every "auto" by the concrete choice for the current backend and device count.

  May build the CPU kernels (once per machine, a few seconds); never called at import.
  """
  impls = impls or Implementations()
  on_cpu = jax.default_backend() == "cpu"
  on_gpu = jax.default_backend() == "gpu"

  def kernel_or(fallback: str) -> str:
    return "cpu_kernel" if _single_cpu_device() and cpu_kernels.available() else fallback

  chosen = {
      "depthwise": kernel_or("shifted") if on_cpu else "grouped",
      # GSPMD cannot split the patch extraction's gradient over a sharded batch: it gathers
      # the whole batch's patches on every device (benchmarks/sharding_comms.py).
      "windows": "reshape" if on_cpu or jax.device_count() > 1 else "patches",
      "attention": "default" if on_gpu else ("matmul" if on_cpu else "xla"),
      "conv": kernel_or("xla"),
      "layer_norm": kernel_or("xla"),
  }
  resolved = {f: chosen[f] if getattr(impls, f) == "auto" else getattr(impls, f)
              for f in CHOICES}
  for field in ("depthwise", "conv", "layer_norm"):
    if resolved[field] == "cpu_kernel" and not cpu_kernels.available():
      raise UserError(f"ops.{field}='cpu_kernel' needs the compiled CPU kernels, which could "
                       "not be built here (see the log); use 'auto'")
  return Implementations(**resolved)


_ACTIVE: contextvars.ContextVar[Optional[Implementations]] = contextvars.ContextVar(
    "genlv_ops", default=None)


@contextlib.contextmanager
def use(impls: Optional[Implementations]) -> Iterator[Implementations]:
  """Within the block, layers compute with `impls` (resolved; None = all "auto")."""
  resolved = resolve(impls)
  token = _ACTIVE.set(resolved)
  try:
    yield resolved
  finally:
    _ACTIVE.reset(token)


def current() -> Implementations:
  """The implementations in force: those of the enclosing `use`, else "auto" resolved."""
  active = _ACTIVE.get()
  return active if active is not None else resolve()


# ----------------------------------------------------------------------------- normalisation


def layer_norm(x: jax.Array, weight: jax.Array, bias: jax.Array, epsilon: float) -> jax.Array:
  """LayerNorm over the last axis, biased variance, statistics in float32; returns float32."""
  x = x.astype(jnp.float32)
  if current().layer_norm == "cpu_kernel":
    return cpu_kernels.layer_norm(x, weight, bias, epsilon)
  return cpu_kernels.layer_norm_xla(x, weight, bias, epsilon)


# ----------------------------------------------------------------------------- convolutions


@jax.custom_vjp
def channel_matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """(..., C_in) @ (C_in, C_out) as one 2-D matmul over all positions (a 1x1 convolution).

  A custom VJP so that both gradients are plain 2-D matmuls: autodiff of the N-D dot makes
  XLA:CPU materialise (C, B*H*W) transposes of the cotangent, which cost more than the
  matmuls themselves. The same function on every backend.
  """
  return (x.reshape(-1, x.shape[-1]) @ kernel).reshape(*x.shape[:-1], kernel.shape[-1])


def _channel_matmul_fwd(x, kernel):
  return channel_matmul(x, kernel), (x, kernel)


def _channel_matmul_bwd(residuals, dy):
  x, kernel = residuals
  x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
  dx = (dy2 @ kernel.T).reshape(x.shape)
  dkernel = jnp.matmul(x2.T, dy2, preferred_element_type=jnp.float32).astype(kernel.dtype)
  return dx, dkernel


channel_matmul.defvjp(_channel_matmul_fwd, _channel_matmul_bwd)


def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Dense 3x3 cross-correlation, stride 1, zero padding 1; x NHWC, kernel HWIO.

  The compiled kernels pay off from 16 output channels (below that XLA's are as fast).
  """
  if current().conv == "cpu_kernel" and kernel.shape[-1] >= cpu_kernels.MIN_CONV_CHANNELS:
    return cpu_kernels.conv3x3(x.astype(jnp.float32),
                               kernel.astype(jnp.float32)).astype(x.dtype)
  return cpu_kernels.conv3x3_xla(x, kernel)


def _shifted_taps(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """sum_ij pad(x)[i:i+H, j:j+W] * kernel[i, j]: a zero-padded depthwise 3x3 (cross-correlation)."""
  height, width = x.shape[1], x.shape[2]
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  y = None
  for i in range(3):
    for j in range(3):
      term = padded[:, i:i + height, j:j + width, :] * kernel[i, j]
      y = term if y is None else y + term
  return y


@jax.custom_vjp
def shifted_depthwise_conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Depthwise 3x3 conv (kernel (3, 3, C)) as nine shifted multiply-adds.

  A custom VJP because autodiff of the nine slices pads the cotangent back to full size nine
  times, which XLA:CPU turns into a third of the training step; the transpose of this op is
  the same op with the kernel flipped, and the kernel gradient is nine reductions.
  """
  return _shifted_taps(x, kernel)


def _shifted_fwd(x, kernel):
  # The barrier keeps the output one materialised buffer: without it XLA:CPU fuses the nine
  # taps into each of its consumers in the training program (GELU, gate, their gradients),
  # computing the convolution about six times over.
  return jax.lax.optimization_barrier(_shifted_taps(x, kernel)), (x, kernel)


def _shifted_bwd(residuals, dy):
  x, kernel = residuals
  height, width = x.shape[1], x.shape[2]
  # Both gradients read the same nine shifted windows of the cotangent:
  #   dx         = sum_ij shift_ij(dy) * kernel[i, j]   (the conv with the kernel flipped)
  #   dkernel_ij = sum_hw x * shift_ij(dy)
  # Shifting dy rather than x matters for memory: windows of x depend on forward values only,
  # so XLA would be free to compute them during the forward pass and hold 8 shifted copies
  # of every conv input until the backward pass reaches it.
  padded = jnp.pad(dy, ((0, 0), (1, 1), (1, 1), (0, 0)))
  dx, taps = None, []
  for i in range(3):
    for j in range(3):
      window = padded[:, 2 - i:2 - i + height, 2 - j:2 - j + width, :]
      term = window * kernel[i, j]
      dx = term if dx is None else dx + term
      taps.append(jnp.sum(x * window, axis=(0, 1, 2), dtype=jnp.float32))
  dkernel = jnp.stack(taps).reshape(kernel.shape).astype(kernel.dtype)
  return dx, dkernel


shifted_depthwise_conv3x3.defvjp(_shifted_fwd, _shifted_bwd)


def depthwise_conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Depthwise 3x3 cross-correlation, zero padding 1: x (B, H, W, C), kernel (3, 3, C)."""
  impl = current().depthwise
  if impl == "cpu_kernel":
    return cpu_kernels.depthwise_conv3x3(
        x.astype(jnp.float32), kernel.astype(jnp.float32)).astype(x.dtype)
  if impl == "grouped":
    return jax.lax.conv_general_dilated(
        x, kernel[:, :, None, :], window_strides=(1, 1), padding=((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1])
  return shifted_depthwise_conv3x3(x, kernel)


def gated_depthwise_conv3x3(x: jax.Array, kernel: jax.Array,
                            bias: Optional[jax.Array]) -> jax.Array:
  """GDFN's middle: y = dwconv(x) + bias, then gelu(y[..., :C/2]) * y[..., C/2:] (exact erf).

  With the compiled CPU kernel the conv and the gate are one kernel, and the 2h-channel conv
  output never reaches memory.
  """
  if current().depthwise == "cpu_kernel":
    bias32 = (jnp.zeros((x.shape[-1],), jnp.float32) if bias is None
              else bias.astype(jnp.float32))
    return cpu_kernels.gated_depthwise_conv3x3(
        x.astype(jnp.float32), kernel.astype(jnp.float32), bias32).astype(x.dtype)
  y = depthwise_conv3x3(x, kernel)
  if bias is not None:
    y = y + bias.astype(y.dtype)
  gate, value = jnp.split(y, 2, axis=-1)
  return jax.nn.gelu(gate, approximate=False) * value  # torch's F.gelu is the erf form


# ----------------------------------------------------------------------------- windows


def overlapping_windows(x: jax.Array, window_size: int, overlap_size: int) -> jax.Array:
  """Key/value windows of `window_size + overlap_size`, stride `window_size`, zero padding
  `overlap_size / 2`: (B, H, W, C) -> (B, H/ws, W/ws, ows, ows, C), row-major within a window,
  as torch's `nn.Unfold(kernel=ows, stride=ws, padding=overlap/2)`.

  "reshape" pads, splits into ws-blocks and appends the next block's first `overlap` rows and
  columns; "patches" is `lax.conv_general_dilated_patches` (a library call).
  """
  b, h, w, c = x.shape
  ws, ows = window_size, window_size + overlap_size
  pad = overlap_size // 2
  nh, nw = h // ws, w // ws
  if current().windows == "patches" or overlap_size > ws:
    patches = jax.lax.conv_general_dilated_patches(
        x, filter_shape=(ows, ows), window_strides=(ws, ws), padding=((pad, pad), (pad, pad)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    # Patch features come out ordered (channel, row, col).
    return patches.reshape(b, nh, nw, c, ows, ows).transpose(0, 1, 2, 4, 5, 3)
  x = jnp.pad(x, ((0, 0), (pad, ws - pad), (pad, ws - pad), (0, 0)))  # (B, (nh+1)ws, (nw+1)ws, C)
  x = x.reshape(b, nh + 1, ws, (nw + 1) * ws, c)
  x = jnp.concatenate([x[:, :nh], x[:, 1:, :overlap_size]], axis=2)       # rows: (B, nh, ows, ., C)
  x = x.reshape(b, nh, ows, nw + 1, ws, c)
  x = jnp.concatenate([x[:, :, :, :nw], x[:, :, :, 1:, :overlap_size]], axis=4)
  return x.transpose(0, 1, 3, 2, 4, 5)


# ----------------------------------------------------------------------------- attention


def _head_major_attention(query: jax.Array, key: jax.Array, value: jax.Array, scale: float,
                          bias: Optional[jax.Array]) -> jax.Array:
  """The "matmul" formulation: heads moved ahead of the tokens (one transpose each), then two
  batched matmuls on contiguous operands, and the softmax's normalisation applied to the
  (T, D) output instead of the (T, S) weights. On XLA:CPU this is 1.3-2.7x faster than
  `jax.nn.dot_product_attention`'s XLA path, whose einsums on the (B, T, heads, D) layout
  leave the matmul fast path (BENCHMARKS.md)."""
  q, k, v = (t.swapaxes(1, 2) for t in (query, key, value))          # (B, heads, T, D)
  logits = jnp.einsum("bntd,bnsd->bnts", q, k, preferred_element_type=jnp.float32) * scale
  if bias is not None:
    logits = logits + bias.astype(jnp.float32)
  weights = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
  out = jnp.einsum("bnts,bnsd->bntd", weights.astype(value.dtype), v,
                   preferred_element_type=jnp.float32)
  out = out / jnp.sum(weights, axis=-1, keepdims=True)
  return out.astype(query.dtype).swapaxes(1, 2)


def dot_product_attention(query: jax.Array, key: jax.Array, value: jax.Array, *,
                          scale: float, bias: Optional[jax.Array] = None) -> jax.Array:
  """softmax(scale * q k^T + bias) v with (B, T, heads, D) layouts, logits in float32.

  Through `jax.nn.dot_product_attention` ("default", "cudnn", "xla"), so that GPUs get
  cuDNN's fused kernel where its constraints hold (bf16/fp16, head dim <= 128), or as two
  head-major batched matmuls ("matmul", the fastest on XLA:CPU).
  """
  impl = current().attention
  if impl == "matmul":
    return _head_major_attention(query, key, value, scale, bias)
  return jax.nn.dot_product_attention(
      query, key, value, bias=bias, scale=scale,
      implementation=None if impl == "default" else impl)
