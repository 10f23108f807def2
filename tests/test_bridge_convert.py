"""Weight conversion between Flax params and PyTorch state dicts, and PyTorch file I/O."""

from __future__ import annotations

import argparse
import pickle

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the bridge is an extra: `pip install genlv-jax[bridge]`

# pylint: disable=wrong-import-position
from bridge_testutil import perturb_state_dict
from genlv_jax.api import abstract_params
from genlv_jax.bridge import (UnsafeCheckpointError, build_torch_model, flax_to_torch,
                              load_torch_checkpoint, read_torch_file, torch_to_flax,
                              write_torch_file)
from genlv_jax.bridge.convert import torch_shapes
from genlv_jax.bridge.torch_io import TorchCheckpointError
from genlv_jax.config_io import load_config
from genlv_jax.models import build_model
from genlv_jax.models.params import CheckpointMismatchError, flatten_params


def _config(path="configs/tiny.py", **model_overrides):
  config = load_config(path)
  config.model.update(model_overrides)
  return config


def _random_flax_params(config, seed=0):
  """Random values in the exact tree (and scan stacking) that `model.init` would produce."""
  rng = np.random.default_rng(seed)
  abstract = abstract_params(build_model(config), config)
  return jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32), abstract)


def _state_dict(config, seed=0):
  torch.manual_seed(seed)
  sd = perturb_state_dict(build_torch_model(config).state_dict(), seed)
  return {k: v.numpy() for k, v in sd.items()}


def _flat(tree):
  return {k: np.asarray(v) for k, v in flatten_params(tree).items()}


# ----------------------------------------------------------------------------- names, shapes


def test_xrestormer_uses_the_official_parameter_names_and_shapes():
  shapes = torch_shapes(load_config("configs/xrestormer.py"))
  official = {
      "patch_embed.proj.weight": (48, 3, 3, 3),
      "encoder_level1.0.norm1.body.weight": (48,),
      "encoder_level1.0.norm4.body.bias": (48,),
      "encoder_level1.0.channel_attn.temperature": (1, 1, 1),
      "latent.3.channel_attn.temperature": (8, 1, 1),
      "encoder_level1.0.channel_attn.qkv.weight": (144, 48, 1, 1),
      "encoder_level1.0.channel_attn.qkv_dwconv.weight": (144, 1, 3, 3),
      "encoder_level1.0.channel_attn.project_out.weight": (48, 48, 1, 1),
      "encoder_level1.0.channel_ffn.project_in.weight": (254, 48, 1, 1),
      "encoder_level1.0.channel_ffn.dwconv.weight": (254, 1, 3, 3),
      "encoder_level1.0.channel_ffn.project_out.weight": (48, 127, 1, 1),
      "encoder_level2.1.spatial_attn.qkv.weight": (96, 96, 1, 1),
      "encoder_level2.1.spatial_attn.project_out.weight": (96, 32, 1, 1),
      "encoder_level2.1.spatial_attn.rel_pos_emb.rel_height": (23, 16),
      "encoder_level2.1.spatial_attn.rel_pos_emb.rel_width": (23, 16),
      "encoder_level2.1.spatial_ffn.project_in.weight": (510, 96, 1, 1),
      "down1_2.body.0.weight": (24, 48, 3, 3),
      "up4_3.body.0.weight": (768, 384, 3, 3),
      "reduce_chan_level3.weight": (192, 384, 1, 1),
      "reduce_chan_level2.weight": (96, 192, 1, 1),
      "decoder_level1.1.norm2.body.weight": (96,),
      "refinement.3.spatial_ffn.project_out.weight": (96, 255, 1, 1),
      "output.weight": (3, 96, 3, 3),
  }
  assert {k: shapes.get(k) for k in official} == official
  # 28 blocks of 22 tensors, plus patch_embed, 3 down, 3 up, 2 reduce, output.
  assert len(shapes) == 28 * 22 + 10
  total = sum(int(np.prod(s)) for s in shapes.values())
  assert abs(total / 26.04e6 - 1) < 0.005  # X-Restormer's backbone: 26.04 M params, as its authors count them


