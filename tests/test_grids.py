"""Labelled grids (`genlv_jax.evaluation.grids`): the header and label strips, cells of at least
128 px, PSNR captions where a target exists, and the pictures the project writes with them:
the demo's and the trainer's sample grid, and `python -m genlv_jax.tasks show`. Every text goes
through `grids.put_text`, so the tests read what was written by replacing it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import config_path
from genlv_jax.errors import UserError
from genlv_jax.evaluation import grids

# Solid cells in colours no strip, gap or text uses (all three channels differ).
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]


@pytest.fixture
def texts(monkeypatch):
  """The strings the grid code draws, in order."""
  drawn = []
  original = grids.put_text

  def record(canvas, text, origin, scale):
    drawn.append(text)
    original(canvas, text, origin, scale)

  monkeypatch.setattr(grids, "put_text", record)
  return drawn


def solid(colour, size: int) -> np.ndarray:
  return np.broadcast_to(np.asarray(colour, np.uint8), (size, size, 3)).copy()


def box_of(grid: np.ndarray, colour) -> tuple[int, int, int, int]:
  """(top, left, height, width) of the pixels of exactly `colour`."""
  ys, xs = np.nonzero(np.all(grid == np.asarray(colour, np.uint8), axis=-1))
  assert len(ys), f"colour {colour} not in the grid"
  return ys.min(), xs.min(), ys.max() - ys.min() + 1, xs.max() - xs.min() + 1


def test_header_and_label_strips_frame_cells_of_at_least_128_px(texts):
  rows = [[solid(c, 64) for c in COLOURS[:3]], [solid(c, 160) for c in COLOURS[3:]]]
  grid = grids.labelled_grid(rows, ["a", "b", "c"], ["first_task", "second"])
  assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3
  top, left, h, w = box_of(grid, COLOURS[0])
  assert (h, w) == (128, 128)  # 64 px enlarged by 2, pixel for pixel
  assert box_of(grid, COLOURS[3])[2:] == (160, 160)  # 160 px kept: never reduced
  # The header strip lies above the first row and is not image content: strip grey with ink.
  header = grid[:top, left:left + w]
  assert not np.any(np.all(header == np.asarray(COLOURS[0], np.uint8), axis=-1))
  assert np.any(np.all(header == np.asarray(grids.STRIP, np.uint8), axis=-1))
  assert header.min() < 100  # a title's dark ink
  # The label strip lies left of the first cell, over the row's height.
  strip = grid[top:top + h, :left]
  assert np.any(np.all(strip == np.asarray(grids.STRIP, np.uint8), axis=-1))
  assert strip.min() < 100 and not np.array_equal(strip, grid[top:top + h, left:left + left])
  assert texts[:3] == ["a", "b", "c"]
  assert "second" in texts and any("first_" in t for t in texts)


def test_small_images_are_enlarged_by_pixel_repetition_to_the_minimum():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, size=(64, 48, 3)).astype(np.uint8)
  cell = grids.fit_cell(image, 128)
  assert cell.shape == (64 * 3, 48 * 3, 3)  # ceil(128 / 48) = 3: the short side reaches 128
  np.testing.assert_array_equal(cell, np.kron(image, np.ones((3, 3, 1), np.uint8)))
  big = rng.integers(0, 256, size=(300, 600, 3)).astype(np.uint8)
  assert grids.fit_cell(big, 128).shape == big.shape
  assert grids.fit_cell(big, 128, max_cell=300).shape == (150, 300, 3)
  assert grids.fit_cell(big, 128, max_cell=200).shape[0] == 128  # never below the minimum


def test_float_grey_and_nan_cells_are_shown():
  grey = np.full((40, 40), 0.5, np.float32)
  nan = np.full((40, 40, 3), np.nan, np.float32)
  grid = grids.labelled_grid([[grey, nan, None]], ["grey", "nan", "blank"], min_cell=32)
  assert grid.shape[1] >= 3 * 40
  assert np.any(np.all(grid == 128, axis=-1))  # 0.5 -> 128 on every channel
  assert np.any(np.all(grid == 0, axis=-1))  # NaN -> black, not an error


def test_psnr_captions_where_a_target_exists(texts):
  target = np.full((64, 64, 3), 0.5)
  output = target + 0.01  # MSE 1e-4: 40 dB
  noisy = target + 0.1  # MSE 1e-2: 20 dB
  prompts = [np.zeros((64, 64, 3)), np.ones((64, 64, 3))]
  row = prompts + [noisy, output, target]
  assert grids.prediction_captions(row) == [None, None, "input 20.00 dB", "output 40.00 dB",
                                            None]
  assert grids.psnr(output, target) == pytest.approx(40.0, abs=1e-9)
  assert grids.psnr(target, target) == math.inf
  assert grids.metric_caption("output", target, target) == "output inf dB"
  assert grids.prediction_captions(row, "mae")[3] == "output MAE 2.6"  # 0.01 × 255 = 2.55
  assert grids.metric_caption("output", target + 0.02, target, "mae") == "output MAE 5.1"
  assert grids.prediction_captions(prompts + [noisy, output]) == [None] * 5  # no target
  grid = grids.prediction_grid([row, prompts + [noisy, output, None]], ["with", "without"])
  assert grid.shape[0] > 2 * 128 and grid.shape[1] > 5 * 128
  assert texts[:5] == list(grids.PREDICTION_COLUMNS)
  assert "output 40.00 dB" in texts and "input 20.00 dB" in texts
  assert sum("dB" in t for t in texts) == 2  # the row without a target has no caption


def test_prediction_grid_drops_columns_no_row_has(texts):
  image = np.full((32, 32, 3), 0.25)
  grid = grids.prediction_grid([(None, None, image, image)], ["x"])
  assert texts[:2] == ["input", "output"] and "prompt input" not in texts
  assert "target" not in texts
  assert grid.shape[1] < 3 * 128


@pytest.mark.parametrize("call, message", [
    (lambda: grids.labelled_grid([], ["a"]), "at least one row"),
    (lambda: grids.labelled_grid([[np.zeros((8, 8, 3))] * 2], ["a"]), "more cells"),
    (lambda: grids.labelled_grid([[np.zeros((8, 8, 3))]], ["a"], ["x", "y"]), "2 row labels"),
    (lambda: grids.labelled_grid([[np.zeros((8, 8, 5))]], ["a"]), "HxWx3"),
    (lambda: grids.metric_caption("o", np.zeros(3), np.zeros(3), "ssim"), "psnr or mae"),
])
def test_mistakes_are_user_errors(call, message):
  with pytest.raises(UserError, match=message):
    call()


# ---- the pictures the project writes ------------------------------------------------------------

def _samples(tasks: str):
  from genlv_jax.config_io import load_config
  from genlv_jax.evaluation import make_samples
  config = load_config(config_path("tiny"), ["image_size=64", "data.source=builtin",
                                             f"data.tasks={tasks}", "eval_images=1"])
  return config, make_samples(config, num_images=1)


def test_sample_grid_of_the_demo_and_trainer_is_labelled(texts):
  from genlv_jax import evaluation
  _, samples = _samples("gaussian_denoising,canny")
  predictions = {name: s.inputs for name, s in samples.tasks.items()}  # the identity
  grid = evaluation.sample_grid(samples, predictions)
  assert grid.dtype == np.float32 and 0.0 <= grid.min() and grid.max() <= 1.0
  # 2 rows of 64 px images shown at 128 px, 5 columns, plus the header and label strips.
  assert grid.shape[0] > 2 * 128 + 20 and grid.shape[1] > 5 * 128 + 60
  assert texts[:5] == list(grids.PREDICTION_COLUMNS)
  assert "gaussian_denoising" in "".join(texts) and "canny" in texts
  denoising = [t for t in texts if t.endswith(" dB")]
  assert len(denoising) == 2 and denoising[0].startswith("input ")
  assert denoising[0].split(" ", 1)[1] == denoising[1].split(" ", 1)[1]  # identity model
  assert any(t.startswith("output MAE ") for t in texts)  # feature extraction: MAE


def test_demo_writes_a_labelled_grid_and_says_where(tmp_path, monkeypatch):
  """`demo.report` with an identity model (no compilation): its PNG is the labelled grid."""
  from genlv_jax import demo, models
  from genlv_jax.data import image_io
  config, _ = _samples("gaussian_denoising")

  class Identity:
    def __init__(self, *args):
      del args

    def __call__(self, images, prompt_source=None, prompt_target=None):
      return np.asarray(images)

  monkeypatch.setattr(models, "Predictor", Identity)
  monkeypatch.setattr(models, "build_model", lambda config: None)
  table = demo.report(config, None, str(tmp_path))
  assert "gaussian_denoising" in table
  assert demo.grid_path(str(tmp_path)) == str(tmp_path / "demo_grid.png")
  picture = image_io.read_image(str(tmp_path / "demo_grid.png"))
  assert picture.shape[0] > 128 + 20 and picture.shape[1] > 5 * 128 + 60


def test_tasks_show_sheet_has_titles_and_severity_labels(texts):
  from genlv_jax.tasks import __main__ as tasks_cli
  from genlv_jax.tasks import registry
  task = registry.get_task("gaussian_denoising")
  sheet = tasks_cli.contact_sheet(task, seed=0, size=64)
  assert sheet.dtype == np.uint8
  assert sheet.shape[0] > 3 * 128 + 20 and sheet.shape[1] > 4 * 128 + 60
  assert list(tasks_cli.SHEET_COLUMNS) == [t for t in texts if t in tasks_cli.SHEET_COLUMNS]
  assert texts[0].startswith("gaussian_denoising (Gaussian Denoising)")
  for severity in tasks_cli.SHOW_SEVERITIES:
    assert f"severity {severity:g}" in texts
  assert any(t.startswith(f"{task.severity.param}=") for t in texts)
