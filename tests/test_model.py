"""The whole GenLV model (tiny config): shapes, padding, gradients, dtypes, scan/remat, the ops
choices, the missing global residual, and the exact sizes of the released variants."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import config_path, requires_cpu_kernel
from genlv_jax import api
from genlv_jax.bridge.convert import stack_blocks, unstack_blocks
from genlv_jax.config_io import load_config
from genlv_jax.models import PAD_MULTIPLE, build_model, ops
from genlv_jax.models.params import flatten_params, unflatten_params

RNG = np.random.default_rng(0)

# The authors' modules, counted with `sum(p.numel() for p in model.parameters())`:
# (variant, prompt_encoder_width) -> parameters. Width 32 is their GenLV-101 file, 64 GenLV-30's.
PARAM_COUNTS = {
    ("base", 32): 32_743_960, ("base", 64): 38_821_432,
    ("large", 32): 94_196_822, ("large", 64): 100_569_206,
    ("huge", 32): 204_592_220, ("huge", 64): 211_259_516,
    ("giant", 32): 394_862_860, ("giant", 64): 401_825_068,
}

# The plain-XLA formulation every other combination of ops choices is compared with.
REFERENCE_OPS = ops.Implementations(depthwise="shifted", windows="reshape", attention="xla",
                                    conv="xla", layer_norm="xla")


@pytest.fixture(scope="module")
def tiny():
  config = load_config(config_path("tiny"))
  model = build_model(config)
  params = api.init_params(model, config)
  # Perturb: init leaves LayerNorms at 1/0 and temperatures at 1, which would hide mistakes.
  rng = np.random.default_rng(1)
  params = jax.tree.map(lambda p: p + 0.05 * rng.standard_normal(p.shape).astype(np.float32), params)
  forward = jax.jit(lambda p, *a: model.apply({"params": p}, *a))
  return config, model, params, forward


def _images(*shape):
  return jnp.asarray(RNG.random(shape, np.float32))


# One input and prompt size for most tests, so that they share compiled programs.
X, PS, PT = _images(1, 64, 64, 3), _images(1, 24, 40, 3), _images(1, 24, 40, 3)


def _count(abstract) -> int:
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(abstract))


def test_any_input_size_is_reflect_padded_and_cropped_back(tiny):
  # Odd sizes for the input and for the prompts: both are padded inside the model.
  _, model, params, forward = tiny
  x, ps, pt = _images(1, 20, 37, 3), _images(1, 21, 37, 3), _images(1, 21, 37, 3)
  y = forward(params, x, ps, pt)
  assert y.shape == x.shape
  # Independent padding: numpy's reflect, bottom/right, to the model's multiple (the input)
  # and to a multiple of 8 (the prompts, for the encoder's three pixel-unshuffles).
  m = getattr(model, "pad_multiple", PAD_MULTIPLE)
  padded = np.pad(np.asarray(x), ((0, 0), (0, -20 % m), (0, -37 % m), (0, 0)), mode="reflect")
  pad_prompt = lambda p: np.pad(np.asarray(p), ((0, 0), (0, 3), (0, 3), (0, 0)), mode="reflect")  # noqa: E731
  y_padded = forward(params, jnp.asarray(padded), pad_prompt(ps), pad_prompt(pt))
  np.testing.assert_allclose(np.asarray(y), np.asarray(y_padded)[:, :20, :37], atol=1e-6)


def test_prompts_of_another_size_than_the_input_condition_the_output(tiny):
  _, _, params, forward = tiny
  y = forward(params, X, PS, PT)                       # a 64x64 input, 24x40 prompts
  assert y.shape == X.shape
  other = forward(params, X, *(_images(1, 24, 40, 3) for _ in range(2)))
  swapped = forward(params, X, PT, PS)                 # keys from P_S, values from P_T
  assert float(jnp.abs(y - other).max()) > 1e-4
  assert float(jnp.abs(y - swapped).max()) > 1e-4


@pytest.mark.parametrize("source, target", [((1, 24, 40, 3), (1, 24, 48, 3)),
                                            ((1, 24, 40, 3), (1, 32, 40, 3)),
                                            ((1, 24, 40, 3), (2, 24, 40, 3))])
def test_prompt_source_and_target_of_different_shapes_are_refused(tiny, source, target):
  # z_S gives the cross-attention's keys and z_T its values: one token each per position.
  _, model, params, _ = tiny
  x = jnp.zeros((target[0], 64, 64, 3))
  with pytest.raises(ValueError, match="same shape"):
    jax.eval_shape(lambda p: model.apply({"params": p}, x, jnp.zeros(source), jnp.zeros(target)),
                   params)


def test_genlv_has_no_global_residual(tiny):
  # With the last conv zeroed GenLV outputs exactly zero; a `+ input` would give the input.
  _, _, params, forward = tiny
  zeroed = {**params, "output": jax.tree.map(jnp.zeros_like, params["output"])}
  assert set(params["output"]) == {"kernel"}  # tiny has bias=False: nothing else to zero
  np.testing.assert_array_equal(np.asarray(forward(zeroed, X, PS, PT)), 0.0)
  assert float(jnp.abs(forward(params, X, PS, PT)).max()) > 1e-3


GRAD_INPUTS = (X, PS, PT, _images(1, 64, 64, 3))


def _l1_grads(model, params):
  x, ps, pt, target = GRAD_INPUTS
  loss = lambda p: jnp.mean(jnp.abs(model.apply({"params": p}, x, ps, pt) - target))  # noqa: E731
  return jax.jit(jax.grad(loss))(params)


@pytest.fixture(scope="module")
def grads(tiny):
  _, model, params, _ = tiny
  return _l1_grads(model, params)


def _assert_same_grads(got, want, rtol):
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want)):
    scale = float(np.abs(np.asarray(b)).max())
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=rtol * scale + 1e-8,
                               err_msg=jax.tree_util.keystr(path))


def test_every_parameter_receives_a_nonzero_gradient(grads):
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  dead = [jax.tree_util.keystr(k) for k, g in flat if not np.any(np.asarray(g) != 0)]
  assert not dead, f"parameters without gradient: {dead}"
  assert all(np.all(np.isfinite(np.asarray(g))) for _, g in flat)


def test_bfloat16_compute_is_close_to_float32_with_float32_params(tiny):
  config, _, params, forward = tiny
  bf16 = build_model(load_config(config, ["dtype=bfloat16"]))
  y32 = np.asarray(forward(params, X, PS, PT))
  y16 = jax.jit(lambda p: bf16.apply({"params": p}, X, PS, PT))(params)
  assert y16.dtype == jnp.float32  # the output stays float32
  err = np.abs(np.asarray(y16) - y32)
  assert err.max() < 0.05 and err.mean() < 0.01, (err.max(), err.mean())
  abstract = api.abstract_params(bf16, config)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(abstract))


def test_scan_over_blocks_is_the_same_function_as_unrolled(tiny):
  config, _, params, forward = tiny
  scanned_cfg = load_config(config, ["model.scan_blocks=true", "remat=true"])
  scanned = build_model(scanned_cfg)
  # The converter's layout functions give the tree the scanned model declares.
  scanned_params = unflatten_params(stack_blocks(flatten_params(params)))
  want = jax.tree.map(lambda s: s.shape, api.abstract_params(scanned, scanned_cfg))
  assert jax.tree.map(np.shape, scanned_params) == want
  assert "blocks" in scanned_params["latent_blocks"]  # the prompted bottleneck is scanned too

  y_scan = jax.jit(lambda p: scanned.apply({"params": p}, X, PS, PT))(scanned_params)
  np.testing.assert_allclose(np.asarray(y_scan), np.asarray(forward(params, X, PS, PT)), atol=1e-5)
  back = unflatten_params(unstack_blocks(flatten_params(scanned_params)))
  assert jax.tree.structure(back) == jax.tree.structure(params)
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params)))


def test_remat_gives_the_same_gradients(tiny, grads):
  config, _, params, _ = tiny
  remat_grads = _l1_grads(build_model(load_config(config, ["remat=true"])), params)
  _assert_same_grads(remat_grads, grads, rtol=1e-5)


@pytest.mark.slow  # each op's gradients are compared across choices in test_layers.py
def test_gradients_are_the_same_under_the_plain_xla_formulations(tiny, grads):
  # `grads` ran with the resolved "auto" choices (the compiled kernels where they build); the
  # library formulations (grouped conv, patches) must give the same training signal.
  _, model, params, _ = tiny
  xla = model.clone(implementations=ops.Implementations(
      depthwise="grouped", windows="patches", attention="xla", conv="xla", layer_norm="xla"))
  _assert_same_grads(_l1_grads(xla, params), grads, rtol=1e-5)


# ----------------------------------------------------------------------------- ops combinations


def _all_combinations():
  return [ops.Implementations(**dict(zip(ops.CHOICES, values)))
          for values in itertools.product(*ops.CHOICES.values())]


# Run by default (the full product is `slow`, `make test-all`): every choice of every field
# at least once; all library formulations; what "auto" picks on one CPU; a mixture.
QUICK_COMBINATIONS = [
    ops.Implementations("grouped", "patches", "default", "xla", "xla"),
    ops.Implementations("cpu_kernel", "reshape", "xla", "cpu_kernel", "cpu_kernel"),
    ops.Implementations("shifted", "patches", "default", "cpu_kernel", "xla"),
]


def _combination_params():
  out = []
  for impls in _all_combinations():
    if impls == REFERENCE_OPS:
      continue
    marks = [requires_cpu_kernel] if "cpu_kernel" in vars(impls).values() else []
    if impls not in QUICK_COMBINATIONS:
      marks.append(pytest.mark.slow)
    out.append(pytest.param(impls, marks=marks,
                            id="/".join(getattr(impls, f) for f in ops.CHOICES)))
  return out


@pytest.fixture(scope="module")
def reference_output(tiny):
  _, model, params, _ = tiny
  reference = model.clone(implementations=REFERENCE_OPS)
  return np.asarray(jax.jit(lambda p: reference.apply({"params": p}, X, PS, PT))(params))


@pytest.mark.parametrize("impls", _combination_params())
def test_tiny_model_output_is_the_same_under_every_combination_of_ops_choices(
    tiny, reference_output, impls):
  if impls.attention == "cudnn":
    pytest.skip("cuDNN's fused attention runs on GPUs in half precision only (not float32)")
  _, model, params, _ = tiny
  variant = model.clone(implementations=impls)
  y = np.asarray(jax.jit(lambda p: variant.apply({"params": p}, X, PS, PT))(params))
  np.testing.assert_allclose(y, reference_output, atol=1e-5, rtol=1e-5)


def test_build_model_takes_the_ops_choice_from_the_config(tiny):
  config = tiny[0]
  model = build_model(load_config(config, ["ops.depthwise=grouped", "ops.windows=patches"]))
  assert model.implementations == ops.Implementations(depthwise="grouped", windows="patches")
  assert build_model(config).implementations == ops.Implementations()
  with pytest.raises(ValueError, match="depthwise"):
    build_model(load_config(config, ["ops.depthwise=fast"]))


# ----------------------------------------------------------------------------- X-Restormer


@pytest.fixture(scope="module")
def xrestormer_sr():
  config = load_config(config_path("xrestormer") + ":sr", ["model.dim=8", "model.num_blocks=(1,1,1,1)",
                                                            "model.num_refinement_blocks=1"])
  model = build_model(config)
  # Random params of the right shapes (compiling the init would cost more than the test).
  rng = np.random.default_rng(2)
  params = jax.tree.map(lambda s: (0.1 * rng.standard_normal(s.shape)).astype(np.float32),
                        api.abstract_params(model, config))
  return model, {"params": params}, _images(1, 10, 12, 3), jax.jit(model.apply)


def test_xrestormer_needs_no_prompt_and_upsamples_like_torch_bilinear(xrestormer_sr):
  _, variables, x, apply = xrestormer_sr
  assert "prompt_encoder" not in variables["params"] and "latent" in variables["params"]
  y = apply(variables, x)
  assert y.shape == (1, 40, 48, 3)
  torch = pytest.importorskip("torch")
  want = torch.nn.functional.interpolate(torch.from_numpy(np.array(x).transpose(0, 3, 1, 2)),
                                         scale_factor=4, mode="bilinear", align_corners=False)
  from genlv_jax.models.genlv import upsample_bilinear
  np.testing.assert_allclose(np.asarray(upsample_bilinear(x, 4)), want.numpy().transpose(0, 2, 3, 1),
                             atol=1e-6)


def test_xrestormer_keeps_its_global_residual(xrestormer_sr):
  # The counterpart of test_genlv_has_no_global_residual: with the last conv zeroed,
  # X-Restormer returns its (upsampled) input, up to the rounding of the upsampling as fused
  # inside the model (1 ulp).
  _, variables, x, apply = xrestormer_sr
  params = variables["params"]
  zeroed = {"params": {**params, "output": jax.tree.map(jnp.zeros_like, params["output"])}}
  from genlv_jax.models.genlv import upsample_bilinear
  np.testing.assert_allclose(np.asarray(apply(zeroed, x)), np.asarray(upsample_bilinear(x, 4)),
                             rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("variant, width", sorted(PARAM_COUNTS))
def test_parameter_counts_are_exactly_the_authors(variant, width):
  # Scanned levels: the same params in another layout (test_scan_over_blocks_...), traced one
  # block per level, which keeps eval_shape of the big variants to seconds on a 2-core CPU.
  config = load_config(config_path(variant),
                       [f"model.prompt_encoder_width={width}", "model.scan_blocks=true"])
  assert _count(api.abstract_params(build_model(config), config)) == PARAM_COUNTS[variant, width]


def test_xrestormer_backbone_has_the_released_parameter_count():
  # The official XRestormer(dim=48, [2,4,4,4], heads [1,2,4,8]x2) has 26.04 M parameters.
  config = load_config(config_path("xrestormer"))
  assert round(_count(api.abstract_params(build_model(config), config)) / 1e6, 2) == 26.04
