"""Each layer of the model against an independent numpy reference (tests/reference_numpy.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference_numpy as ref
from conftest import CPU_KERNEL, requires_cpu_kernel
from genlv_jax.models import attention, cpu_kernels, layers
from genlv_jax.models.blocks import GatedDconvFeedForward

RNG = np.random.default_rng(0)


def _randomise(params, scale=0.3, seed=1):
  """Moves every param away from its init value (ones/zeros would hide a mistake)."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda p: np.asarray(p) + scale * rng.standard_normal(p.shape).astype(np.float32), params)


def _grads(module, variables, x, cot):
  """Gradients of sum(module(x) * cot) with respect to (variables, x)."""
  loss = lambda v, x: jnp.sum(module.apply(v, x) * cot)  # noqa: E731
  return jax.jit(jax.grad(loss, argnums=(0, 1)))(variables, x)


def _init_apply(module, *inputs):
  params = _randomise(module.init(jax.random.key(0), *inputs)["params"])
  return params, np.asarray(module.apply({"params": params}, *inputs), np.float64)


def test_layer_norm_matches_numpy_with_float32_statistics_under_bfloat16():
  x = RNG.standard_normal((2, 5, 7, 12)).astype(np.float32) * 3 + 1
  params, y = _init_apply(layers.LayerNorm(), x)
  np.testing.assert_allclose(y, ref.layer_norm(x.astype(np.float64), params["weight"], params["bias"]),
                             atol=1e-5)
  y16 = layers.LayerNorm(dtype=jnp.bfloat16).apply({"params": params}, x.astype(jnp.bfloat16))
  assert y16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y16, np.float64), y, atol=0.05 * np.abs(y).max())


@pytest.mark.parametrize("implementation", ["shifted", "grouped", CPU_KERNEL])
def test_depthwise_conv_matches_direct_loop(implementation):
  x = RNG.standard_normal((1, 9, 11, 6)).astype(np.float32)
  params, y = _init_apply(layers.DepthwiseConv3x3(implementation=implementation), x)
  want = ref.conv2d_same(x[0].astype(np.float64), np.asarray(params["kernel"], np.float64), groups=6)
  np.testing.assert_allclose(y[0], want, atol=1e-5)


def test_pixel_shuffle_orders_channels_as_pytorch():
  x = RNG.standard_normal((1, 3, 4, 2 * 4)).astype(np.float32)
  got = np.asarray(layers.pixel_shuffle(jnp.asarray(x), 2))[0]
  np.testing.assert_array_equal(got, ref.pixel_shuffle(x[0], 2))
  back = np.asarray(layers.pixel_unshuffle(jnp.asarray(got[None]), 2))
  np.testing.assert_array_equal(back, x)


