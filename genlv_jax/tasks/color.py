"""Tone and colour operators for the enhancement tasks (Table VII groups 12–14): saturation,
contrast and brightness changes, exposure, vignetting, white balance, Instagram-like filters,
histogram equalisation, and PromptGIP's synthetic low light.

Each operator maps a clean image to the *edited* image; the catalogue decides the direction
(for "... Correction" / "... Removal" tasks the edited image is the input and clean the target).
The six group-12 edits (saturation, contrast, brightness) follow GenLV's own loader
(x_distortion, five severities each; the catalogue gives the levels); at their strongest they
clip, as theirs do. The other edits are ours, chosen to be (nearly) invertible.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from genlv_jax.tasks import _util


def saturation(clean: np.ndarray, factor: float, rng: np.random.Generator | None = None
               ) -> np.ndarray:
  """Scales chroma about grey in YCrCb, as GenLV's loader does (x_distortion
  `saturate_*_YCrCb`): Cr and Cb scaled by `factor` about their neutral value and clipped to
  their range, Y kept (factor > 1 strengthens). Without clipping this is Y + factor·(x − Y)
  for the BT.601 luma Y."""
  del rng
  ycc = cv2.cvtColor(np.clip(clean, 0.0, 1.0).astype(np.float32), cv2.COLOR_RGB2YCrCb)
  chroma = ycc[:, :, 1:]
  np.clip(np.float32(0.5) + np.float32(factor) * (chroma - np.float32(0.5)), 0.0, 1.0,
          out=chroma)
  return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def contrast(clean: np.ndarray, factor: float, rng: np.random.Generator | None = None
             ) -> np.ndarray:
  """Scales about the mean luma: m + factor·(x − m) (factor > 1 strengthens) — what
  `PIL.ImageEnhance.Contrast` computes (GenLV x_distortion `contrast_*_scale`)."""
  del rng
  m = float(_util.luminance(clean).mean())
  return m + factor * (clean - m)


def darken(clean: np.ndarray, gamma: float, rng: np.random.Generator | None = None
           ) -> np.ndarray:
  """Brightness darkening by a gamma curve x**gamma (gamma > 1), as GenLV's loader darkens
  (x_distortion `brightness_darken_gamma_RGB`; blacks and whites stay, mid-tones sink)."""
  del rng
  return np.power(np.clip(clean, 0.0, 1.0), gamma)


def brighten(clean: np.ndarray, gamma: float, rng: np.random.Generator | None = None
             ) -> np.ndarray:
  """Brightness brightening by a gamma curve x**gamma (gamma < 1; no highlight clipping), as
  GenLV's loader brightens (x_distortion `brightness_brighten_gamma_RGB`)."""
  del rng
  return np.power(np.clip(clean, 0.0, 1.0), gamma)


def low_light(clean: np.ndarray, lum_scale: float, rng: np.random.Generator | None = None
              ) -> np.ndarray:
  """PromptGIP `low_light`: every value multiplied by `lum_scale` (0.3–0.4 in its chains)."""
  del rng
  return clean * lum_scale


def sample_exposure_sign(severity: float, rng: np.random.Generator) -> dict:
  """Over- or under-exposure, shared by the prompt and input pairs."""
  del severity
  return {"sign": float(rng.choice([-1.0, 1.0]))}


def exposure(clean: np.ndarray, stops: float, rng: np.random.Generator,
             sign: float = 1.0) -> np.ndarray:
  """Exposure error of ±`stops` EV applied in linear light (sRGB decoded, scaled by 2**±stops,
  re-encoded); over-exposure clips highlights as a camera would."""
  del rng
  lin = _util.srgb_to_linear(clean) * (2.0 ** (sign * stops))
  return _util.linear_to_srgb(np.clip(lin, 0.0, 1.0))


