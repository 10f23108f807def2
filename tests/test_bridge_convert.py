"""Weight conversion between Flax params and PyTorch state dicts, and PyTorch file I/O."""

from __future__ import annotations

import pickle

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the bridge is an extra: `pip install genlv-jax[bridge]`

# pylint: disable=wrong-import-position
from bridge_testutil import perturb_state_dict
from genlv_jax import checkpointing
from genlv_jax.api import abstract_params
from genlv_jax.bridge import (UnsafeCheckpointError, build_torch_model, flax_to_torch,
                              load_torch_checkpoint, read_torch_file, torch_to_flax,
                              write_torch_file)
from genlv_jax.bridge.convert import is_prompt_key, torch_shapes
from genlv_jax.bridge.torch_io import TorchCheckpointError
from genlv_jax.checkpointing import CheckpointMismatchError
from genlv_jax.config_io import load_config
from genlv_jax.models import build_model


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
  return {k: np.asarray(v) for k, v in checkpointing.flatten_params(tree).items()}


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
  assert abs(total / 26.04e6 - 1) < 0.005  # DESIGN §3: the backbone has 26.04 M params


@pytest.mark.parametrize("config", [
    _config(), _config(scan_blocks=True, bias=True), _config("configs/base.py"),
    _config("configs/xrestormer.py:sr")], ids=["tiny", "tiny-scan-bias", "base", "xrestormer-sr"])
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
      stacked["latent"]["blocks"]["prompt_attn"]["to_q"]["kernel"][1],
      flat["latent"]["block_1"]["prompt_attn"]["to_q"]["kernel"])


# ----------------------------------------------------------------------------- strictness


def test_mismatching_state_dict_lists_missing_unexpected_and_misshaped_keys():
  config = _config()
  state_dict = _state_dict(config)
  del state_dict["latent.0.prompt_attn.to_k.weight"]
  state_dict["latent.0.prompt_attn.extra.weight"] = np.zeros((4,), np.float32)
  state_dict["output.weight"] = np.zeros((3, 16, 5, 5), np.float32)
  with pytest.raises(CheckpointMismatchError) as info:
    torch_to_flax(state_dict, config)
  problems = info.value.problems
  assert "missing: latent.0.prompt_attn.to_k.weight (64, 64, 1, 1)" in problems
  assert "unexpected: latent.0.prompt_attn.extra.weight (4,)" in problems
  assert ("shape mismatch: output.weight expected (3, 16, 3, 3), got (3, 16, 5, 5)"
          in problems)
  assert len(problems) == 3 and "3 problem(s)" in info.value.summary
  assert "\n" not in info.value.summary


def test_flax_to_torch_refuses_params_of_another_config():
  params = _random_flax_params(_config())
  with pytest.raises(CheckpointMismatchError, match="Flax params does not match"):
    flax_to_torch(params, _config(bias=True))


def test_backbone_only_loads_an_xrestormer_checkpoint_into_genlv():
  genlv = _config()
  backbone = _config(use_prompt=False)  # the same backbone without the prompt path
  state_dict = _state_dict(backbone, seed=1)
  fresh = _random_flax_params(genlv, seed=2)

  with pytest.raises(CheckpointMismatchError) as info:  # strict by default
    torch_to_flax(state_dict, genlv)
  assert "missing: prompt_encoder.conv_first.weight (8, 3, 3, 3)" in info.value.problems

  params = _flat(torch_to_flax(state_dict, genlv, backbone_only=True, init_params=fresh))
  assert params.keys() == _flat(fresh).keys()
  from_file = _flat(torch_to_flax(state_dict, backbone))
  for key, value in params.items():
    expected = _flat(fresh)[key] if is_prompt_key(key) else from_file[key]
    np.testing.assert_array_equal(value, expected, err_msg=key)


def test_backbone_only_still_refuses_a_wrong_backbone():
  with pytest.raises(CheckpointMismatchError):
    torch_to_flax(_state_dict(_config(use_prompt=False, dim=16)), _config(), backbone_only=True,
                  init_params=_random_flax_params(_config()))


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
