"""The Flax model computes the same function as the independent PyTorch reference, which holds
the authors' parameter names (their state dicts load into it with strict=True).

Weights are moved off their init values (LayerNorm, temperature, biases, relative-position
tables), float32 throughout: per component max abs error <= 1e-5, end to end <= 1e-4. GenLV
checkpoints are BGR: the converted model on an RGB image must equal the reference on the BGR
image, with the output's channels flipped back.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the bridge is an extra: `pip install genlv-jax[bridge]`

# pylint: disable=wrong-import-position
import genlv_jax
from conftest import CPU_KERNEL
from bridge_testutil import (from_torch, load_into_torch, perturb_params, perturb_state_dict,
                             to_torch)
from genlv_jax.bridge import build_torch_model, flax_to_torch, torch_to_flax
from genlv_jax.bridge import torch_reference as ref
from genlv_jax.bridge.convert import component_state_dict
from genlv_jax.config_io import load_config
from genlv_jax.models import attention, blocks, build_model, ops, prompt_encoder
from genlv_jax.models.params import flatten_params

COMPONENT_TOL = 1e-5
END_TO_END_TOL = 1e-4


def _component_outputs(flax_module, torch_module, flax_prefix, flax_inputs, torch_inputs,
                       impls=None, seed=0):
  """(Flax output, PyTorch output) of one module and its twin holding the same weights.

  `flax_prefix` is where the module's params sit in the model: PyTorch names depend on it.
  """
  with ops.use(impls):
    params = jax.jit(flax_module.init)(jax.random.key(seed), *flax_inputs)["params"]
    params = perturb_params(params, seed)
    got = np.asarray(jax.jit(flax_module.apply)({"params": params}, *flax_inputs))
  load_into_torch(torch_module,
                  component_state_dict(flatten_params(params), flax_prefix))
  with torch.no_grad():
    want = torch_module(*torch_inputs)
  return got, want


def _map_error(flax_module, torch_module, flax_prefix, *inputs, impls=None):
  """Max abs difference on NHWC feature maps (the twin gets NCHW)."""
  got, want = _component_outputs(flax_module, torch_module, flax_prefix, inputs,
                                 [to_torch(x) for x in inputs], impls)
  want = from_torch(want)
  assert got.shape == want.shape
  return float(np.max(np.abs(got - want)))


def _features(*shape, seed=1):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ----------------------------------------------------------------------------- components


@pytest.mark.parametrize("impl", ["shifted", "grouped", CPU_KERNEL])
@pytest.mark.parametrize("bias", [False, True])
def test_channel_attention_mdta_matches_torch(impl, bias):
  err = _map_error(attention.ChannelAttention(2, bias), ref.ChannelAttention(16, 2, bias),
                   "encoder_level1/block_0/channel_attn", _features(2, 16, 24, 16),
                   impls=ops.Implementations(depthwise=impl))
  assert err <= COMPONENT_TOL


@pytest.mark.parametrize("impl", ["reshape", "patches"])
@pytest.mark.parametrize("bias", [False, True])
def test_overlapping_window_attention_with_rel_pos_matches_torch(impl, bias):
  err = _map_error(attention.OverlappingWindowAttention(2, 8, 0.5, 8, bias),
                   ref.OCAB(16, 8, 0.5, 2, 8, bias), "encoder_level1/block_0/spatial_attn",
                   _features(2, 16, 24, 16), impls=ops.Implementations(windows=impl))
  assert err <= COMPONENT_TOL


@pytest.mark.parametrize("impl", ["shifted", "grouped", CPU_KERNEL])
def test_gated_dconv_feed_forward_matches_torch(impl):
  err = _map_error(blocks.GatedDconvFeedForward(2.66, True), ref.FeedForward(16, 2.66, True),
                   "encoder_level1/block_0/channel_ffn", _features(2, 16, 8, 16),
                   impls=ops.Implementations(depthwise=impl))
  assert err <= COMPONENT_TOL


def test_transformer_block_matches_torch():
  err = _map_error(blocks.TransformerBlock(2, spatial_dim_head=8),
                   ref.TransformerBlock(16, 8, 0.5, 2, 8, 2.66, False), "encoder_level1/block_0",
                   _features(1, 16, 24, 16))
  assert err <= COMPONENT_TOL


@pytest.mark.parametrize("cross", [False, True], ids=["global_self_attention", "cross_attention"])
def test_spat_cross_attn_matches_torch(cross):
  # Latent tokens 6x5 = 30; the prompts hold 12 tokens (another size than the input's).
  x = _features(2, 6, 5, 32)
  z_s, z_t = _features(2, 12, 32, seed=2), _features(2, 12, 32, seed=3)
  context = (z_s, z_t) if cross else ()
  got, want = _component_outputs(
      attention.SpatCrossAttn(4), ref.SpatCrossAttn(32, 4),
      f"latent_blocks/block_0/{'cross_attn' if cross else 'spatial_attn'}", (x, *context),
      [torch.from_numpy(x.reshape(2, 30, 32))] + [torch.from_numpy(z) for z in context])
  assert np.max(np.abs(got.reshape(2, 30, 32) - want.numpy())) <= COMPONENT_TOL


@pytest.mark.parametrize("impl", ["xla", "default"])
def test_latent_block_with_self_and_prompt_attention_matches_torch(impl):
  x = _features(2, 4, 6, 32)
  z_s, z_t = _features(2, 10, 32, seed=2), _features(2, 10, 32, seed=3)
  got, want = _component_outputs(
      blocks.SpatCrossAttnBlock(4, 2.66, True), ref.SpatCrossAttnBlock(32, 4, 2.66, True),
      "latent_blocks/block_0", (x, z_s, z_t),
      [to_torch(x), torch.from_numpy(z_s), torch.from_numpy(z_t)],
      impls=ops.Implementations(attention=impl))
  assert np.max(np.abs(got - from_torch(want))) <= COMPONENT_TOL


@pytest.mark.parametrize("width", [4, 8])
def test_prompt_encoder_matches_torch(width):
  image = np.random.default_rng(4).uniform(size=(2, 40, 24, 3)).astype(np.float32)
  got, want = _component_outputs(
      prompt_encoder.PromptEncoder(width, 32), ref.PromptEncoder(width, 32), "prompt_encoder",
      (image,), [to_torch(image)])
  assert got.shape == (2, 5, 3, 32) and want.shape == (2, 15, 32)
  assert np.max(np.abs(got.reshape(2, 15, 32) - want.numpy())) <= COMPONENT_TOL


@pytest.mark.parametrize("h,w", [(1, 1), (5, 64), (16, 16), (70, 45), (3, 130)])
def test_reference_reflect_padding_is_numpys(h, w):
  x = np.random.default_rng(0).normal(size=(1, 2, h, w)).astype(np.float32)
  want = np.pad(x, ((0, 0), (0, 0), (0, -h % 64), (0, -w % 64)), mode="reflect")
  np.testing.assert_array_equal(ref.reflect_pad_bottom_right(torch.from_numpy(x), 64).numpy(),
                                want)


# ----------------------------------------------------------------------------- end to end


class _Pair:
  """A config's Flax model and PyTorch reference holding the same perturbed weights.

  Weights are initialised in PyTorch (in the checkpoint's layout and channel order) and
  converted with `torch_to_flax`, as a user's checkpoint would be.
  """

  def __init__(self, config, seed=0):
    self.config = config
    self.bgr = config.model.checkpoint_channel_order == "bgr"
    model = build_model(config)
    torch.manual_seed(seed)
    self.torch_model = build_torch_model(config)
    self.state_dict = perturb_state_dict(self.torch_model.state_dict(), seed)
    self.torch_model.load_state_dict(self.state_dict, strict=True)
    self.params = torch_to_flax({k: v.numpy() for k, v in self.state_dict.items()}, config)
    self.forward = jax.jit(lambda p, *a: model.apply({"params": p}, *a))

  def reference(self, *inputs) -> np.ndarray:
    """The PyTorch reference fed as the authors feed it (BGR for GenLV), output in RGB."""
    flip = (lambda x: x[..., ::-1]) if self.bgr else (lambda x: x)  # noqa: E731
    with torch.no_grad():
      return flip(from_torch(self.torch_model(*(to_torch(flip(x)) for x in inputs))))

  def max_error(self, *inputs) -> float:
    got = np.asarray(self.forward(self.params, *inputs))
    want = self.reference(*inputs)
    assert got.shape == want.shape
    return float(np.max(np.abs(got - want)))


def _images(batch, h, w, seed):
  return np.random.default_rng(seed).uniform(size=(batch, h, w, 3)).astype(np.float32)


def _prompts(batch, h, w):
  return _images(batch, h, w, 1), _images(batch, h, w, 2)


@pytest.fixture(scope="module")
def tiny_pair():
  return _Pair(load_config("configs/tiny.py"))


# Prompts of another size than the input; 20x13 pads by more than the image (reflected twice);
# 36x44 prompts are padded to a multiple of 8 by both.
@pytest.mark.parametrize("size,prompt_size", [((64, 64), (48, 40)), ((70, 45), (40, 72)),
                                              ((20, 13), (16, 16))])
def test_tiny_end_to_end_matches_torch(tiny_pair, size, prompt_size):
  err = tiny_pair.max_error(_images(2, *size, 0), *_prompts(2, *prompt_size))
  assert err <= END_TO_END_TOL


def test_the_converted_model_takes_rgb_where_the_authors_take_bgr(tiny_pair):
  # The same weights fed RGB without the flip differ: the permutation is doing the work.
  image, (ps, pt) = _images(1, 64, 64, 0), _prompts(1, 32, 32)
  got = np.asarray(tiny_pair.forward(tiny_pair.params, image, ps, pt))
  with torch.no_grad():
    unflipped = from_torch(tiny_pair.torch_model(to_torch(image), to_torch(ps), to_torch(pt)))
  assert np.max(np.abs(got - tiny_pair.reference(image, ps, pt))) <= END_TO_END_TOL
  assert np.max(np.abs(got - unflipped)) > 100 * END_TO_END_TOL


def test_scan_layout_bias_and_library_impls_match_torch():
  # One config for the less common switches: stacked params under nn.scan, biases on, and the
  # GPU/TPU-oriented implementations.
  config = load_config("configs/tiny.py", [
      "model.scan_blocks=true", "model.bias=true", "ops.depthwise=grouped",
      "ops.windows=patches", "ops.conv=xla", "ops.layer_norm=xla", "ops.attention=default"])
  pair = _Pair(config, seed=3)
  assert pair.params["latent_blocks"]["blocks"]["norm5"]["weight"].shape == (2, 64)  # stacked
  err = pair.max_error(_images(1, 64, 64, 0), *_prompts(1, 40, 48))
  assert err <= END_TO_END_TOL


@pytest.fixture(scope="module")
def base_pairs():
  """GenLV-Base pairs by prompt-encoder width, built on first use and shared by the module."""
  pairs = {}

  def get(width):
    if width not in pairs:
      pairs[width] = _Pair(load_config("configs/base.py",
                                       [f"model.prompt_encoder_width={width}"]))
    return pairs[width]
  return get


# GenLV-Base at the training size, at 128x192 and at a size that is not a multiple of 32 (the
# input is padded), with prompts of other sizes. `make test` runs width 32 at 256x256 (other
# widths: the tiny model, and the prompt encoder's parity at widths 4 and 8); the full matrix
# (both widths at all three sizes) runs with `make test-all`.
_BASE_CASES = {"256x256": ((256, 256), (192, 160)), "128x192": ((128, 192), (96, 96)),
               "100x140": ((100, 140), (64, 48))}
_BASE_DEFAULT = {(32, "256x256")}


@pytest.mark.parametrize("width,case", [
    pytest.param(width, case, marks=() if (width, case) in _BASE_DEFAULT else pytest.mark.slow,
                 id=f"nf{width}-{case}")
    for width in (32, 64) for case in _BASE_CASES])
def test_base_end_to_end_matches_torch(base_pairs, width, case):
  size, prompt_size = _BASE_CASES[case]
  err = base_pairs(width).max_error(_images(1, *size, 0), *_prompts(1, *prompt_size))
  assert err <= END_TO_END_TOL


def test_xrestormer_scale4_matches_torch():
  # 16x16 -> bilinear x4 -> 64x64 through the network; the residual adds the upsampled input.
  pair = _Pair(load_config("configs/xrestormer.py:sr"))
  assert not pair.bgr
  assert pair.max_error(_images(1, 16, 16, 0)) <= END_TO_END_TOL


def test_official_layout_xrestormer_pth_loads_through_load_model(tmp_path):
  torch_model = build_torch_model("configs/xrestormer.py")
  state_dict = perturb_state_dict(torch_model.state_dict(), seed=5)
  torch_model.load_state_dict(state_dict, strict=True)
  path = tmp_path / "xrestormer.pth"
  torch.save({"params": state_dict}, path)  # BasicSR's layout

  model = genlv_jax.load_model("configs/xrestormer.py", checkpoint=str(path))
  image = _images(1, 64, 64, 0)
  with torch.no_grad():
    want = from_torch(torch_model(to_torch(image)))
  assert np.max(np.abs(model(image) - want)) <= END_TO_END_TOL
  # And the loaded params equal the file's, bit for bit, through the torch layout.
  round_trip = flax_to_torch(model.params, model.config)
  assert all(np.array_equal(round_trip[k], v.numpy()) for k, v in state_dict.items())
  assert jnp.asarray(model.params["output"]["kernel"]).dtype == jnp.float32


def test_authors_checkpoint_loads_through_every_entry_point(tmp_path, tiny_pair):
  """A file in the authors' layout (their misc.save_model: weights under `model`, the training
  state and an argparse.Namespace beside them) through load_model, the converter CLI and
  --config.init_from: the same params each time, and the reference's outputs on BGR."""
  import argparse

  from genlv_jax import convert
  from genlv_jax.training import trainer
  path = str(tmp_path / "checkpoint-49.pth")
  torch.save({"model": tiny_pair.state_dict, "optimizer": {"state": {}, "param_groups": []},
              "epoch": 49, "scaler": {"scale": 65536.0},
              "args": argparse.Namespace(model="xrestormer_prompt_crossattn_tiny", lr=1e-4)},
             path)
  image, (ps, pt) = _images(1, 96, 64, 0), _prompts(1, 48, 56)
  want = tiny_pair.reference(image, ps, pt)

  loaded = genlv_jax.load_model("configs/tiny.py", checkpoint=path)
  assert np.max(np.abs(loaded(image, ps, pt) - want)) <= END_TO_END_TOL

  params_dir = str(tmp_path / "params")
  assert convert.main(["torch-to-jax", "--config", "configs/tiny.py", "--input", path,
                       "--output", params_dir]) == 0
  converted = genlv_jax.load_model("configs/tiny.py", checkpoint=params_dir)

  config = load_config("configs/tiny.py", [f"init_from={path}"])
  initial = trainer.initial_params(build_model(config), config)
  for params in (converted.params, initial):
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, params),
                 jax.tree.map(np.asarray, loaded.params))