def vignette(clean: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
  """Radial light fall-off: x·(1 − strength·r²), r the distance from a slightly jittered
  optical centre normalised to 1 at the farthest corner."""
  h, w, _ = clean.shape
  cy = h / 2.0 + rng.uniform(-0.05, 0.05) * h
  cx = w / 2.0 + rng.uniform(-0.05, 0.05) * w
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  r2 = (yy - cy) ** 2 + (xx - cx) ** 2
  r2 /= r2.max()
  return clean * (1.0 - strength * r2)[:, :, None]


def sample_cast_direction(severity: float, rng: np.random.Generator) -> dict:
  """A colour-cast direction (an angle on the log-chroma plane), shared by both pairs."""
  del severity
  return {"angle": float(rng.uniform(0.0, 2 * np.pi))}


def white_balance(clean: np.ndarray, magnitude: float, rng: np.random.Generator,
                  angle: float = 0.0) -> np.ndarray:
  """Wrong white balance: per-channel gains exp(magnitude·u) in linear light, u a unit vector
  on the log-chroma plane at `angle` (warm/cool and green/magenta casts), normalised so that
  the luma of grey stays unchanged."""
  del rng
  # Two orthonormal chroma axes in log-RGB (orthogonal to the grey axis (1, 1, 1)).
  a = np.array([1.0, 0.0, -1.0]) / np.sqrt(2.0)
  b = np.array([-1.0, 2.0, -1.0]) / np.sqrt(6.0)
  gains = np.exp(magnitude * (np.cos(angle) * a + np.sin(angle) * b))
  gains /= float(gains @ _util.LUMA_WEIGHTS)
  lin = _util.srgb_to_linear(clean) * gains.astype(np.float32)
  return _util.linear_to_srgb(np.clip(lin, 0.0, 1.0))


def equalize_histogram(clean: np.ndarray, unused: float = 0.0,
                       rng: np.random.Generator | None = None) -> np.ndarray:
  """Per-channel global histogram equalisation (cv2.equalizeHist on 8 bits) — the underwater
  contrast enhancement ("ICE") of the ACMMM paper §4.1; per-channel equalisation also removes
  the blue-green cast."""
  del unused, rng
  u8 = _util.to_uint8(clean)
  return _util.from_uint8(np.stack([cv2.equalizeHist(u8[:, :, c]) for c in range(3)], axis=2))


# ---- Instagram-like filters ------------------------------------------------------------------
# Each filter is a small composition of tone curves, colour mixing and tints, in the spirit of
# the CSS re-creations of Instagram filters (IFFI, the filter-removal dataset, uses the real ones).

def _curve(x: np.ndarray, lift: float, gain: float, gamma: float) -> np.ndarray:
  return lift + (gain - lift) * np.power(np.clip(x, 0, 1), gamma)


def _sepia(x: np.ndarray) -> np.ndarray:
  m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
  return x @ m.T


def _clarendon(x):
  y = contrast(saturation(x, 1.35), 1.2)
  return y + np.array([-0.02, 0.0, 0.05], np.float32) * (1 - _util.luminance(x))[:, :, None]


def _gingham(x):
  return _curve(saturation(x, 0.8), 0.12, 0.95, 1.0) * np.array([1.03, 1.0, 0.95], np.float32)


def _valencia(x):
  return contrast(_curve(x, 0.05, 1.0, 0.95), 1.08) * np.array([1.08, 1.0, 0.88], np.float32)


def _nashville(x):
  y = np.stack([_curve(x[..., 0], 0.1, 1.0, 0.9), _curve(x[..., 1], 0.05, 0.95, 1.0),
                _curve(x[..., 2], 0.2, 0.85, 1.1)], axis=2)
  return contrast(y, 1.1)


def _toaster(x):
  y = contrast(saturation(x, 1.2), 1.3) * np.array([1.1, 0.95, 0.8], np.float32)
  return vignette(y + 0.04, 0.5, np.random.default_rng(0))


def _moon(x):
  y = _util.gray3(_util.luminance(x))
  return contrast(_curve(y, 0.05, 1.0, 0.9), 1.15)


def _seventies(x):
  return 0.75 * saturation(x, 1.3) + 0.25 * np.array([0.95, 0.55, 0.6], np.float32)


def _sepia_fade(x):
  return _curve(_sepia(x), 0.08, 0.98, 1.0)


INSTAGRAM_FILTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "clarendon": _clarendon, "gingham": _gingham, "valencia": _valencia,
    "nashville": _nashville, "toaster": _toaster, "moon": _moon, "1977": _seventies,
    "sepia": _sepia_fade,
}


def sample_filter(severity: float, rng: np.random.Generator) -> dict:
  """Which filter a quadruplet shows (shared by its prompt and input pairs)."""
  del severity
  return {"filter_name": str(rng.choice(sorted(INSTAGRAM_FILTERS)))}


def instagram_filter(clean: np.ndarray, strength: float, rng: np.random.Generator,
                     filter_name: str = "clarendon") -> np.ndarray:
  """Applies the named filter blended with the original by `strength` (1 = full filter)."""
  del rng
  filtered = np.clip(INSTAGRAM_FILTERS[filter_name](clean), 0.0, 1.0)
  return (1.0 - strength) * clean + strength * filtered