def test_pixel_shuffle_matches_torch_when_available():
  torch = pytest.importorskip("torch")
  x = RNG.standard_normal((2, 12, 4, 6)).astype(np.float32)  # NCHW
  want = torch.nn.PixelShuffle(2)(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
  got = np.asarray(layers.pixel_shuffle(jnp.asarray(x.transpose(0, 2, 3, 1)), 2))
  np.testing.assert_array_equal(got, want)
  want_un = torch.nn.PixelUnshuffle(2)(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
  got_un = np.asarray(layers.pixel_unshuffle(jnp.asarray(x.transpose(0, 2, 3, 1)), 2))
  np.testing.assert_array_equal(got_un, want_un)


def test_relative_position_index_equals_rel_to_abs():
  # rel_to_abs applied to a table of indices reveals which entry each (query, key) reads.
  ws, ows = 8, 12
  table = np.broadcast_to(np.arange(2 * ows - 1, dtype=np.float64), (1, ws, 2 * ows - 1))
  np.testing.assert_array_equal(ref.rel_to_abs(table.copy())[0], attention.relative_position_index(ws, ows))


@pytest.mark.parametrize("implementation", ["reshape", "patches"])
def test_overlapping_windows_match_unfold_loop(implementation):
  x = RNG.standard_normal((1, 16, 24, 3)).astype(np.float32)
  got = np.asarray(attention.overlapping_windows(jnp.asarray(x), 8, 4, implementation))
  xp = np.pad(x[0], ((2, 2), (2, 2), (0, 0)))
  for wy in range(2):
    for wx in range(3):
      np.testing.assert_array_equal(got[0, wy, wx], xp[8 * wy:8 * wy + 12, 8 * wx:8 * wx + 12])


@pytest.mark.parametrize("window_impl", ["reshape", "patches"])
def test_overlapping_window_attention_matches_numpy_loop(window_impl):
  heads, dim_head = 2, 8
  x = RNG.standard_normal((1, 16, 24, 10)).astype(np.float32)
  module = attention.OverlappingWindowAttention(heads, 8, 0.5, dim_head, window_impl=window_impl)
  p, y = _init_apply(module, x)
  f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
  want = ref.overlapping_window_attention(
      f64(x[0]), f64(p["qkv"]["kernel"]), f64(p["project_out"]["kernel"]), f64(p["rel_height"]),
      f64(p["rel_width"]), heads, dim_head, 8, 4)
  np.testing.assert_allclose(y[0], want, atol=2e-5, rtol=1e-4)


def test_channel_attention_matches_numpy():
  heads = 2
  x = RNG.standard_normal((1, 6, 10, 8)).astype(np.float32)
  p, y = _init_apply(attention.ChannelAttention(heads), x)
  f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
  want = ref.channel_attention(f64(x[0]), f64(p["qkv"]["kernel"]), f64(p["qkv_dwconv"]["kernel"]),
                               f64(p["project_out"]["kernel"]), f64(p["temperature"]), heads)
  np.testing.assert_allclose(y[0], want, atol=2e-5, rtol=1e-4)


def test_prompt_cross_attention_attends_over_a_prompt_of_another_size():
  heads = 4
  x = RNG.standard_normal((1, 4, 6, 16)).astype(np.float32)
  zs = RNG.standard_normal((1, 3, 5, 16)).astype(np.float32)
  zt = RNG.standard_normal((1, 3, 5, 16)).astype(np.float32)
  p, y = _init_apply(attention.PromptCrossAttention(heads), x, zs, zt)
  f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
  want = ref.prompt_cross_attention(f64(x[0]), f64(zs[0]), f64(zt[0]), f64(p["to_q"]["kernel"]),
                                    f64(p["to_k"]["kernel"]), f64(p["to_v"]["kernel"]),
                                    f64(p["project_out"]["kernel"]), heads)
  np.testing.assert_allclose(y[0], want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("implementation", ["shifted", "grouped", CPU_KERNEL])
def test_gated_feed_forward_matches_numpy_with_exact_gelu(implementation):
  # hidden = 21: one whole 16-channel block of the CPU kernel plus five leftover channels.
  from scipy.special import erf
  x = RNG.standard_normal((2, 5, 6, 8)).astype(np.float32)
  p, y = _init_apply(GatedDconvFeedForward(2.66, True, depthwise_impl=implementation), x)
  f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
  hidden = int(8 * 2.66)
  for image in range(2):
    h = f64(x[image]) @ f64(p["project_in"]["kernel"]) + f64(p["project_in"]["bias"])
    h = ref.conv2d_same(h, f64(p["dwconv"]["kernel"]), 2 * hidden) + f64(p["dwconv"]["bias"])
    gate, value = h[..., :hidden], h[..., hidden:]
    want = ((0.5 * gate * (1 + erf(gate / np.sqrt(2))) * value) @ f64(p["project_out"]["kernel"])
            + f64(p["project_out"]["bias"]))
    np.testing.assert_allclose(y[image], want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("implementation", ["shifted", CPU_KERNEL])
def test_gated_feed_forward_gradients_match_autodiff_of_the_grouped_convolution(implementation):
  # The custom VJPs (the CPU kernel recomputes the convolution and differentiates GELU itself)
  # against plain autodiff through lax's grouped conv and jax.nn.gelu.
  x = jnp.asarray(RNG.standard_normal((2, 6, 19, 16)).astype(np.float32))
  cot = jnp.asarray(RNG.standard_normal((2, 6, 19, 16)).astype(np.float32))
  params = {"params": _randomise(
      GatedDconvFeedForward(2.66, True).init(jax.random.key(0), x)["params"])}
  got, want = (_grads(GatedDconvFeedForward(2.66, True, depthwise_impl=impl), params, x, cot)
               for impl in (implementation, "grouped"))
  for path, a in jax.tree_util.tree_leaves_with_path(got):
    b = dict(jax.tree_util.tree_leaves_with_path(want))[path]
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-4, rtol=1e-4,
                               err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("conv", [layers.shifted_depthwise_conv, pytest.param(
    cpu_kernels.depthwise_conv3x3, marks=requires_cpu_kernel)], ids=["shifted", "cpu_kernel"])
@pytest.mark.parametrize("shape", [(2, 7, 9, 5), (1, 12, 64, 512), (1, 9, 128, 512), (3, 1, 2, 37)])
def test_depthwise_gradients_match_the_grouped_convolution(conv, shape):
  # The custom VJPs (shifted multiply-adds, compiled CPU kernel) against autodiff of lax's
  # grouped conv. Odd channel counts exercise the kernel's leftover lanes, one-row images
  # its borders.
  channels = shape[-1]
  x = jnp.asarray(RNG.standard_normal(shape).astype(np.float32))
  kernel = jnp.asarray(RNG.standard_normal((3, 3, channels)).astype(np.float32))
  cot = jnp.asarray(RNG.standard_normal(shape).astype(np.float32))

  def grouped(x, k):
    return jax.lax.conv_general_dilated(x, k[:, :, None, :], (1, 1), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=channels)

  want_y, grouped_vjp = jax.vjp(grouped, x, kernel)
  y, conv_vjp = jax.vjp(jax.jit(conv), x, kernel)
  np.testing.assert_allclose(y, want_y, atol=1e-5)
  for a, b in zip(conv_vjp(cot), grouped_vjp(cot)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4, rtol=1e-5)
  # The kernel sums its per-chunk partial gradients in a fixed order: bitwise reproducible.
  vjp = jax.jit(lambda x, k, c: jax.vjp(conv, x, k)[1](c))
  for a, b in zip(vjp(x, kernel, cot), vjp(x, kernel, cot)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@requires_cpu_kernel
@pytest.mark.parametrize("shape, features", [((2, 6, 9, 5), 37), ((1, 33, 40, 16), 64)])
def test_conv3x3_with_kernel_grad_matches_nn_conv(shape, features):
  # The compiled kernel gradient against autodiff of XLA's convolution, through the module the
  # model uses; same params as nn.Conv (so checkpoints do not see the difference). 37 output
  # channels exercise the vector blocks and the leftover lanes, 40 pixels per row several tiles.
  x = jnp.asarray(RNG.standard_normal(shape).astype(np.float32))
  cot = jnp.asarray(RNG.standard_normal((*shape[:-1], features)).astype(np.float32))
  ours = layers.conv3x3(features, True, jnp.float32, "conv", cpu_kernel=True)
  xla = layers.conv3x3(features, True, jnp.float32, "conv")
  assert isinstance(ours, layers.Conv3x3WithKernelGrad) and not isinstance(xla, type(ours))
  params = ours.init(jax.random.key(3), x)
  jax.tree.map(np.testing.assert_array_equal, params, xla.init(jax.random.key(3), x))
  params = {"params": _randomise(params["params"])}

  np.testing.assert_allclose(ours.apply(params, x), xla.apply(params, x), atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5),
               _grads(ours, params, x, cot), _grads(xla, params, x, cot))


@requires_cpu_kernel
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 9, 16, 48), (2, 4, 6, 37)])
def test_layer_norm_kernel_gradients_match_autodiff(shape):
  # The compiled backward pass (statistics recomputed per pixel, per-chunk weight/bias sums)
  # against autodiff of the jnp LayerNorm; 37 channels exercise the leftover lanes.
  x = jnp.asarray(RNG.standard_normal(shape).astype(np.float32) * 2 + 1)
  cot = jnp.asarray(RNG.standard_normal(shape).astype(np.float32))
  params = {"params": _randomise(layers.LayerNorm().init(jax.random.key(0), x)["params"])}

  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5),
               _grads(layers.LayerNorm(cpu_kernel=True), params, x, cot),
               _grads(layers.LayerNorm(), params, x, cot))
