"""PSNR / SSIM in BasicSR's convention (`evaluation.metrics.basicsr_psnr` / `basicsr_ssim`,
`evaluate --convention basicsr`) against a reference written here from BasicSR's
basicsr/metrics/psnr_ssim.py and metric_util.py:

- images on [0, 255] in float64; `crop_border` pixels cut from each edge;
- `test_y_channel`: MATLAB's rgb2ycbcr Y, 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G,
  B on [0, 255] (BasicSR's bgr2ycbcr(y_only=True) on its BGR images);
- PSNR 10 log10(255² / MSE), infinite for identical images;
- SSIM per channel: `cv2.filter2D` with the 11×11 window outer(g, g), g = cv2.getGaussianKernel(
  11, 1.5), cropped [5:-5, 5:-5] (valid positions), C1 = (0.01·255)², C2 = (0.03·255)², the map's
  mean, then the mean over channels; the filter is cross-checked with scipy's valid
  correlation, and the Y channel is computed pixel by pixel.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from scipy import signal

from conftest import config_path, user_error
from genlv_jax import evaluate
from genlv_jax.evaluation import metrics

TINY = config_path("tiny")


# ---- the reference, from BasicSR's formulas ----------------------------------------------------

def ref_y(img: np.ndarray) -> np.ndarray:
  """HxWx3 RGB on [0, 255] -> HxWx1 Y, pixel by pixel."""
  out = np.empty(img.shape[:2] + (1,), np.float64)
  for i in range(img.shape[0]):
    for j in range(img.shape[1]):
      r, g, b = (float(v) for v in img[i, j])
      out[i, j, 0] = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
  return out


def ref_prepare(img, img2, crop_border, y):
  img, img2 = np.asarray(img, np.float64), np.asarray(img2, np.float64)
  if crop_border:
    img = img[crop_border:-crop_border, crop_border:-crop_border]
    img2 = img2[crop_border:-crop_border, crop_border:-crop_border]
  if y:
    img, img2 = ref_y(img), ref_y(img2)
  return img, img2


def ref_psnr(img, img2, crop_border=0, y=False) -> float:
  img, img2 = ref_prepare(img, img2, crop_border, y)
  mse = np.mean((img - img2) ** 2)
  return float("inf") if mse == 0 else 10.0 * math.log10(255.0 * 255.0 / mse)


def ref_ssim_channel(img, img2, filt) -> float:
  c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
  mu1, mu2 = filt(img), filt(img2)
  sigma1_sq = filt(img ** 2) - mu1 ** 2
  sigma2_sq = filt(img2 ** 2) - mu2 ** 2
  sigma12 = filt(img * img2) - mu1 * mu2
  ssim_map = (((2 * mu1 * mu2 + c1) * (2 * sigma12 + c2))
              / ((mu1 ** 2 + mu2 ** 2 + c1) * (sigma1_sq + sigma2_sq + c2)))
  return float(ssim_map.mean())


WINDOW = np.outer(cv2.getGaussianKernel(11, 1.5), cv2.getGaussianKernel(11, 1.5).T)


def cv2_valid(x):
  """BasicSR's filter: cv2.filter2D then [5:-5, 5:-5]."""
  return cv2.filter2D(x, -1, WINDOW)[5:-5, 5:-5]


def scipy_valid(x):
  return signal.correlate2d(x, WINDOW, mode="valid")


def ref_ssim(img, img2, crop_border=0, y=False, filt=cv2_valid) -> float:
  img, img2 = ref_prepare(img, img2, crop_border, y)
  return float(np.mean([ref_ssim_channel(img[..., c], img2[..., c], filt)
                        for c in range(img.shape[2])]))


# ---- images -------------------------------------------------------------------------------------

def _random_pairs():
  rng = np.random.default_rng(17)
  pairs = []
  for h, w in ((32, 32), (40, 29)):
    a = rng.integers(0, 256, size=(h, w, 3)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 12, size=a.shape), 0, 255).round()
    pairs.append((f"uint8-noise-{h}x{w}", a, b))
  a = rng.uniform(0, 255, size=(36, 36, 3))
  pairs.append(("float-uniform", a, rng.uniform(0, 255, size=a.shape)))
  return pairs


