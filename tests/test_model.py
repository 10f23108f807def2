"""The whole GenLV model (tiny config): shapes, padding, gradients, dtypes, scan/remat, sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import config_path
from genlv_jax import api
from genlv_jax.config_io import load_config
from genlv_jax.models import build_model
from genlv_jax.models.layout import scanned_to_unrolled, unrolled_to_scanned

RNG = np.random.default_rng(0)
PAPER_PARAMS = {"base": 38.77e6, "large": 100.48e6, "huge": 211.11e6}


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


def test_any_input_size_is_reflect_padded_and_cropped_back(tiny):
  _, _, params, forward = tiny
  x, ps, pt = _images(1, 20, 37, 3), _images(1, 24, 40, 3), _images(1, 24, 40, 3)
  y = forward(params, x, ps, pt)
  assert y.shape == x.shape
  # Independent padding: numpy's reflect (repeated when the pad exceeds the image) to 64x64.
  padded = np.pad(np.asarray(x), ((0, 0), (0, 44), (0, 27), (0, 0)), mode="reflect")
  y_padded = forward(params, jnp.asarray(padded), ps, pt)
  np.testing.assert_allclose(np.asarray(y), np.asarray(y_padded)[:, :20, :37], atol=1e-6)


def test_prompt_size_may_differ_from_input_and_changes_the_output(tiny):
  _, _, params, forward = tiny
  x = _images(1, 64, 64, 3)
  y_small = forward(params, x, _images(1, 24, 40, 3), _images(1, 24, 40, 3))  # compiled above
  y_large = forward(params, x, _images(1, 96, 80, 3), _images(1, 96, 80, 3))
  assert y_small.shape == y_large.shape == x.shape
  assert float(jnp.abs(y_small - y_large).max()) > 1e-4  # the prompt conditions the output


GRAD_INPUTS = tuple(_images(1, 64, 64, 3) for _ in range(4))


def _l1_grads(model, params):
  x, ps, pt, target = GRAD_INPUTS
  loss = lambda p: jnp.mean(jnp.abs(model.apply({"params": p}, x, ps, pt) - target))  # noqa: E731
  return jax.jit(jax.grad(loss))(params)


@pytest.fixture(scope="module")
def grads(tiny):
  _, model, params, _ = tiny
  return _l1_grads(model, params)


def test_every_parameter_receives_a_nonzero_gradient(grads):
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  dead = [jax.tree_util.keystr(k) for k, g in flat if not np.any(np.asarray(g) != 0)]
  assert not dead, f"parameters without gradient: {dead}"
  assert all(np.all(np.isfinite(np.asarray(g))) for _, g in flat)


def test_bfloat16_compute_is_close_to_float32_with_float32_params(tiny):
  config, _, params, forward = tiny
  bf16 = build_model(load_config(config, ["dtype=bfloat16"]))
  x, ps, pt = GRAD_INPUTS[:3]
  y32 = np.asarray(forward(params, x, ps, pt))
  y16 = jax.jit(lambda p: bf16.apply({"params": p}, x, ps, pt))(params)
  assert y16.dtype == jnp.float32  # the output (and the global residual) stay float32
  err = np.abs(np.asarray(y16) - y32)
  assert err.max() < 0.05 and err.mean() < 0.01, (err.max(), err.mean())
  abstract = api.abstract_params(bf16, config)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(abstract))


def test_scan_over_blocks_is_the_same_function_as_unrolled(tiny):
  config, _, params, forward = tiny
  scanned_cfg = load_config(config, ["model.scan_blocks=true", "remat=true"])
  scanned = build_model(scanned_cfg)
  scanned_params = unrolled_to_scanned(params)
  want = jax.tree.map(lambda s: s.shape, api.abstract_params(scanned, scanned_cfg))
  assert jax.tree.map(np.shape, scanned_params) == want
  x, ps, pt = _images(1, 64, 64, 3), _images(1, 64, 64, 3), _images(1, 64, 64, 3)
  y_scan = jax.jit(lambda p: scanned.apply({"params": p}, x, ps, pt))(scanned_params)
  np.testing.assert_allclose(np.asarray(y_scan), np.asarray(forward(params, x, ps, pt)), atol=1e-5)
  back = scanned_to_unrolled(scanned_params)
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params)))


def test_remat_gives_the_same_gradients(tiny, grads):
  config, _, params, _ = tiny
  remat_grads = _l1_grads(build_model(load_config(config, ["remat=true"])), params)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(remat_grads)):
    scale = float(np.abs(np.asarray(a)).max())
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5 * scale + 1e-8)


def test_xrestormer_needs_no_prompt_and_upsamples_like_torch_bilinear():
  config = load_config(config_path("xrestormer") + ":sr", ["model.dim=8", "model.num_blocks=(1,1,1,1)",
                                                            "model.num_refinement_blocks=1"])
  model = build_model(config)
  x = _images(1, 10, 12, 3)
  variables = jax.jit(model.init)(jax.random.key(0, impl="rbg"), x)
  assert "prompt_encoder" not in variables["params"]
  y = jax.jit(model.apply)(variables, x)
  assert y.shape == (1, 40, 48, 3)
  torch = pytest.importorskip("torch")
  want = torch.nn.functional.interpolate(torch.from_numpy(np.array(x).transpose(0, 3, 1, 2)),
                                         scale_factor=4, mode="bilinear", align_corners=False)
  from genlv_jax.models.genlv import upsample_bilinear
  np.testing.assert_allclose(np.asarray(upsample_bilinear(x, 4)), want.numpy().transpose(0, 2, 3, 1),
                             atol=1e-6)


@pytest.mark.parametrize("variant", ["base", "large", "huge"])
def test_parameter_counts_are_within_3_percent_of_the_paper(variant):
  config = load_config(config_path(variant))
  abstract = api.abstract_params(build_model(config), config)
  n = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(abstract))
  assert abs(n / PAPER_PARAMS[variant] - 1) <= 0.03, n


def test_xrestormer_backbone_has_the_released_parameter_count():
  # The official XRestormer(dim=48, [2,4,4,4], heads [1,2,4,8]x2) has 26.04 M parameters.
  config = load_config(config_path("xrestormer"))
  abstract = api.abstract_params(build_model(config), config)
  n = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(abstract))
  assert round(n / 1e6, 2) == 26.04
