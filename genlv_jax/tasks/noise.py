"""Noise degradations (Table VI group 3 and the impulse / denoising rows).

Every function takes a clean HxWx3 float32 image in [0, 1], a parameter value (the physical
knob named in its catalogue entry) and a numpy Generator, and returns the degraded image
(unclipped; `Task.synthesize` clips). Ranges are set in the catalogue, following PromptGIP
(`evaluate/add_degradation_various.py`) where it has the operator.
"""

from __future__ import annotations

import cv2
import numpy as np


def gaussian_noise(clean: np.ndarray, sigma_255: float, rng: np.random.Generator) -> np.ndarray:
  """Additive white Gaussian noise with standard deviation `sigma_255`/255, i.i.d. per channel
  (PromptGIP `add_Gaussian_noise`)."""
  noise = rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(sigma_255 / 255.0)
  return clean + noise


def poisson_noise(clean: np.ndarray, peak: float, rng: np.random.Generator) -> np.ndarray:
  """Shot noise: Poisson(clean·peak)/peak (PromptGIP `add_Poisson_noise`, peak = 10**level)."""
  return rng.poisson(clean.astype(np.float64) * peak).astype(np.float32) / np.float32(peak)


def speckle_noise(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
  """Multiplicative noise clean·(1 + n), n ~ N(0, sigma²) (ImageNet-C `speckle_noise`)."""
  return clean * (1.0 + rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(sigma))


def correlation_kernel(kernel_sigma: float = 1.0) -> np.ndarray:
  """2-D Gaussian kernel that colours the noise of `correlated_noise`."""
  k1 = cv2.getGaussianKernel(2 * int(np.ceil(3 * kernel_sigma)) + 1, kernel_sigma, cv2.CV_64F)
  return (k1 @ k1.T).astype(np.float32)


def correlated_noise(clean: np.ndarray, sigma_255: float, rng: np.random.Generator,
                     kernel_sigma: float = 1.0) -> np.ndarray:
  """Spatially correlated Gaussian noise: white noise low-passed by a Gaussian kernel
  (std `kernel_sigma` px), rescaled so that its marginal std is `sigma_255`/255."""
  kernel = correlation_kernel(kernel_sigma)
  white = rng.standard_normal(clean.shape, dtype=np.float32)
  colored = cv2.filter2D(white, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
  # Filtering unit-variance white noise with k gives variance sum(k²): divide it out.
  colored /= np.float32(np.sqrt(np.sum(kernel.astype(np.float64) ** 2)))
  return clean + colored * np.float32(sigma_255 / 255.0)


def salt_and_pepper(clean: np.ndarray, amount: float, rng: np.random.Generator,
                    salt_ratio: float = 0.5) -> np.ndarray:
  """Impulse noise: a fraction `amount` of the pixels (all three channels together) is set to
  1 (salt, probability `salt_ratio`) or 0 (pepper) — PromptGIP `add_sp_noise` (snr 0.95, i.e.
  amount 0.05, salt 0.5), vectorised."""
  h, w, _ = clean.shape
  hit = rng.random((h, w)) < amount
  salt = rng.random((h, w)) < salt_ratio
  out = clean.copy()
  out[hit & salt] = 1.0
  out[hit & ~salt] = 0.0
  return out


def rician_noise(clean: np.ndarray, sigma_255: float, rng: np.random.Generator) -> np.ndarray:
  """Rician noise, the magnitude-MRI noise model: |clean + n1 + i·n2|, n ~ N(0, sigma²)."""
  sigma = np.float32(sigma_255 / 255.0)
  n1 = rng.standard_normal(clean.shape, dtype=np.float32) * sigma
  n2 = rng.standard_normal(clean.shape, dtype=np.float32) * sigma
  return np.sqrt((clean + n1) ** 2 + n2 ** 2)


def poisson_gaussian_noise(clean: np.ndarray, peak: float, rng: np.random.Generator,
                           read_sigma_255: float = 2.0) -> np.ndarray:
  """Poisson–Gaussian noise (shot noise plus read noise), a simple low-dose CT model."""
  shot = poisson_noise(clean, peak, rng)
  return gaussian_noise(shot, read_sigma_255, rng)