def test_genlv_uses_the_authors_parameter_names_and_shapes():
  # Read off the authors' XRestormer_Prompt_SpatCrossAttn (GenLV-101 file, nf 32) for Base.
  shapes = torch_shapes(load_config("configs/base.py"))
  pe = "Prompt_KV_Encoder.prompt_embedding"
  official = {
      f"{pe}.conv_first.weight": (32, 3, 3, 3),
      f"{pe}.conv_first.bias": (32,),
      f"{pe}.conv_hr.weight": (32, 32, 3, 3),
      f"{pe}.norm.weight": (32,),
      f"{pe}.fea_level1.3.conv2.weight": (32, 32, 3, 3),
      f"{pe}.fea_level2.0.conv1.bias": (64,),
      f"{pe}.channel_reduction1.weight": (64, 128, 1, 1),
      f"{pe}.channel_reduction3.weight": (256, 512, 1, 1),
      f"{pe}.norm3.bias": (256,),
      f"{pe}.conv_lr.weight": (384, 256, 3, 3),
      f"{pe}.conv_last.weight": (384, 384, 1, 1),
      f"{pe}.norm_out.weight": (384,),
      "patch_embed.proj.weight": (48, 3, 3, 3),
      "encoder_level1.0.norm1.body.weight": (48,),
      "encoder_level2.1.spatial_attn.rel_pos_emb.rel_height": (23, 16),
      "latent_blocks.0.norm1.body.weight": (384,),
      "latent_blocks.0.norm2.body.bias": (384,),
      "latent_blocks.0.norm3.weight": (384,),
      "latent_blocks.3.norm5.bias": (384,),
      "latent_blocks.0.channel_attn.temperature": (8, 1, 1),
      "latent_blocks.0.channel_attn.qkv_dwconv.weight": (1152, 1, 3, 3),
      "latent_blocks.1.spatial_attn.to_q.weight": (384, 384),
      "latent_blocks.1.spatial_attn.to_out.0.weight": (384, 384),
      "latent_blocks.1.spatial_attn.to_out.0.bias": (384,),
      "latent_blocks.2.cross_attn.to_k.weight": (384, 384),
      "latent_blocks.2.cross_attn.to_v.weight": (384, 384),
      "latent_blocks.3.spatial_ffn.project_in.weight": (2042, 384, 1, 1),
      "up4_3.body.0.weight": (768, 384, 3, 3),
      "output.weight": (3, 96, 3, 3),
  }
  assert {k: shapes.get(k) for k in official} == official
  assert not any(k.startswith("latent.") for k in shapes) and "output.bias" not in shapes
  assert sum(int(np.prod(s)) for s in shapes.values()) == 32_743_960


@pytest.mark.parametrize("config", [
    _config(), _config(scan_blocks=True, bias=True), _config("configs/base.py"),
    _config("configs/base.py", prompt_encoder_width=64),
    _config("configs/xrestormer.py:sr")],
    ids=["tiny", "tiny-scan-bias", "base", "base-nf64", "xrestormer-sr"])
def test_expected_state_dict_is_exactly_the_reference_modules(config):
  module_shapes = {k: tuple(v.shape) for k, v in build_torch_model(config).state_dict().items()}
  assert torch_shapes(config) == module_shapes


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("scan", [False, True])
def test_jax_torch_jax_round_trip_is_bit_exact(scan):
  config = _config(scan_blocks=scan, bias=True)
  params = _random_flax_params(config)
  back = torch_to_flax(flax_to_torch(params, config), config)
  assert jax.tree.structure(back) == jax.tree.structure(params)
  want, got = _flat(params), _flat(back)
  assert all(np.array_equal(want[k], got[k]) and got[k].dtype == np.float32 for k in want)


@pytest.mark.parametrize("scan", [False, True])
def test_torch_jax_torch_round_trip_is_bit_exact(scan):
  config = _config(scan_blocks=scan)
  state_dict = _state_dict(config)
  back = flax_to_torch(torch_to_flax(state_dict, config), config)
  assert back.keys() == state_dict.keys()
  assert all(np.array_equal(back[k], v) for k, v in state_dict.items())


def test_scan_and_unrolled_layouts_hold_the_same_weights():
  unrolled, scanned = _config(), _config(scan_blocks=True)
  state_dict = _state_dict(unrolled)
  flat, stacked = torch_to_flax(state_dict, unrolled), torch_to_flax(state_dict, scanned)
  np.testing.assert_array_equal(
      stacked["latent_blocks"]["blocks"]["cross_attn"]["to_q"]["kernel"][1],
      flat["latent_blocks"]["block_1"]["cross_attn"]["to_q"]["kernel"])


