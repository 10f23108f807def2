"""Edge-aware filters behind the tone/structure tasks: local Laplacian filtering (LLF),
weighted-least-squares (WLS) smoothing, multi-scale tone manipulation (MTM) and relative total
variation (RTV) structure extraction.

These are the papers' "available toolkit" targets (ACMMM §4.1). They are deterministic and the
heaviest operators of the catalogue (RTV and MTM solve sparse linear systems); a `data/`
preparation step may precompute them (BENCHMARKS.md, "Data pipeline", measures their cost).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg

from genlv_jax.tasks import _util

# Minimum-degree ordering on A + Aᵀ suits these symmetric 5-point systems (~20 % faster than
# SuperLU's default COLAMD at 256²).
_ORDERING = "MMD_AT_PLUS_A"

# ---- Local Laplacian filtering (Paris, Hasinoff & Kautz 2011; fast version of Aubry et al.
# 2014, which discretises the reference intensity into a few levels and interpolates) ----------

def _gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
  pyr = [image]
  for _ in range(levels - 1):
    pyr.append(cv2.pyrDown(pyr[-1]))
  return pyr


def _laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
  gauss = _gaussian_pyramid(image, levels)
  lap = []
  for fine, coarse in zip(gauss[:-1], gauss[1:]):
    up = cv2.pyrUp(coarse, dstsize=(fine.shape[1], fine.shape[0]))
    lap.append(fine - up.reshape(fine.shape))
  lap.append(gauss[-1])
  return lap


def _collapse(lap: list[np.ndarray]) -> np.ndarray:
  out = lap[-1]
  for fine in reversed(lap[:-1]):
    out = cv2.pyrUp(out, dstsize=(fine.shape[1], fine.shape[0])).reshape(fine.shape) + fine
  return out


def _remap(image: np.ndarray, g: float, sigma_r: float, alpha: float, beta: float) -> np.ndarray:
  """Paris et al.'s point-wise remapping r_g: details (|i − g| ≤ sigma_r) raised to the power
  alpha, edges scaled by beta. float32 throughout."""
  d = image - np.float32(g)
  a = np.abs(d)
  if alpha == 0.5 and beta == 1.0:
    # The settings used here: σ·(a/σ)^½ = √(aσ) is >= a exactly when a <= σ, so the
    # remapped distance is max(√(aσ), a) — no power, no select.
    out = np.sqrt(a * np.float32(sigma_r))
    np.maximum(out, a, out=out)
  else:
    detail = np.power(np.minimum(a * np.float32(1.0 / sigma_r), np.float32(1.0)),
                      np.float32(alpha)) * np.float32(sigma_r)
    edge = np.float32(beta) * (a - np.float32(sigma_r)) + np.float32(sigma_r)
    out = np.where(a <= sigma_r, detail, edge)
  np.copysign(out, d, out=out)
  out += np.float32(g)
  return out


def local_laplacian(image: np.ndarray, sigma_r: float = 0.2, alpha: float = 0.5,
                    beta: float = 1.0, num_refs: int = 12) -> np.ndarray:
  """Fast local Laplacian filter on every channel of an HxWxC float32 image.

  alpha < 1 enhances detail, beta < 1 compresses range (Paris et al. 2011); the reference
  level is discretised into `num_refs` values and interpolated (Aubry et al. 2014).
  """
  image = image.astype(np.float32)
  h, w = image.shape[:2]
  levels = max(1, int(np.log2(min(h, w))) - 3)
  gauss = _gaussian_pyramid(image, levels)
  lo, hi = float(image.min()), float(image.max())
  refs = np.linspace(lo, hi, num_refs) if hi > lo else np.array([lo])
  step = float(refs[1] - refs[0]) if len(refs) > 1 else 1.0
  out = [np.zeros_like(g) for g in gauss]
  for g in refs.astype(np.float32):  # float32 scalars: a float64 one would promote the arrays
    lap = _laplacian_pyramid(_remap(image, float(g), sigma_r, alpha, beta), levels)
    for lvl in range(levels - 1):
      # Hat weight max(0, 1 − |G − g| / step), computed in place.
      weight = np.abs(gauss[lvl] - g)
      weight *= np.float32(-1 / step)
      weight += np.float32(1.0)
      np.maximum(weight, np.float32(0.0), out=weight)
      weight *= lap[lvl]
      out[lvl] += weight
  out[-1] = gauss[-1]
  return _collapse(out)


# ---- Weighted least squares smoothing (Farbman et al. 2008) and MTM ------------------------

def _weighted_laplacian_system(wx: np.ndarray, wy: np.ndarray, lam: float) -> sparse.csc_matrix:
  """I + lam·Lw, the 5-point system of WLS / RTV, with wx[i, j] the weight between pixel (i, j)
  and (i, j+1) and wy[i, j] the weight between (i, j) and (i+1, j) (zero on the last col/row)."""
  h, w = wx.shape
  n = h * w
  ex = (-lam * wx).ravel()
  ey = (-lam * wy).ravel()
  west = np.roll(ex, 1)   # weight to the left neighbour of pixel k is ex[k - 1]
  north = np.roll(ey, w)  # weight to the upper neighbour of pixel k is ey[k - w]
  diag = 1.0 - (ex + ey + west + north)
  a = sparse.diags([diag, ex[:-1], ex[:-1], ey[:-w], ey[:-w]], [0, 1, -1, w, -w],
                   shape=(n, n), format="csc")
  return a


def wls_smooth(guide_log: np.ndarray, target: np.ndarray, lam: float,
               alpha: float = 1.2, eps: float = 1e-4) -> np.ndarray:
  """Farbman et al.'s WLS edge-preserving smoothing of HxW `target` guided by log luminance."""
  h, w = target.shape
  dx = np.diff(guide_log, axis=1, append=guide_log[:, -1:])
  dy = np.diff(guide_log, axis=0, append=guide_log[-1:, :])
  wx = 1.0 / (np.abs(dx) ** alpha + eps)
  wy = 1.0 / (np.abs(dy) ** alpha + eps)
  wx[:, -1] = 0.0
  wy[-1, :] = 0.0
  solver = sparse_linalg.splu(_weighted_laplacian_system(wx, wy, lam), permc_spec=_ORDERING)
  return solver.solve(target.ravel().astype(np.float64)).reshape(h, w)