def _fixed_pairs():
  ramp = np.linspace(0, 255, 34)
  gradient = np.stack([ramp[:, None] * np.ones(34), ramp[None, :] * np.ones((34, 1)),
                       np.full((34, 34), 128.0)], axis=-1)
  checker = np.indices((34, 34)).sum(axis=0) % 2 * 255.0
  checker = np.repeat(checker[..., None], 3, axis=-1)
  return [("gradient-vs-brighter", gradient, np.clip(gradient + 9, 0, 255)),
          ("checker-vs-shifted", checker, np.roll(checker, 1, axis=1)),
          ("constant-vs-constant", np.full((24, 24, 3), 50.0), np.full((24, 24, 3), 60.0))]


PAIRS = _random_pairs() + _fixed_pairs()


@pytest.mark.parametrize("name, a, b", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("crop_border", [0, 4])
@pytest.mark.parametrize("y", [False, True], ids=["rgb", "y"])
def test_psnr_and_ssim_match_the_reference(name, a, b, crop_border, y):
  del name
  assert float(metrics.basicsr_psnr(a, b, crop_border, y)) == pytest.approx(
      ref_psnr(a, b, crop_border, y), abs=1e-6)
  assert float(metrics.basicsr_ssim(a, b, crop_border, y)) == pytest.approx(
      ref_ssim(a, b, crop_border, y), abs=1e-6)


def test_the_reference_filter_is_valid_correlation():
  """cv2.filter2D + [5:-5, 5:-5] (BasicSR) equals scipy's valid correlation, so the reference
  SSIM does not rest on OpenCV's border handling."""
  _, a, b = PAIRS[1]
  assert ref_ssim(a, b, filt=cv2_valid) == pytest.approx(ref_ssim(a, b, filt=scipy_valid),
                                                         abs=1e-10)
  np.testing.assert_allclose(metrics.gaussian_window(), cv2.getGaussianKernel(11, 1.5)[:, 0],
                             rtol=1e-12)


def test_batches_give_one_value_per_image():
  a = np.stack([p[1] for p in PAIRS[:1]] * 2)
  b = np.stack([PAIRS[0][2], PAIRS[0][1]])
  psnr = metrics.basicsr_psnr(a, b, 4, True)
  ssim = metrics.basicsr_ssim(a, b, 4, True)
  assert psnr.shape == ssim.shape == (2,)
  assert psnr[0] == pytest.approx(ref_psnr(a[0], b[0], 4, True), abs=1e-6) and psnr[1] == np.inf
  assert ssim[0] == pytest.approx(ref_ssim(a[0], b[0], 4, True), abs=1e-6)
  assert ssim[1] == pytest.approx(1.0, abs=1e-12)


def test_identical_images_have_infinite_psnr_and_ssim_one():
  _, a, _ = PAIRS[0]
  for crop_border, y in ((0, False), (4, True)):
    assert metrics.basicsr_psnr(a, a, crop_border, y) == np.inf
    assert float(metrics.basicsr_ssim(a, a, crop_border, y)) == pytest.approx(1.0, abs=1e-12)


def test_psnr_by_hand():
  """Every pixel 5 levels apart: MSE 25, PSNR 20 log10(255 / 5) = 34.1514 dB; on Y the gap is
  5 (65.481 + 128.553 + 24.966) / 255 = 5 · 219 / 255."""
  a = np.full((16, 16, 3), 100.0)
  b = a + 5.0
  assert float(metrics.basicsr_psnr(a, b)) == pytest.approx(34.15140352195873, abs=1e-9)
  assert float(metrics.basicsr_psnr(a, b, 0, True)) == pytest.approx(
      20 * math.log10(255 / (5 * 219 / 255)), abs=1e-9)
  # A 4 px border whose errors are cut: only the centre's 3-level gap counts.
  c = a.copy()
  c[4:-4, 4:-4] += 3.0
  c[:4] += 50.0
  assert float(metrics.basicsr_psnr(a, c, 4)) == pytest.approx(20 * math.log10(255 / 3),
                                                               abs=1e-9)


def test_image_metrics_basicsr_measures_8bit_pictures():
  """`image_metrics(..., convention="basicsr")`: float images in [0, 1] are rounded to 8 bits
  (BasicSR's tensor2img), then measured; the `ours` convention agrees on 8-bit RGB images."""
  rng = np.random.default_rng(3)
  target = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
  prediction = np.clip(target + rng.normal(0, 0.05, size=target.shape), -0.1, 1.1)
  got = metrics.image_metrics(prediction, target, "restoration", True, "basicsr", 4)
  a8 = np.round(np.clip(prediction.astype(np.float32).astype(np.float64), 0, 1) * 255)
  b8 = np.round(target.astype(np.float64) * 255)
  for i in range(2):
    assert got["psnr"][i] == pytest.approx(ref_psnr(a8[i], b8[i], 4, True), abs=1e-6)
    assert got["ssim"][i] == pytest.approx(ref_ssim(a8[i], b8[i], 4, True), abs=1e-6)
  ours = metrics.image_metrics(a8 / 255, b8 / 255, "restoration")
  theirs = metrics.image_metrics(a8 / 255, b8 / 255, "restoration", False, "basicsr")
  np.testing.assert_allclose(ours["psnr"], theirs["psnr"], atol=1e-3)
  np.testing.assert_allclose(ours["ssim"], theirs["ssim"], atol=1e-4)
  assert set(metrics.image_metrics(prediction, target, "feature_extraction", True,
                                   "basicsr")) == {"mae"}


def test_bad_arguments_are_refused():
  a = np.zeros((20, 20, 3))
  with pytest.raises(ValueError, match="11x11"):
    metrics.basicsr_ssim(a, a, crop_border=5)
  with pytest.raises(ValueError, match="leaves nothing"):
    metrics.basicsr_psnr(a, a, crop_border=10)
  with pytest.raises(ValueError, match="basicsr convention only"):
    metrics.image_metrics(a[None], a[None], "restoration", crop_border=2)
  with pytest.raises(ValueError, match="unknown metric convention"):
    metrics.image_metrics(a[None], a[None], "restoration", convention="matlab")


# ---- python -m genlv_jax.evaluate --convention basicsr -------------------------------------------

class _Identity:
  """A 'model' that returns its input: every metric is the identity baseline."""

  def __call__(self, images, prompt_source=None, prompt_target=None):
    return np.asarray(images)


def _argv(tmp_path, *extra):
  return ["--config", TINY, "--random-init", "--source", "builtin", "--num-images", "2",
          "--num-prompts", "1", "--tasks", "gaussian_denoising",
          "--output", str(tmp_path / "report.json"), *extra]


def test_evaluate_reports_in_the_basicsr_convention(tmp_path, monkeypatch, capsys):
  from genlv_jax.config_io import load_config
  from genlv_jax.evaluation import make_samples
  monkeypatch.setattr(evaluate.api, "load_model", lambda *a: _Identity())
  assert evaluate.main(_argv(tmp_path, "--convention", "basicsr", "--crop-border", "4")) == 0
  report = json.loads((tmp_path / "report.json").read_text())
  assert report["convention"] == "basicsr" and report["crop_border"] == 4
  assert report["color"] == "Y (BT.601)"  # the convention's default
  assert "BasicSR's convention" in (tmp_path / "report.md").read_text()
  samples = make_samples(load_config(TINY), "gaussian_denoising", source="builtin",
                         num_images=2).tasks["gaussian_denoising"]
  a8 = np.round(np.clip(samples.inputs.astype(np.float64), 0, 1) * 255)
  b8 = np.round(np.clip(samples.targets.astype(np.float64), 0, 1) * 255)
  task = report["tasks"]["gaussian_denoising"]
  for metric, ref in (("psnr", ref_psnr), ("ssim", ref_ssim)):
    expected = np.mean([ref(a8[i], b8[i], 4, True) for i in range(2)])
    assert task["identity"][metric] == pytest.approx(expected, abs=1e-6)
    assert task["metrics"][metric]["mean"] == pytest.approx(expected, abs=1e-6)
  # --no-y-channel: RGB; the default convention stays ours (RGB, whole image).
  assert evaluate.main(_argv(tmp_path, "--convention", "basicsr", "--no-y-channel")) == 0
  assert json.loads((tmp_path / "report.json").read_text())["color"] == "RGB"
  assert evaluate.main(_argv(tmp_path)) == 0
  report = json.loads((tmp_path / "report.json").read_text())
  assert report["convention"] == "ours" and report["color"] == "RGB"
  assert "crop_border" not in report
  capsys.readouterr()


@pytest.mark.parametrize("extra, message", [
    (["--crop-border", "4"], "--crop-border 4 applies to --convention basicsr only"),
    (["--convention", "basicsr", "--crop-border", "-1"], "--crop-border must be at least 0"),
    (["--convention", "basicsr", "--crop-border", "27"], "SSIM needs at least 11"),
    (["--convention", "matlab"], "invalid choice: 'matlab'"),
])
def test_metric_option_mistakes_are_found_before_the_model(tmp_path, capsys, monkeypatch, extra,
                                                           message):
  monkeypatch.setattr(evaluate.api, "load_model", lambda *a: pytest.fail("the model was built"))
  assert message in user_error(capsys, evaluate.main, _argv(tmp_path, *extra))
  assert not (tmp_path / "report.json").exists()
