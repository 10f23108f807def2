"""Each layer of the model against an independent numpy reference (tests/reference_numpy.py), and
each formulation the ops layer offers (`genlv_jax/models/ops.py`) against the others."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference_numpy as ref
from conftest import requires_cpu_kernel
from genlv_jax.models import attention, blocks, layers, ops
from genlv_jax.models.blocks import GatedDconvFeedForward
from genlv_jax.models.prompt_encoder import PromptEncoder

RNG = np.random.default_rng(0)


def _choice(field, choice):
  """One `ops` choice as a pytest param (the CPU kernels skip where they cannot be built)."""
  if choice == "cpu_kernel":
    return pytest.param(choice, marks=requires_cpu_kernel, id=f"{field}={choice}")
  return pytest.param(choice, id=f"{field}={choice}")


def _choices(field, exclude=()):
  return [_choice(field, c) for c in ops.CHOICES[field] if c not in exclude]


def _random_params(module, *inputs, seed=1):
  """Params of `module` with random values (no init compiled: its shapes come from eval_shape).

  Init values (LayerNorm 1/0, temperatures 1) would hide mistakes: weights and temperatures
  are 1 + 0.3 N(0, 1), biases 0.3 N(0, 1), kernels and tables N(0, 1 / fan_in).
  """
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(module.init, jax.random.key(0), *inputs)["params"]

  def draw(path, leaf):
    noise = rng.standard_normal(leaf.shape)
    name = path[-1].key
    if name in ("weight", "temperature"):
      value = 1 + 0.3 * noise
    elif name == "bias":
      value = 0.3 * noise
    else:
      value = noise / np.sqrt(np.prod(leaf.shape[:-1]))
    return value.astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _grads(module, variables, *inputs_and_cot):
  """Gradients of sum(module(*inputs) * cot) with respect to (variables, inputs...)."""
  *inputs, cot = inputs_and_cot
  loss = lambda v, *x: jnp.sum(module.apply(v, *x) * cot)  # noqa: E731
  return jax.jit(jax.grad(loss, argnums=tuple(range(len(inputs) + 1))))(variables, *inputs)


def _init_apply(module, *inputs):
  """Random params for `module` and its output (float64) on `inputs`, traced in the current
  ops context."""
  params = _random_params(module, *inputs)
  return params, np.asarray(jax.jit(module.apply)({"params": params}, *inputs), np.float64)


def f64(a):
  return np.asarray(a, np.float64)


def _f64_tree(params):
  return jax.tree.map(f64, params)


# ----------------------------------------------------------------------------- every ops choice
# Each op under each of its choices computes the same function and the same gradients. The
# reference choice is plain autodiff of a lax formulation; the op's output is also checked
# against numpy, and each choice is checked to be the formulation it names (a choice that were
# silently ignored would pass the comparison trivially).


def _depthwise_inputs(shape):
  return (RNG.standard_normal(shape), RNG.standard_normal((3, 3, shape[-1])))


def _gated_inputs(shape, bias):
  x, k = _depthwise_inputs(shape)
  return (x, k, RNG.standard_normal(shape[-1])) if bias else (x, k)


def _numpy_depthwise(x, k):
  return np.stack([ref.conv2d_same(image, k[:, :, None, :], groups=k.shape[-1]) for image in x])


def _numpy_gated(x, k, b=None):
  y = _numpy_depthwise(x, k) + (0 if b is None else b)
  half = y.shape[-1] // 2
  return ref.gelu(y[..., :half]) * y[..., half:]


def _numpy_windows(x, ws, overlap):
  """torch's nn.Unfold(ows, stride=ws, padding=overlap/2), window by window."""
  pad, ows = overlap // 2, ws + overlap
  xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  b, h, w, c = x.shape
  out = np.zeros((b, h // ws, w // ws, ows, ows, c))
  for wy in range(h // ws):
    for wx in range(w // ws):
      out[:, wy, wx] = xp[:, ws * wy:ws * wy + ows, ws * wx:ws * wx + ows]
  return out


def _numpy_attention(q, k, v, bias, scale):
  return np.stack([ref.attention(q[i], k[i], v[i], scale, bias[i]) for i in range(q.shape[0])])


# name -> (ops field, reference choice, op, {case id: (inputs, numpy reference)})
OP_CASES = {
    "depthwise_conv3x3": ("depthwise", "grouped", ops.depthwise_conv3x3, {
        # Odd channel counts exercise the CPU kernel's leftover lanes, one-row images its borders.
        "2x7x9x5": (_depthwise_inputs((2, 7, 9, 5)), _numpy_depthwise),
        "3x1x2x37": (_depthwise_inputs((3, 1, 2, 37)), _numpy_depthwise),
    }),
    "gated_depthwise_conv3x3": ("depthwise", "grouped", ops.gated_depthwise_conv3x3, {
        # hidden 21: whole vector blocks of the CPU kernel plus a tail block that overlaps them
        # (8 or 16 lanes); hidden 5: scalar channels only.
        "2x7x9x42+bias": (_gated_inputs((2, 7, 9, 42), True), _numpy_gated),
        "1x5x3x10-nobias": (_gated_inputs((1, 5, 3, 10), False) + (None,), _numpy_gated),
    }),
    "conv3x3": ("conv", "xla", ops.conv3x3, {
        # The compiled forward pass and kernel gradient run from 16 output channels: 37
        # exercises their blocks and leftover lanes, rows of 9 and 40 pixels whole and partial
        # 6-pixel tiles; 16 -> 64 runs the input gradient in the compiled forward pass too.
        "2x7x9x5->37": ((RNG.standard_normal((2, 7, 9, 5)), RNG.standard_normal((3, 3, 5, 37))),
                        lambda x, k: np.stack([ref.conv2d_same(i, k) for i in x])),
        "1x33x40x16->64": ((RNG.standard_normal((1, 33, 40, 16)),
                            RNG.standard_normal((3, 3, 16, 64)) * 0.2),
                           lambda x, k: np.stack([ref.conv2d_same(i, k) for i in x])),
    }),
    "layer_norm": ("layer_norm", "xla", lambda x, w, b: ops.layer_norm(x, w, b, 1e-5), {
        "2x5x7x37": ((RNG.standard_normal((2, 5, 7, 37)) * 2 + 1, RNG.standard_normal(37),
                      RNG.standard_normal(37)), ref.layer_norm),
        "1x9x16x48": ((RNG.standard_normal((1, 9, 16, 48)) * 3 - 1, RNG.standard_normal(48),
                       RNG.standard_normal(48)), ref.layer_norm),
    }),
    "overlapping_windows": ("windows", "patches", None, {
        # ws 5, overlap 2 (ows 7): odd windows on a 15x25 map with 3 channels; and the model's 8/4.
        "ws5-overlap2-2x15x25x3": ((RNG.standard_normal((2, 15, 25, 3)),),
                                   lambda x: _numpy_windows(x, 5, 2)),
        "ws8-overlap4-1x16x24x7": ((RNG.standard_normal((1, 16, 24, 7)),),
                                   lambda x: _numpy_windows(x, 8, 4)),
    }),
    "dot_product_attention": ("attention", "xla", None, {
        # 7 queries attend to 13 keys, 3 heads of 5 channels, with an additive bias.
        "q7-k13-h3-d5": ((RNG.standard_normal((2, 7, 3, 5)), RNG.standard_normal((2, 13, 3, 5)),
                          RNG.standard_normal((2, 13, 3, 5)), RNG.standard_normal((2, 3, 7, 13))),
                         lambda q, k, v, b: _numpy_attention(q, k, v, b, 0.37)),
    }),
}


def _op_function(name, case):
  op = OP_CASES[name][2]
  if name == "overlapping_windows":
    ws, overlap = (5, 2) if case.startswith("ws5") else (8, 4)
    return lambda x: ops.overlapping_windows(x, ws, overlap)
  if name == "dot_product_attention":
    return lambda q, k, v, b: ops.dot_product_attention(q, k, v, scale=0.37, bias=b)
  return op


def _is_formulation(jaxpr: str, field: str, choice: str) -> bool:
  """Whether a traced gradient program is the formulation `choice` names."""
  kernel = "genlv_" in jaxpr                      # the FFI targets of cpu_kernels
  conv = "conv_general_dilated" in jaxpr
  return {
      "cpu_kernel": kernel,
      "shifted": not kernel and not conv,         # nine multiply-adds, no convolution
      "grouped": not kernel and "feature_group_count" in jaxpr,
      "reshape": not conv,
      "patches": conv,
      # The head-major matmuls batch over (batch, heads) on both operands; jax's XLA path
      # batches its einsums over axes 0 and 2 of the (B, T, heads, D) layout.
      "matmul": "([0, 1], [0, 1])" in jaxpr and "([0, 2], [0, 2])" not in jaxpr,
      "xla": not kernel and "([0, 2], [0, 2])" in jaxpr if field == "attention" else not kernel,
      "default": not kernel,
  }[choice]


@functools.cache
def _value_and_grads(name, case, choice):
  """(output, gradients of sum(output * cot) w.r.t. every array input, the traced program)
  under one choice; computed once per (op, case, choice)."""
  field, _, _, cases = OP_CASES[name]
  inputs, _ = cases[case]
  arrays = tuple(None if a is None else jnp.asarray(a, jnp.float32) for a in inputs)
  live = [i for i, a in enumerate(arrays) if a is not None]
  fn = _op_function(name, case)

  def f(*xs):
    full = list(arrays)
    for i, x in zip(live, xs):
      full[i] = x
    return fn(*full)

  def value_and_grads(*xs_and_cot):
    y, vjp = jax.vjp(f, *xs_and_cot[:-1])
    return y, vjp(xs_and_cot[-1])

  xs = tuple(arrays[i] for i in live)
  # A fresh function per choice, traced inside `use`: the choice is read when tracing.
  with ops.use(ops.Implementations(**{field: choice})):
    shape = jax.eval_shape(f, *xs).shape
    cot = jnp.asarray(np.random.default_rng(7).standard_normal(shape), jnp.float32)
    traced = jax.jit(value_and_grads).trace(*xs, cot)
    y, grads = traced.lower().compile()(*xs, cot)
  return np.asarray(y), [np.asarray(g) for g in grads], str(traced.jaxpr)


def _assert_close(a, b, what):
  scale = max(1.0, float(np.abs(b).max()))
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


def _op_params():
  out = []
  for name, (field, reference, _, cases) in OP_CASES.items():
    for case in cases:
      for choice in ops.CHOICES[field]:
        marks = [requires_cpu_kernel] if choice == "cpu_kernel" else []
        out.append(pytest.param(name, case, choice, marks=marks,
                                id=f"{name}-{case}-{field}={choice}"))
  return out


@pytest.mark.parametrize("name, case, choice", _op_params())
def test_every_ops_choice_computes_the_same_function_and_gradients(name, case, choice):
  if choice == "cudnn":
    pytest.skip("cuDNN's fused attention runs on GPUs in half precision only (not float32)")
  field, reference, _, cases = OP_CASES[name]
  inputs, numpy_fn = cases[case]
  y, grads, jaxpr = _value_and_grads(name, case, choice)
  assert _is_formulation(jaxpr, field, choice), f"ops.{field}={choice!r} was not the one used"
  want = numpy_fn(*(None if a is None else f64(np.float32(a)) for a in inputs))
  _assert_close(y, want, f"output against numpy under {field}={choice}")
  if choice == reference:
    return
  want_y, want_grads, _ = _value_and_grads(name, case, reference)
  _assert_close(y, want_y, f"output under {field}={choice} vs {reference}")
  assert len(grads) == len(want_grads)
  for i, (g, want_g) in enumerate(zip(grads, want_grads)):
    _assert_close(g, want_g, f"gradient of input {i} under {field}={choice} vs {reference}")


def test_ops_choices_are_validated_and_resolved():
  with pytest.raises(ValueError, match="depthwise"):
    ops.Implementations(depthwise="fast")
  with pytest.raises(ValueError, match="unknown ops field"):
    ops.from_config({"depthwise": "shifted", "convolution": "xla"})
  resolved = ops.resolve(ops.Implementations(depthwise="grouped", windows="patches"))
  assert (resolved.depthwise, resolved.windows) == ("grouped", "patches")
  assert "auto" not in (getattr(resolved, f) for f in ops.CHOICES)
  with ops.use(ops.Implementations(depthwise="grouped")) as active:
    assert ops.current() == active and active.depthwise == "grouped"
    with ops.use(ops.Implementations(depthwise="shifted")):
      assert ops.current().depthwise == "shifted"
    assert ops.current().depthwise == "grouped"
  assert ops.current() == ops.resolve()


@pytest.mark.parametrize("depthwise", _choices("depthwise", exclude=("grouped",)))
@pytest.mark.parametrize("shape", [(1, 12, 64, 512), (1, 9, 128, 512)])
def test_depthwise_gradients_match_the_grouped_convolution_at_model_widths(depthwise, shape):
  # The custom VJPs (shifted multiply-adds, compiled CPU kernel) against autodiff of lax's
  # grouped conv, at widths where the kernel splits the work into chunks.
  channels = shape[-1]
  x = jnp.asarray(RNG.standard_normal(shape).astype(np.float32))
  kernel = jnp.asarray(RNG.standard_normal((3, 3, channels)).astype(np.float32))
  cot = jnp.asarray(RNG.standard_normal(shape).astype(np.float32))

  def grouped(x, k):
    return jax.lax.conv_general_dilated(x, k[:, :, None, :], (1, 1), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=channels)

  want_y, grouped_vjp = jax.vjp(grouped, x, kernel)
  with ops.use(ops.Implementations(depthwise=depthwise)):
    y = jax.jit(ops.depthwise_conv3x3)(x, kernel)
    vjp = jax.jit(lambda x, k, c: jax.vjp(ops.depthwise_conv3x3, x, k)[1](c))
    grads, again = vjp(x, kernel, cot), vjp(x, kernel, cot)
  np.testing.assert_allclose(y, want_y, atol=1e-5)
  for a, b in zip(grads, grouped_vjp(cot)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4, rtol=1e-5)
  # The kernel sums its per-chunk partial gradients in a fixed order: bitwise reproducible.
  for a, b in zip(grads, again):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ----------------------------------------------------------------------------- layers vs numpy


@pytest.mark.parametrize("layer_norm", _choices("layer_norm"))
def test_layer_norm_matches_numpy_with_float32_statistics_under_bfloat16(layer_norm):
  x = RNG.standard_normal((2, 5, 7, 12)).astype(np.float32) * 3 + 1
  with ops.use(ops.Implementations(layer_norm=layer_norm)):
    params, y = _init_apply(layers.LayerNorm(), x)
    y16 = layers.LayerNorm(dtype=jnp.bfloat16).apply({"params": params}, x.astype(jnp.bfloat16))
  np.testing.assert_allclose(y, ref.layer_norm(f64(x), params["weight"], params["bias"]),
                             atol=1e-5)
  assert y16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y16, np.float64), y, atol=0.05 * np.abs(y).max())


@pytest.mark.parametrize("depthwise", _choices("depthwise"))
def test_depthwise_conv_layer_matches_direct_loop(depthwise):
  x = RNG.standard_normal((1, 9, 11, 6)).astype(np.float32)
  with ops.use(ops.Implementations(depthwise=depthwise)):
    params, y = _init_apply(layers.DepthwiseConv3x3(use_bias=True), x)
  want = ref.conv2d_same(f64(x[0]), f64(params["kernel"]), groups=6) + params["bias"]
  np.testing.assert_allclose(y[0], want, atol=1e-5)


def test_conv3x3_layer_matches_direct_loop_with_pytorch_layout():
  x = RNG.standard_normal((2, 9, 11, 6)).astype(np.float32)
  params, y = _init_apply(layers.Conv3x3(17, use_bias=True), x)
  assert params["kernel"].shape == (3, 3, 6, 17)
  for i in range(2):
    want = ref.conv2d_same(f64(x[i]), f64(params["kernel"])) + params["bias"]
    np.testing.assert_allclose(y[i], want, atol=1e-5)


def test_pixel_shuffle_orders_channels_as_pytorch():
  x = RNG.standard_normal((1, 3, 4, 2 * 4)).astype(np.float32)
  got = np.asarray(layers.pixel_shuffle(jnp.asarray(x), 2))[0]
  np.testing.assert_array_equal(got, ref.pixel_shuffle(x[0], 2))
  back = np.asarray(layers.pixel_unshuffle(jnp.asarray(got[None]), 2))
  np.testing.assert_array_equal(back, x)
  y = RNG.standard_normal((1, 6, 4, 5)).astype(np.float32)
  np.testing.assert_array_equal(np.asarray(layers.pixel_unshuffle(jnp.asarray(y), 2))[0],
                                ref.pixel_unshuffle(y[0], 2))


def test_pixel_shuffle_matches_torch_when_available():
  torch = pytest.importorskip("torch")
  x = RNG.standard_normal((2, 12, 4, 6)).astype(np.float32)  # NCHW
  want = torch.nn.PixelShuffle(2)(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
  got = np.asarray(layers.pixel_shuffle(jnp.asarray(x.transpose(0, 2, 3, 1)), 2))
  np.testing.assert_array_equal(got, want)
  want_un = torch.nn.PixelUnshuffle(2)(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
  got_un = np.asarray(layers.pixel_unshuffle(jnp.asarray(x.transpose(0, 2, 3, 1)), 2))
  np.testing.assert_array_equal(got_un, want_un)
  np.testing.assert_array_equal(ref.pixel_unshuffle(x[0].transpose(1, 2, 0), 2),
                                want_un[0])


def test_relative_position_index_equals_rel_to_abs():
  # rel_to_abs applied to a table of indices reveals which entry each (query, key) reads.
  ws, ows = 8, 12
  table = np.broadcast_to(np.arange(2 * ows - 1, dtype=np.float64), (1, ws, 2 * ows - 1))
  np.testing.assert_array_equal(ref.rel_to_abs(table.copy())[0], attention.relative_position_index(ws, ows))


@pytest.mark.parametrize("windows", _choices("windows"))
def test_overlapping_window_attention_matches_numpy_loop(windows):
  heads, dim_head = 2, 8
  x = RNG.standard_normal((1, 16, 24, 10)).astype(np.float32)
  module = attention.OverlappingWindowAttention(heads, 8, 0.5, dim_head)
  with ops.use(ops.Implementations(windows=windows)):
    p, y = _init_apply(module, x)
  want = ref.overlapping_window_attention(
      f64(x[0]), f64(p["qkv"]["kernel"]), f64(p["project_out"]["kernel"]), f64(p["rel_height"]),
      f64(p["rel_width"]), heads, dim_head, 8, 4)
  np.testing.assert_allclose(y[0], want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("heads,bias", [(1, False), (2, False), (4, True)])
def test_channel_attention_matches_numpy(heads, bias):
  # Random per-head temperatures: the layer's masked all-channel logits must still give each
  # head its own softmax and its own temperature.
  x = RNG.standard_normal((1, 6, 10, 16)).astype(np.float32)
  p, y = _init_apply(attention.ChannelAttention(heads, use_bias=bias), x)
  get = lambda layer, name: f64(p[layer][name]) if bias else None  # noqa: E731
  want = ref.channel_attention_with_bias(
      f64(x[0]), f64(p["qkv"]["kernel"]), get("qkv", "bias"), f64(p["qkv_dwconv"]["kernel"]),
      get("qkv_dwconv", "bias"), f64(p["project_out"]["kernel"]), get("project_out", "bias"),
      f64(p["temperature"]), heads)
  assert len(set(np.asarray(p["temperature"]).tolist())) == heads
  np.testing.assert_allclose(y[0], want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("depthwise", _choices("depthwise"))
def test_gated_feed_forward_matches_numpy_with_exact_gelu(depthwise):
  # hidden = 21: one whole 16-channel block of the CPU kernel plus five leftover channels.
  x = RNG.standard_normal((2, 5, 6, 8)).astype(np.float32)
  with ops.use(ops.Implementations(depthwise=depthwise)):
    p, y = _init_apply(GatedDconvFeedForward(2.66, True), x)
  assert p["project_out"]["kernel"].shape == (int(8 * 2.66), 8)
  for image in range(2):
    np.testing.assert_allclose(y[image], ref.feed_forward(f64(x[image]), _f64_tree(p)),
                               atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("depthwise", _choices("depthwise", exclude=("grouped",)))
def test_gated_feed_forward_gradients_match_autodiff_of_the_grouped_convolution(depthwise):
  # The custom VJPs (the CPU kernel recomputes the convolution and differentiates GELU itself)
  # against plain autodiff through lax's grouped conv and jax.nn.gelu, through the module.
  x = jnp.asarray(RNG.standard_normal((2, 6, 19, 16)).astype(np.float32))
  cot = jnp.asarray(RNG.standard_normal((2, 6, 19, 16)).astype(np.float32))
  module = GatedDconvFeedForward(2.66, True)
  params = {"params": _random_params(module, x)}
  got_want = []
  for impl in (depthwise, "grouped"):
    with ops.use(ops.Implementations(depthwise=impl)):
      got_want.append(_grads(module, params, x, cot))
  got, want = got_want
  for path, a in jax.tree_util.tree_leaves_with_path(got):
    b = dict(jax.tree_util.tree_leaves_with_path(want))[path]
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-4, rtol=1e-4,
                               err_msg=jax.tree_util.keystr(path))


# ----------------------------------------------------------------------------- GenLV's new pieces


def test_prompt_encoder_matches_the_authors_encoder_in_numpy():
  # Width 4, out_dim 16, a 16x24 prompt: three pixel-unshuffles give 2x3 tokens of 16 channels.
  image = RNG.random((2, 16, 24, 3)).astype(np.float32)
  module = PromptEncoder(width=4, out_dim=16)
  params, y = _init_apply(module, image)
  assert y.shape == (2, 2, 3, 16)
  p = _f64_tree(params)
  for level in (1, 2, 3):  # BasicSR's make_layer: a list of ResidualBlockNoBN
    group = p.pop(f"fea_level{level}")
    p[f"fea_level{level}"] = [group[f"layer_{i}"] for i in range(len(group))]
  widths = [p[f"channel_reduction{level}"]["kernel"].shape for level in (1, 2, 3)]
  assert widths == [(16, 8), (32, 16), (64, 32)]  # 4c -> 2c after each unshuffle, nf = 4
  for i in range(2):
    want = ref.prompt_encoder(f64(image[i]), p)
    np.testing.assert_allclose(y[i].reshape(-1, 16), want, atol=1e-4, rtol=1e-4)


def _spat_cross_attn_params(p):
  return {name: {k: f64(v) for k, v in p[name].items()} for name in p}


@pytest.mark.parametrize("mode", ["self", "cross"])
def test_spat_cross_attn_matches_the_authors_attention_in_numpy(mode):
  # Cross-attention to a prompt of another token count (15 keys for 24 queries).
  heads = 4
  x = RNG.standard_normal((2, 4, 6, 16)).astype(np.float32)
  zs = RNG.standard_normal((2, 3, 5, 16)).astype(np.float32)
  zt = RNG.standard_normal((2, 3, 5, 16)).astype(np.float32)
  context = (zs, zt) if mode == "cross" else ()
  p, y = _init_apply(attention.SpatCrossAttn(heads), x, *context)
  assert set(p) == {"to_q", "to_k", "to_v", "to_out"} and set(p["to_out"]) == {"kernel", "bias"}
  assert all(set(p[n]) == {"kernel"} for n in ("to_q", "to_k", "to_v"))
  p = _spat_cross_attn_params(p)
  for i in range(2):
    tokens = f64(x[i]).reshape(-1, 16)
    kv = (f64(zs[i]).reshape(-1, 16), f64(zt[i]).reshape(-1, 16)) if mode == "cross" else ()
    want = ref.spat_cross_attn(tokens, p, heads, *kv)
    np.testing.assert_allclose(y[i].reshape(-1, 16), want, atol=2e-5, rtol=1e-4)
  if mode == "cross":  # keys come from z_S and values from z_T: swapping them changes the output
    swapped = attention.SpatCrossAttn(heads).apply(
        {"params": jax.tree.map(np.float32, p)}, x, zt, zs)
    assert np.abs(np.asarray(swapped) - y).max() > 1e-3


@pytest.mark.parametrize("bias", [False, True])
def test_spat_cross_attn_block_matches_the_authors_block_in_numpy(bias):
  heads, c = 2, 16
  x = RNG.standard_normal((2, 4, 6, c)).astype(np.float32)
  zs = RNG.standard_normal((2, 3, 5, c)).astype(np.float32)
  zt = RNG.standard_normal((2, 3, 5, c)).astype(np.float32)
  module = blocks.SpatCrossAttnBlock(heads, 2.66, bias)
  params, y = _init_apply(module, x, zs, zt)
  assert {f"norm{i}" for i in range(1, 6)} <= set(params)
  p = _f64_tree(params)
  for i in range(2):
    want = ref.spat_cross_attn_block(f64(x[i]), f64(zs[i]).reshape(-1, c),
                                     f64(zt[i]).reshape(-1, c), p, heads)
    np.testing.assert_allclose(y[i], want, atol=1e-4, rtol=1e-4)
