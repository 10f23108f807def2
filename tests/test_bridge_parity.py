"""The Flax model computes the same function as the independent PyTorch reference.

Weights are moved off their init values (LayerNorm, temperature, biases, relative-position
tables), float32 throughout: per component max abs error <= 1e-5, end to end <= 1e-4.
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
from genlv_jax import checkpointing
from genlv_jax.bridge import (build_torch_model, flax_to_torch, rename_flax_to_torch,
                              torch_to_flax)
from genlv_jax.bridge import torch_reference as ref
from genlv_jax.config_io import load_config
from genlv_jax.models import attention, blocks, build_model, prompt_encoder

COMPONENT_TOL = 1e-5
END_TO_END_TOL = 1e-4


def _component_error(flax_module, torch_module, *inputs, seed=0):
  """Max abs difference of one Flax module and its PyTorch twin on NHWC `inputs`."""
  params = jax.jit(flax_module.init)(jax.random.key(seed), *inputs)["params"]
  params = perturb_params(params, seed)
  load_into_torch(torch_module, rename_flax_to_torch(checkpointing.flatten_params(params)))
  got = np.asarray(jax.jit(flax_module.apply)({"params": params}, *inputs))
  with torch.no_grad():
    want = from_torch(torch_module(*(to_torch(x) for x in inputs)))
  assert got.shape == want.shape
  return float(np.max(np.abs(got - want)))


def _features(*shape, seed=1):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ----------------------------------------------------------------------------- components


@pytest.mark.parametrize("impl", ["shifted", "grouped", CPU_KERNEL])
@pytest.mark.parametrize("bias", [False, True])
def test_channel_attention_mdta_matches_torch(impl, bias):
  err = _component_error(attention.ChannelAttention(2, bias, depthwise_impl=impl),
                         ref.ChannelAttention(16, 2, bias), _features(2, 16, 24, 16))
  assert err <= COMPONENT_TOL


@pytest.mark.parametrize("impl", ["reshape", "patches"])
@pytest.mark.parametrize("bias", [False, True])
def test_overlapping_window_attention_with_rel_pos_matches_torch(impl, bias):
  flax_oca = attention.OverlappingWindowAttention(2, 8, 0.5, 8, bias, window_impl=impl)
  err = _component_error(flax_oca, ref.OCAB(16, 8, 0.5, 2, 8, bias), _features(2, 16, 24, 16))
  assert err <= COMPONENT_TOL


@pytest.mark.parametrize("impl", ["shifted", "grouped", CPU_KERNEL])
def test_gated_dconv_feed_forward_matches_torch(impl):
  err = _component_error(blocks.GatedDconvFeedForward(2.66, True, depthwise_impl=impl),
                         ref.FeedForward(16, 2.66, True), _features(2, 16, 8, 16))
  assert err <= COMPONENT_TOL


def test_transformer_block_matches_torch():
  flax_block = blocks.TransformerBlock(channel_heads=2, spatial_heads=2, spatial_dim_head=8)
  torch_block = ref.TransformerBlock(16, 8, 0.5, 2, 2, 8, 2.66, False)
  assert _component_error(flax_block, torch_block, _features(1, 16, 24, 16)) <= COMPONENT_TOL


@pytest.mark.parametrize("position", ["after_spatial_attn", "before_spatial_attn"])
def test_prompted_block_with_prompt_cross_attention_matches_torch(position):
  # Prompt tokens (5x3) differ in number and shape from the image tokens (16x8).
  flax_block = blocks.TransformerBlock(channel_heads=2, spatial_heads=2, spatial_dim_head=8,
                                       use_bias=True, prompt_heads=4,
                                       prompt_attn_position=position)
  torch_block = ref.TransformerBlock(16, 8, 0.5, 2, 2, 8, 2.66, True, 4, position)
  err = _component_error(flax_block, torch_block, _features(2, 16, 8, 16),
                         _features(2, 5, 3, 16, seed=2), _features(2, 5, 3, 16, seed=3))
  assert err <= COMPONENT_TOL


def test_prompt_encoder_matches_torch():
  widths = (8, 16, 32, 64)
  err = _component_error(prompt_encoder.PromptEncoder(widths, 2), ref.PromptEncoder(widths, 2),
                         np.random.default_rng(4).uniform(size=(2, 37, 29, 3)).astype(np.float32))
  assert err <= COMPONENT_TOL


@pytest.mark.parametrize("h,w", [(1, 1), (5, 64), (16, 16), (70, 45), (3, 130)])
def test_reference_reflect_padding_is_numpys(h, w):
  x = np.random.default_rng(0).normal(size=(1, 2, h, w)).astype(np.float32)
  want = np.pad(x, ((0, 0), (0, 0), (0, -h % 64), (0, -w % 64)), mode="reflect")
  np.testing.assert_array_equal(ref.reflect_pad_bottom_right(torch.from_numpy(x), 64).numpy(),
                                want)


# ----------------------------------------------------------------------------- end to end


class _Pair:
  """A config's Flax model and PyTorch reference holding the same perturbed weights.

  Weights are initialised in PyTorch and converted with `torch_to_flax` (the Flax `model.init`
  would be a second, slower XLA compile); the other direction, `flax_to_torch`, is what the
  component tests and the round-trip tests exercise.
  """

  def __init__(self, config, seed=0):
    self.config = config
    model = build_model(config)
    torch.manual_seed(seed)
    self.torch_model = build_torch_model(config)
    state_dict = perturb_state_dict(self.torch_model.state_dict(), seed)
    self.torch_model.load_state_dict(state_dict, strict=True)
    self.params = torch_to_flax({k: v.numpy() for k, v in state_dict.items()}, config)
    self.forward = jax.jit(lambda p, *a: model.apply({"params": p}, *a))

  def max_error(self, *inputs) -> float:
    got = np.asarray(self.forward(self.params, *inputs))
    with torch.no_grad():
      want = from_torch(self.torch_model(*(to_torch(x) for x in inputs)))
    assert got.shape == want.shape
    return float(np.max(np.abs(got - want)))


def _images(batch, h, w, seed):
  return np.random.default_rng(seed).uniform(size=(batch, h, w, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_pair():
  return _Pair(load_config("configs/tiny.py"))


# Prompts of another size than the input; 20x13 pads by more than the image (reflected twice).
@pytest.mark.parametrize("size,prompt_size", [((64, 64), (48, 40)), ((70, 45), (40, 72)),
                                              ((20, 13), (16, 16))])
def test_tiny_end_to_end_matches_torch(tiny_pair, size, prompt_size):
  err = tiny_pair.max_error(_images(2, *size, 0), _images(2, *prompt_size, 1),
                            _images(2, *prompt_size, 2))
  assert err <= END_TO_END_TOL


def test_scan_layout_bias_and_library_impls_match_torch():
  # One config for the less common switches: stacked params under nn.scan, biases on, the
  # prompt attention before the spatial attention, and the GPU/TPU-oriented implementations.
  config = load_config("configs/tiny.py")
  config.model.update(scan_blocks=True, bias=True, prompt_attn_position="before_spatial_attn",
                      depthwise_impl="grouped", window_impl="patches")
  pair = _Pair(config, seed=3)
  assert pair.params["latent"]["blocks"]["norm1"]["weight"].shape == (2, 64)  # stacked
  err = pair.max_error(_images(1, 64, 64, 0), _images(1, 40, 48, 1), _images(1, 40, 48, 2))
  assert err <= END_TO_END_TOL


def test_base_end_to_end_at_64_matches_torch():
  pair = _Pair(load_config("configs/base.py"))
  err = pair.max_error(_images(1, 64, 64, 0), _images(1, 64, 64, 1), _images(1, 64, 64, 2))
  assert err <= END_TO_END_TOL


def test_xrestormer_scale4_matches_torch():
  # 16x16 -> bilinear x4 -> 64x64 through the network; the residual adds the upsampled input.
  pair = _Pair(load_config("configs/xrestormer.py:sr"))
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