def test_bgr_checkpoint_colour_channels_are_reversed_and_nothing_else():
  config = _config(bias=True)
  assert config.model.checkpoint_channel_order == "bgr"
  state_dict = _state_dict(config)
  params = _flat(torch_to_flax(state_dict, config))
  as_rgb = _flat(torch_to_flax(state_dict, _config(bias=True, checkpoint_channel_order="rgb")))
  flipped = {"patch_embed/kernel": 2, "prompt_encoder/conv_first/kernel": 2,
             "output/kernel": 3, "output/bias": 0}
  for key, value in params.items():
    want = np.flip(as_rgb[key], axis=flipped[key]) if key in flipped else as_rgb[key]
    np.testing.assert_array_equal(value, want, err_msg=key)
  # The output conv writes channel c of BGR where the RGB model writes channel 2 - c.
  np.testing.assert_array_equal(params["output/kernel"][..., 0],
                                state_dict["output.weight"][2].transpose(1, 2, 0))


# ----------------------------------------------------------------------------- strictness


def test_mismatching_state_dict_lists_missing_unexpected_and_misshaped_keys():
  config = _config()
  state_dict = _state_dict(config)
  del state_dict["latent_blocks.0.cross_attn.to_k.weight"]
  state_dict["latent_blocks.0.cross_attn.extra.weight"] = np.zeros((4,), np.float32)
  state_dict["output.weight"] = np.zeros((3, 16, 5, 5), np.float32)
  with pytest.raises(CheckpointMismatchError) as info:
    torch_to_flax(state_dict, config)
  problems = info.value.problems
  assert "missing: latent_blocks.0.cross_attn.to_k.weight (64, 64)" in problems
  assert "unexpected: latent_blocks.0.cross_attn.extra.weight (4,)" in problems
  assert ("shape mismatch: output.weight expected (3, 16, 3, 3), got (3, 16, 5, 5)"
          in problems)
  assert len(problems) == 3 and "3 problem(s)" in info.value.summary
  assert "\n" not in info.value.summary


def test_prompt_encoder_of_the_other_width_names_the_override():
  # A GenLV-30 checkpoint (width 64) given to a GenLV-101 config (width 32), and back.
  state_dict = _state_dict(_config(prompt_encoder_width=8))
  with pytest.raises(CheckpointMismatchError) as info:
    torch_to_flax(state_dict, _config())
  assert info.value.summary == (
      "the checkpoint's prompt encoder has width 8, the config's 4: add "
      "--config.model.prompt_encoder_width=8")
  assert torch_to_flax(state_dict, _config(prompt_encoder_width=8))  # the override loads it


def test_flax_to_torch_refuses_params_of_another_config():
  params = _random_flax_params(_config())
  with pytest.raises(CheckpointMismatchError, match="Flax params does not match"):
    flax_to_torch(params, _config(bias=True))


def test_an_xrestormer_checkpoint_is_not_a_genlv_checkpoint():
  with pytest.raises(CheckpointMismatchError) as info:
    torch_to_flax(_state_dict(_config(use_prompt=False, checkpoint_channel_order="rgb")),
                  _config())
  assert "missing: Prompt_KV_Encoder.prompt_embedding.conv_first.weight (4, 3, 3, 3)" in (
      info.value.problems)


# ----------------------------------------------------------------------------- files


@pytest.fixture(scope="module")
def tiny_state_dict():
  return _state_dict(_config())


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_write_then_read_is_exact(tmp_path, tiny_state_dict, suffix):
  path = tmp_path / f"model{suffix}"
  write_torch_file(path, tiny_state_dict)
  back = read_torch_file(path)
  assert back.keys() == tiny_state_dict.keys()
  assert all(np.array_equal(back[k], v) for k, v in tiny_state_dict.items())


def _save(path, obj):
  torch.save(obj, path)
  return str(path)


def _tensors(state_dict, prefix="", scale=1.0):
  return {prefix + k: torch.from_numpy(v * scale) for k, v in state_dict.items()}


def _authors_checkpoint(state_dict, **extra):
  """The layout of the authors' released files (MAE's misc.save_model): the weights under
  `model`, the training state beside them, the command line as an argparse.Namespace."""
  return {"model": state_dict,
          "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
          "epoch": 49, "scaler": {"scale": 65536.0, "growth_factor": 2.0},
          "args": argparse.Namespace(model="xrestormer_prompt_crossattn_base", batch_size=8,
                                     input_size=256, lr=1e-4, output_dir="./output"),
          **extra}


