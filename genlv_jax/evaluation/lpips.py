"""LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric", CVPR 2018), version 0.1 with the AlexNet trunk, in jax.numpy on NHWC images.

Nothing is downloaded: the weights come from a file the user makes where the `lpips` package
is installed (it ships the `lin` layers and fetches the torchvision AlexNet trunk itself):

    import lpips, torch
    torch.save(lpips.LPIPS(net='alex').state_dict(), 'lpips_alex.pth')

`load_lpips('lpips_alex.pth')` (or the same keys in a `.safetensors` file) checks every key
and shape and returns the params; `lpips_distance(params, a, b)` gives one distance per image
pair for images in [0, 1], as `lpips.LPIPS(net='alex')(a, b, normalize=True)` does.

The computation (lpips/lpips.py and lpips/pretrained_networks.py of the original):
  1. [0, 1] -> [-1, 1], then the ScalingLayer (x - shift) / scale, which maps to the ImageNet
     statistics AlexNet was trained on (v0.0 lacked it: the "normalization bug").
  2. torchvision's AlexNet `features`, tapped after each ReLU (relu1 … relu5; the last max-pool
     is never reached).
  3. Per tap: unit-normalise over channels, squared difference, a 1x1 conv with non-negative
     weights and no bias (`lin`), spatial mean; the five values are summed.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from genlv_jax.errors import PathNotFoundError, UserError

# The ScalingLayer constants of lpips v0.1 (also stored as buffers in the model's state dict).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

# torchvision AlexNet `features` convolutions: (state-dict name, out, in, kernel, stride, pad,
# max-pool before it). lpips slices `features` as [0:2], [2:5], [5:8], [8:10], [10:12], so each
# slice holds one conv (at its torchvision index) and ends on that conv's ReLU.
_CONVS = (
    ("net.slice1.0", 64, 3, 11, 4, 2, False),
    ("net.slice2.3", 192, 64, 5, 1, 2, True),
    ("net.slice3.6", 384, 192, 3, 1, 1, True),
    ("net.slice4.8", 256, 384, 3, 1, 1, False),
    ("net.slice5.10", 256, 256, 3, 1, 1, False),
)
CHANNELS = tuple(c[1] for c in _CONVS)
# Smallest side with a non-empty relu5: 11x11/4 (pad 2) then two 3/2 max-pools need 31 px.
MIN_SIZE = 31
_EPS = 1e-10  # lpips.normalize_tensor

# {"shift": [3], "scale": [3], "convs": [(HWIO kernel, bias)] * 5, "lins": [[C]] * 5}, float32:
# a plain pytree, so that the jitted distance takes it as an argument and is traced once.
LPIPSParams = dict


class LPIPSWeightsError(UserError):
  """A weights file that is not the state dict of `lpips.LPIPS(net='alex')`."""


def _lin_name(k: int) -> str:
  # NetLinLayer with use_dropout=True (the default): model.0 is Dropout, model.1 the conv.
  return f"lin{k}.model.1.weight"


def _lin_alias(k: int) -> str:
  # LPIPS also registers lin0…lin4 in the ModuleList `lins`, so state_dict() names them twice.
  return f"lins.{k}.model.1.weight"


def expected_shapes() -> dict[str, tuple[int, ...]]:
  """The required keys of an LPIPS(net='alex') state dict and their (PyTorch) shapes."""
  shapes: dict[str, tuple[int, ...]] = {}
  for name, out, inp, kernel, *_ in _CONVS:
    shapes[f"{name}.weight"] = (out, inp, kernel, kernel)
    shapes[f"{name}.bias"] = (out,)
  for k, channels in enumerate(CHANNELS):
    shapes[_lin_name(k)] = (1, channels, 1, 1)
  return shapes


def _optional_shapes() -> dict[str, tuple[int, ...]]:
  shapes = {"scaling_layer.shift": (1, 3, 1, 1), "scaling_layer.scale": (1, 3, 1, 1)}
  shapes.update({_lin_alias(k): (1, c, 1, 1) for k, c in enumerate(CHANNELS)})
  return shapes


def _listing(names: list[str], limit: int = 4) -> str:
  shown = ", ".join(names[:limit])
  return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def params_from_state_dict(state_dict: Mapping[str, np.ndarray], source: str = "weights"
                           ) -> LPIPSParams:
  """An `lpips.LPIPS(net='alex')` state dict (numpy) -> LPIPS params; strict on keys/shapes.

  `lins.{k}.model.1.weight` may stand in for `lin{k}.model.1.weight` (safetensors keeps one
  name of tensors that share memory); when both are present they must agree.
  """
  state = {k: np.asarray(v, np.float32) for k, v in state_dict.items()}
  for k in range(len(CHANNELS)):
    if _lin_name(k) not in state and _lin_alias(k) in state:
      state[_lin_name(k)] = state[_lin_alias(k)]
  required, optional = expected_shapes(), _optional_shapes()
  missing = [k for k in required if k not in state]
  unexpected = sorted(k for k in state if k not in required and k not in optional)
  wrong = [f"{k} {tuple(state[k].shape)} (expected {shape})"
           for k, shape in {**required, **optional}.items()
           if k in state and tuple(state[k].shape) != shape]
  problems = []
  if missing:
    problems.append(f"missing {_listing(missing)}")
  if unexpected:
    problems.append(f"unexpected {_listing(unexpected)}")
  if wrong:
    problems.append(f"wrong shape {_listing(wrong, 2)}")
  if problems:
    hint = ""
    if missing and all(k.startswith("net.") for k in missing):
      # The lpips package's own weights/v0.1/alex.pth holds only the lin layers.
      hint = " (a file of lin layers only: save the whole model's state_dict, see docs/USING.md)"
    raise LPIPSWeightsError(f"{source} is not an lpips.LPIPS(net='alex') state dict: "
                            + "; ".join(problems) + hint)
  for k in range(len(CHANNELS)):
    if _lin_alias(k) in state and not np.array_equal(state[_lin_alias(k)], state[_lin_name(k)]):
      raise LPIPSWeightsError(f"{source}: {_lin_name(k)} and {_lin_alias(k)} differ")
  bad = [k for k in required if not np.all(np.isfinite(state[k]))]
  if bad:
    raise LPIPSWeightsError(f"{source}: non-finite values in {_listing(bad)}")
  negative = [_lin_name(k) for k in range(len(CHANNELS)) if np.any(state[_lin_name(k)] < 0)]
  if negative:
    # The lpips trainer clamps lin weights at 0 after every step; negative ones can make a
    # distance negative, so the file is probably not a trained LPIPS.
    logging.warning("%s: negative LPIPS lin weights in %s", source, ", ".join(negative))
  shift = state.get("scaling_layer.shift", np.asarray(SHIFT, np.float32)).reshape(3)
  scale = state.get("scaling_layer.scale", np.asarray(SCALE, np.float32)).reshape(3)
  convs = [(jnp.asarray(state[f"{name}.weight"].transpose(2, 3, 1, 0)),  # OIHW -> HWIO
            jnp.asarray(state[f"{name}.bias"])) for name, *_ in _CONVS]
  lins = [jnp.asarray(state[_lin_name(k)].reshape(-1)) for k in range(len(CHANNELS))]
  return {"shift": jnp.asarray(shift), "scale": jnp.asarray(scale), "convs": convs,
          "lins": lins}


def _read_state_dict(path: str) -> dict[str, np.ndarray]:
  """{name: array} from a `.pth`/`.pt` (torch, weights_only) or `.safetensors` (no torch)."""
  from genlv_jax.bridge import torch_io
  if path.endswith(".safetensors"):
    # safetensors.numpy needs no torch, so a converted file works without the bridge extra.
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
      return torch_io.strip_module_prefix(load_file(path))
    except (SafetensorError, OSError, ValueError, TypeError) as e:
      first = (str(e).strip().splitlines() or [type(e).__name__])[0]
      raise LPIPSWeightsError(f"{path}: cannot read as float32 safetensors: {first}") from None
  if not path.endswith((".pth", ".pt")):
    raise LPIPSWeightsError(f"{path}: LPIPS weights must be a .pth, .pt or .safetensors file")
  try:
    import torch  # noqa: F401
  except ImportError:
    raise LPIPSWeightsError(
        f"{path}: reading a .pth needs PyTorch: pip install 'genlv-jax[bridge]', or convert "
        "the file to .safetensors") from None
  # weights_only loading: a pickle that refers to code is refused before anything runs.
  return torch_io.read_torch_file(path)


def load_lpips(path: str | os.PathLike) -> LPIPSParams:
  """Reads and checks LPIPS (AlexNet, v0.1) weights; see the module docstring for the file.

  Raises FileNotFoundError or LPIPSWeightsError / TorchCheckpointError (both ValueError), each
  with a one-line message.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    raise LPIPSWeightsError(f"{path}: a directory; LPIPS weights are one .pth or .safetensors")
  if not os.path.isfile(path):
    raise PathNotFoundError(f"LPIPS weights not found: {path}")
  params = params_from_state_dict(_read_state_dict(path), path)
  logging.info("LPIPS (AlexNet, v0.1) weights from %s", path)
  return params