def multiscale_tone(image: np.ndarray, boosts: tuple[float, float, float] = (2.0, 1.6, 1.2),
                    lambdas: tuple[float, float, float] = (0.1, 0.8, 6.4)) -> np.ndarray:
  """Multi-scale tone manipulation (Farbman et al. 2008, Sec. 5): the log luminance is split
  by three WLS smoothings into fine / medium / coarse detail layers and a base, the details are
  boosted (`boosts`, fine first) and the colour ratios re-applied. Lambdas double-decade as in
  the paper's coarsening scheme; at 256 px this costs three sparse solves."""
  lum = np.maximum(_util.luminance(image), 1e-4).astype(np.float64)
  log_l = np.log(lum)
  base = [log_l] + [wls_smooth(log_l, log_l, lam) for lam in lambdas]
  details = [base[i] - base[i + 1] for i in range(3)]
  out_log = base[3] + sum(b * d for b, d in zip(boosts, details))
  new_lum = np.exp(out_log)
  return (image * (new_lum / lum)[:, :, None]).astype(np.float32)


# ---- Relative total variation (Xu, Yan, Xia & Jia 2012, "Structure extraction from texture
# via relative total variation"; parameters of its public `tsmooth`) --------------------------

def _rtv_weights(x: np.ndarray, sigma: float, sharpness: float) -> tuple[np.ndarray, np.ndarray]:
  eps = 1e-3
  fx = np.diff(x, axis=1, append=x[:, -1:])
  fy = np.diff(x, axis=0, append=x[-1:, :])
  w_total = 1.0 / np.maximum(np.sqrt(fx ** 2 + fy ** 2).mean(axis=2), sharpness)
  smooth = cv2.GaussianBlur(x.astype(np.float32), (0, 0), sigma).reshape(x.shape)
  gx = np.diff(smooth, axis=1, append=smooth[:, -1:])
  gy = np.diff(smooth, axis=0, append=smooth[-1:, :])
  wx = w_total / np.maximum(np.abs(gx).mean(axis=2), eps)
  wy = w_total / np.maximum(np.abs(gy).mean(axis=2), eps)
  wx[:, -1] = 0.0
  wy[-1, :] = 0.0
  return wx, wy


def relative_total_variation(image: np.ndarray, lam: float = 0.01, sigma: float = 3.0,
                             sharpness: float = 0.02, iterations: int = 4) -> np.ndarray:
  """RTV texture removal: `iterations` reweighted sparse solves (I + λ/2·Lw)·S = I, sigma
  halved each time (floor 0.5). Defaults are those of the authors' `tsmooth`."""
  img = image.astype(np.float64)
  h, w, c = img.shape
  x = img
  for _ in range(iterations):
    wx, wy = _rtv_weights(x, sigma, sharpness)
    solver = sparse_linalg.splu(_weighted_laplacian_system(wx, wy, lam / 2.0),
                                permc_spec=_ORDERING)
    x = solver.solve(img.reshape(h * w, c)).reshape(h, w, c)
    sigma = max(sigma / 2.0, 0.5)
  return x.astype(np.float32)