def test_authors_checkpoint_layout_loads(tmp_path, tiny_state_dict):
  config = _config()
  want = _flat(torch_to_flax(tiny_state_dict, config))
  path = _save(tmp_path / "checkpoint-49.pth", _authors_checkpoint(_tensors(tiny_state_dict)))
  got = _flat(load_torch_checkpoint(path, config))
  assert got.keys() == want.keys()
  assert all(np.array_equal(got[k], want[k]) for k in want)


def test_authors_layout_with_code_in_it_is_still_refused(tmp_path, tiny_state_dict):
  # argparse.Namespace is allowed; anything else that is not plain data still is not.
  marker = tmp_path / "pwned"
  path = _save(tmp_path / "evil.pth", _authors_checkpoint(
      _tensors(tiny_state_dict), scaler=_CreatesFileWhenUnpickled(marker)))
  with pytest.raises(UnsafeCheckpointError, match="nothing was executed"):
    read_torch_file(path)
  assert not marker.exists()


def test_basicsr_layouts_load(tmp_path, tiny_state_dict):
  config = _config()
  want = _flat(torch_to_flax(tiny_state_dict, config))
  layouts = {
      "bare": _tensors(tiny_state_dict),
      "params": {"params": _tensors(tiny_state_dict)},
      "module_prefix": {"params": _tensors(tiny_state_dict, prefix="module.")},
      # Both entries: params_ema (the evaluated EMA weights) wins over params.
      "ema": {"params": _tensors(tiny_state_dict, scale=2.0),
              "params_ema": _tensors(tiny_state_dict, prefix="module.")},
  }
  for name, obj in layouts.items():
    got = _flat(load_torch_checkpoint(_save(tmp_path / f"{name}.pth", obj), config))
    assert all(np.array_equal(got[k], want[k]) for k in want), name
  raw = read_torch_file(tmp_path / "ema.pth", param_key="params")
  np.testing.assert_array_equal(raw["output.weight"], 2.0 * tiny_state_dict["output.weight"])


def test_half_precision_safetensors_load_as_float32(tmp_path, tiny_state_dict):
  from safetensors.torch import save_file
  path = str(tmp_path / "bf16.safetensors")
  save_file({k: torch.from_numpy(v).bfloat16() for k, v in tiny_state_dict.items()}, path)
  params = load_torch_checkpoint(path, _config())
  kernel = params["output"]["kernel"]
  assert kernel.dtype == np.float32
  np.testing.assert_allclose(kernel, torch_to_flax(tiny_state_dict, _config())["output"]["kernel"],
                             rtol=1e-2, atol=1e-2)


class _CreatesFileWhenUnpickled:
  """A payload whose unpickling calls open(marker, 'w'): it would create the marker file."""

  def __init__(self, marker):
    self.marker = str(marker)

  def __reduce__(self):
    return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_without_running(tmp_path, writer):
  marker = tmp_path / "pwned"
  path = tmp_path / "malicious.pth"
  payload = {"params": _CreatesFileWhenUnpickled(marker)}
  if writer == "torch.save":
    torch.save(payload, path)
  else:
    with open(path, "wb") as f:
      pickle.dump(payload, f, protocol=2)
  with pytest.raises(UnsafeCheckpointError, match="nothing was executed"):
    read_torch_file(path)
  assert not marker.exists()
  if writer == "pickle.dump":  # control: an unrestricted unpickler would have run it
    with open(path, "rb") as f:
      pickle.load(f)
    assert marker.exists()


def test_unreadable_files_give_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="checkpoint not found"):
    read_torch_file(tmp_path / "missing.pth")
  (tmp_path / "empty.pth").write_bytes(b"")
  (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 32)
  (tmp_path / "model.bin").write_bytes(b"\x00")
  for name in ("empty.pth", "junk.safetensors", "model.bin"):
    with pytest.raises(TorchCheckpointError) as info:
      read_torch_file(tmp_path / name)
    assert "\n" not in str(info.value) and name in str(info.value)
  with pytest.raises(TorchCheckpointError, match="no 'params_ema' entry"):
    read_torch_file(_save(tmp_path / "p.pth", {"params": {}}), param_key="params_ema")