def _alexnet_taps(params: LPIPSParams, x: jnp.ndarray) -> list[jnp.ndarray]:
  """relu1 … relu5 of torchvision AlexNet `features` on NHWC input."""
  taps = []
  for (kernel, bias), (*_, stride, pad, pool_first) in zip(params["convs"], _CONVS):
    if pool_first:  # MaxPool2d(3, 2): no padding, floor mode
      x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "VALID")
    # HIGHEST: the metric must not depend on TF32/bf16 conv defaults of an accelerator.
    x = jax.lax.conv_general_dilated(x, kernel, (stride, stride), ((pad, pad), (pad, pad)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)
    x = jax.nn.relu(x + bias)
    taps.append(x)
  return taps


def _unit_normalize(features: jnp.ndarray) -> jnp.ndarray:
  norm = jnp.sqrt(jnp.sum(features ** 2, axis=-1, keepdims=True))
  return features / (norm + _EPS)


@jax.jit
def _unit_features(params: LPIPSParams, images: jnp.ndarray) -> list[jnp.ndarray]:
  """relu1 … relu5 of images in [0, 1], each unit-normalised over channels."""
  scaled = (2.0 * images - 1.0 - params["shift"]) / params["scale"]
  return [_unit_normalize(f) for f in _alexnet_taps(params, scaled)]


@jax.jit
def _weighted_distance(units: list[jnp.ndarray], lins: list[jnp.ndarray]) -> jnp.ndarray:
  """Sum over taps of the spatial mean of lin-weighted squared differences: the first half of
  each batch against the second."""
  n = units[0].shape[0] // 2
  total = jnp.zeros(n, jnp.float32)
  for unit, lin in zip(units, lins):
    diff = (unit[:n] - unit[n:]) ** 2
    # The 1x1 lin conv commutes with the spatial mean: weight the channels, then average.
    total = total + jnp.mean(jnp.einsum("nhwc,c->nhw", diff, lin,
                                        precision=jax.lax.Precision.HIGHEST), axis=(1, 2))
  return total


def _distance(params: LPIPSParams, a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  # One trunk pass over both batches (half the convolution calls). The unit features are
  # materialised between two jitted programs: fused with the subtraction, XLA:CPU rounded the
  # two halves differently and put an image at ~1e-16 from itself, where the original's eager
  # PyTorch gives exactly 0 (the identity baseline of a clean input must read 0).
  return _weighted_distance(_unit_features(params, jnp.concatenate([a, b])), params["lins"])


def lpips_distance(params: LPIPSParams, a: Any, b: Any) -> jnp.ndarray:
  """LPIPS distance of each image pair: a, b are [N, H, W, 3] (or [H, W, 3]) in [0, 1];
  returns [N] float32 (a scalar array for one image). Compiled once per shape."""
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  if a.shape != b.shape:
    raise ValueError(f"LPIPS needs images of one shape, got {a.shape} and {b.shape}")
  single = a.ndim == 3
  if single:
    a, b = a[None], b[None]
  if a.ndim != 4 or a.shape[-1] != 3:
    raise ValueError(f"LPIPS needs RGB images [N, H, W, 3], got {a.shape}")
  if min(a.shape[1:3]) < MIN_SIZE:
    raise ValueError(f"LPIPS (AlexNet) needs images of at least {MIN_SIZE} px per side, got "
                     f"{a.shape[1]}x{a.shape[2]}")
  distances = _distance(params, a, b)
  return distances[0] if single else distances
