"""Noise degradations (Table VI group 3 and the impulse / denoising rows).

Every function takes a clean HxWx3 float32 image in [0, 1], a parameter value (the physical
knob named in its catalogue entry) and a numpy Generator, and returns the degraded image
(unclipped; `Task.synthesize` clips). Ranges are set in the catalogue, following GenLV's own
loader (`chxy95/GenLV`, `extended_version/dataset/x_distortion/noise.py`) and PromptGIP
(`add_degradation_various.py`) where they have the operator.
"""

from __future__ import annotations

import cv2
import numpy as np

from genlv_jax.tasks import _util

# Below this mean count Poisson noise is drawn exactly; above it by a normal approximation.
_POISSON_EXACT_BELOW = 10.0


def gaussian_noise(clean: np.ndarray, sigma_255: float, rng: np.random.Generator) -> np.ndarray:
  """Additive white Gaussian noise with standard deviation `sigma_255`/255, i.i.d. per channel
  (GenLV x_distortion `noise_gaussian_RGB`; PromptGIP `add_Gaussian_noise`)."""
  return clean + _util.standard_normal(rng, clean.shape) * np.float32(sigma_255 / 255.0)


def poisson_noise(clean: np.ndarray, peak: float, rng: np.random.Generator) -> np.ndarray:
  """Shot noise, per channel: Poisson(clean·peak)/peak (GenLV x_distortion `noise_poisson`,
  peak = c ∈ {80, 60, 40, 25, 15}; PromptGIP `add_Poisson_noise`, peak = 10**level = 100).

  numpy's Poisson sampler costs 35–130 ns a count (7 ms per 256² image), so counts with mean
  λ >= 10 are drawn as round(λ + z·√λ + (z² − 1)/6), the Cornish–Fisher expansion of the
  Poisson quantile (mean λ, variance λ + 0.14, skewness ≈ 1/√λ as Poisson's); darker pixels,
  where the discreteness shows, are drawn exactly.
  """
  lam = np.maximum(clean, 0.0, dtype=np.float32) * np.float32(peak)
  z = _util.standard_normal(rng, clean.shape)
  counts = lam + z * np.sqrt(lam) + (z * z - np.float32(1.0)) * np.float32(1 / 6)
  np.maximum(np.round(counts, out=counts), 0.0, out=counts)
  dark = lam < _POISSON_EXACT_BELOW
  if dark.any():
    counts[dark] = rng.poisson(lam[dark].astype(np.float64))
  return counts / np.float32(peak)


def speckle_noise(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
  """Multiplicative noise clean·(1 + n), n ~ N(0, sigma²) (GenLV x_distortion `noise_speckle`,
  after ImageNet-C `speckle_noise`)."""
  return clean * (1.0 + _util.standard_normal(rng, clean.shape) * np.float32(sigma))


def correlated_noise(clean: np.ndarray, sigma_255: float, rng: np.random.Generator) -> np.ndarray:
  """Spatially correlated noise as GenLV's loader makes it (x_distortion
  `noise_spatially_correlated`): white Gaussian noise of std `sigma_255`/255 is added, then the
  noisy image is 3×3 box-filtered — so the noise left has std sigma/3 and correlation 2/3
  between neighbours, and the image itself is slightly blurred."""
  noisy = clean + _util.standard_normal(rng, clean.shape) * np.float32(sigma_255 / 255.0)
  return cv2.blur(noisy, (3, 3)).reshape(clean.shape)


def salt_and_pepper(clean: np.ndarray, amount: float, rng: np.random.Generator,
                    salt_ratio: float = 0.5) -> np.ndarray:
  """Impulse noise: a fraction `amount` of the pixels (all three channels together) is set to
  1 (salt, probability `salt_ratio`) or 0 (pepper) — PromptGIP `add_sp_noise` (snr 0.95, i.e.
  amount 0.05, salt 0.5), vectorised."""
  # One uniform draw per pixel decides both: u < amount·ratio is salt, the rest of
  # u < amount is pepper — the same probabilities as two independent draws.
  u = rng.random(clean.shape[:2], dtype=np.float32)
  out = clean.copy()
  out[u < amount] = 0.0
  out[u < amount * salt_ratio] = 1.0
  return out


def rician_noise(clean: np.ndarray, sigma_255: float, rng: np.random.Generator) -> np.ndarray:
  """Rician noise, the magnitude-MRI noise model: |clean + n1 + i·n2|, n ~ N(0, sigma²)."""
  sigma = np.float32(sigma_255 / 255.0)
  n1 = _util.standard_normal(rng, clean.shape) * sigma
  n2 = _util.standard_normal(rng, clean.shape) * sigma
  return np.sqrt((clean + n1) ** 2 + n2 ** 2)


def poisson_gaussian_noise(clean: np.ndarray, peak: float, rng: np.random.Generator,
                           read_sigma_255: float = 2.0) -> np.ndarray:
  """Poisson–Gaussian noise (shot noise plus read noise), a simple low-dose CT model."""
  shot = poisson_noise(clean, peak, rng)
  return gaussian_noise(shot, read_sigma_255, rng)
