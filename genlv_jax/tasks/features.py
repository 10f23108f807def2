"""Feature-extraction targets computable on the host (Table IX): Canny and Laplacian edges
(exactly PromptGIP's `dataset/image_operators.py` recipes) and Hough lines.

Maps are single-channel, returned replicated to three channels in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from genlv_jax.tasks import _util


def _gray_u8_blurred(clean: np.ndarray) -> np.ndarray:
  """8-bit gray after a 3×3 Gaussian blur, PromptGIP's pre-processing of both detectors (it
  blurs the 8-bit colour image first, then converts to gray; so do we)."""
  u8 = cv2.GaussianBlur(_util.to_uint8(clean), (3, 3), 0)
  return cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY)


def canny_edges(clean: np.ndarray, unused: float = 0.0,
                rng: np.random.Generator | None = None, low: int = 50, high: int = 200
                ) -> np.ndarray:
  """Canny edge map (hysteresis thresholds 50 / 200, PromptGIP `Canny_edge_detector`)."""
  del unused, rng
  edges = cv2.Canny(_gray_u8_blurred(clean), low, high)
  return _util.gray3(_util.from_uint8(edges))


def laplacian_edges(clean: np.ndarray, unused: float = 0.0,
                    rng: np.random.Generator | None = None) -> np.ndarray:
  """|Laplacian| of the 8-bit gray image, saturated to 8 bits (PromptGIP
  `Laplacian_edge_detector`: cv2.Laplacian to CV_16S, then convertScaleAbs)."""
  del unused, rng
  lap = cv2.convertScaleAbs(cv2.Laplacian(_gray_u8_blurred(clean), cv2.CV_16S))
  return _util.gray3(_util.from_uint8(lap))


def hough_lines(clean: np.ndarray, unused: float = 0.0,
                rng: np.random.Generator | None = None) -> np.ndarray:
  """Straight-line map: probabilistic Hough transform (cv2.HoughLinesP) on the Canny edges,
  segments of at least 1/8 of the shorter side drawn white on black (1 px per 256 px)."""
  del unused, rng
  gray = _gray_u8_blurred(clean)
  edges = cv2.Canny(gray, 50, 150)
  short = min(gray.shape)
  lines = cv2.HoughLinesP(edges, rho=1, theta=np.pi / 180, threshold=max(10, short // 8),
                          minLineLength=max(8, short // 8), maxLineGap=max(2, short // 64))
  canvas = np.zeros_like(gray)
  thickness = max(1, int(round(short / 256)))
  if lines is not None:
    for x1, y1, x2, y2 in np.asarray(lines).reshape(-1, 4):
      cv2.line(canvas, (int(x1), int(y1)), (int(x2), int(y2)), 255, thickness)
  return _util.gray3(_util.from_uint8(canvas))
