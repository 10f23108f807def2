"""`python -m genlv_jax.infer`, tiling and image files: what a user running the model on their
own pictures relies on. One tiny random-init model for the module; images of nearby sizes
share one compiled shape (the CLI pads to the multiple the model pads to)."""

from __future__ import annotations

import os
import subprocess

import cv2
import numpy as np
import pytest
from PIL import Image

import genlv_jax
from conftest import config_path, user_error
from genlv_jax import infer
from genlv_jax.config_io import load_config
from genlv_jax.data import image_io
from genlv_jax.data.image_sources import BuiltinSource, procedural_image
from genlv_jax.errors import UserError
from genlv_jax.inference import runner
from genlv_jax.inference import tiling
from genlv_jax.training import checkpointing

TINY = config_path("tiny")


@pytest.fixture(scope="module")
def model():
  return genlv_jax.load_model(TINY)


@pytest.fixture(scope="module")
def prompt_files(tmp_path_factory):
  root = tmp_path_factory.mktemp("prompt")
  clean = procedural_image(3, 48)
  image_io.write_image(root / "p_in.png", clean)
  image_io.write_image(root / "p_out.png", 1.0 - clean)
  return str(root / "p_in.png"), str(root / "p_out.png")


# ---- tiling: exact for pointwise functions ---------------------------------------------------

def test_tile_starts_cover_the_image_with_the_overlap_and_one_tile_shape():
  assert tiling.tile_starts(1000, 256, 32) == [0, 224, 448, 672, 744]
  assert tiling.tile_starts(256, 256, 32) == [0] and tiling.tile_starts(100, 256, 32) == [0]
  for length in (257, 300, 511, 700, 1000):
    starts = tiling.tile_starts(length, 256, 64)
    assert starts[0] == 0 and starts[-1] + 256 == length
    assert all(b - a <= 256 - 64 for a, b in zip(starts, starts[1:]))
  with pytest.raises(ValueError, match="multiple of 64"):
    tiling.validate_tiling(100, 10)
  with pytest.raises(ValueError, match="overlap"):
    tiling.validate_tiling(128, 128)


def test_tiled_pointwise_functions_equal_the_whole_image():
  rng = np.random.default_rng(0)
  image = rng.random((300, 200, 3), np.float32)
  calls = []

  def identity(tiles):
    calls.append(tiles.shape)
    return tiles

  out = tiling.tiled_apply(identity, image, 64, 16, batch_size=3)
  np.testing.assert_allclose(out, image, atol=1e-6)
  assert len(set(calls)) == 1  # the last batch is filled up: one shape, one compilation
  upsample = lambda t: np.repeat(np.repeat(t ** 2, 2, 1), 2, 2)  # noqa: E731  (an SR "model")
  out = tiling.tiled_apply(upsample, image, 128, 32, scale=2)
  np.testing.assert_allclose(out, upsample(image[None])[0], atol=1e-6)


class _RecordingPredictor:
  """Stands in for `api.Predictor` in `predict_image`: the identity, recording batch shapes."""

  def __init__(self):
    self.config = load_config(TINY)
    self.shapes = []

  def __call__(self, batch, prompt_source, prompt_target):
    self.shapes.append(batch.shape)
    return batch


def test_default_tiles_are_the_training_resolution():
  args = infer._parser().parse_args(["--config", TINY, "--random-init", "--input", "a.png",
                                     "--output", "b.png"])
  assert args.tile == runner.DEFAULT_TILE == 256 and args.resize == 0
  assert "saw 32x32 latent tokens in training" in " ".join(infer._parser().format_help().split())
  image = np.random.default_rng(0).random((300, 200, 3)).astype(np.float32)
  fake = _RecordingPredictor()
  out = runner.predict_image(fake, image, None, None)  # the defaults: 256 px tiles
  np.testing.assert_allclose(out, image, atol=1e-6)
  assert fake.shapes == [(1, 256, 256, 3)] * 2  # rows 0 and 44, each 256 x 200 padded to 256
  fake.shapes.clear()
  runner.predict_image(fake, image[:256, :192], None, None)  # fits one tile: whole
  runner.predict_image(fake, image, None, None, tile=0)      # --tile 0: whole
  assert fake.shapes == [(1, 256, 192, 3), (1, 320, 256, 3)]


# ---- --resize: the authors' preprocessing ----------------------------------------------------

@pytest.mark.parametrize("height, width, interpolation", [
    (100, 300, cv2.INTER_CUBIC), (300, 100, cv2.INTER_CUBIC), (255, 400, cv2.INTER_CUBIC),
    (300, 400, cv2.INTER_AREA), (256, 256, cv2.INTER_AREA), (256, 300, cv2.INTER_AREA),
])
def test_resize_uses_bicubic_below_the_size_and_area_otherwise(height, width, interpolation):
  assert image_io.resize_square_interpolation(height, width, 256) == interpolation
  image = np.random.default_rng(height + width).random((height, width, 3)).astype(np.float32)
  out = image_io.resize_square(image, 256)
  assert out.shape == (256, 256, 3) and out.dtype == np.float32
  want = cv2.resize(image, (256, 256), interpolation=interpolation)
  np.testing.assert_array_equal(out, want)
  if (height, width) != (256, 256):  # at the target size both are the identity
    other = cv2.INTER_AREA if interpolation == cv2.INTER_CUBIC else cv2.INTER_CUBIC
    assert np.abs(out - cv2.resize(image, (256, 256), interpolation=other)).max() > 1e-3


def _authors_read_img(path, size=256):
  """The authors' `read_img` of extended_version/inference.py, written out independently:
  cv2.imread / 255 as float32 (BGR), cv2.resize to size×size (cubic if H or W < size, else
  area); then BGR -> RGB, the order our model (and converted checkpoints) take."""
  img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
  h, w = img.shape[:2]
  if h < size or w < size:
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
  else:
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
  return img[:, :, ::-1]


def test_cli_resize_256_reproduces_the_authors_preprocessing(model, tmp_path, capsys):
  rng = np.random.default_rng(5)
  # A wide prompt pair of two sizes (each resized alone, as theirs) and a small wide input.
  files = {"ps.png": (300, 400), "pt.png": (280, 420), "in.png": (100, 300)}
  for name, (h, w) in files.items():
    smooth = cv2.resize(rng.integers(0, 256, (h // 10, w // 10, 3), np.uint8), (w, h),
                        interpolation=cv2.INTER_LINEAR)
    Image.fromarray(smooth).save(tmp_path / name)
  assert infer.main(["--config", TINY, "--random-init", "--resize", "256",
                     "--prompt-input", str(tmp_path / "ps.png"),
                     "--prompt-target", str(tmp_path / "pt.png"),
                     "--input", str(tmp_path / "in.png"),
                     "--output", str(tmp_path / "out.npy")]) == 0
  assert "wrote 1 image" in capsys.readouterr().out
  written = np.load(tmp_path / "out.npy")
  assert written.shape == (256, 256, 3)  # the model's 256x256 output, not resized back
  ps, pt, x = (_authors_read_img(tmp_path / n) for n in ("ps.png", "pt.png", "in.png"))
  want = model(np.ascontiguousarray(x), np.ascontiguousarray(ps), np.ascontiguousarray(pt))
  np.testing.assert_allclose(written, want, atol=1e-5)
  # Not what the native-resolution path (a 100x300 output) or another filter would give.
  area = cv2.resize(cv2.imread(str(tmp_path / "in.png")).astype(np.float32) / 255, (256, 256),
                    interpolation=cv2.INTER_AREA)[:, :, ::-1]
  assert np.abs(np.ascontiguousarray(area) - x).max() > 1e-2


# ---- the model on awkward files ---------------------------------------------------------------

def _awkward_folder(root) -> dict[str, tuple[int, int]]:
  """One file of each awkward kind (all within 64 px, padded to 64 or 32 px squares: two
  compiled shapes); returns the expected (H, W) by path."""
  rng = np.random.default_rng(1)
  (root / "sub").mkdir(parents=True)
  shapes = {}
  Image.fromarray(rng.integers(0, 256, (37, 53, 3), np.uint8)).save(root / "odd.png")
  shapes["odd.png"] = (37, 53)
  Image.fromarray(rng.integers(0, 256, (30, 20), np.uint8), "L").save(root / "gray.png")
  shapes["gray.png"] = (30, 20)
  Image.fromarray(rng.integers(0, 256, (21, 31, 4), np.uint8), "RGBA").save(root / "rgba.png")
  shapes["rgba.png"] = (21, 31)
  Image.fromarray(rng.integers(0, 65536, (19, 27), np.uint16)).save(root / "deep16.png")
  shapes["deep16.png"] = (19, 27)
  palette = Image.fromarray(rng.integers(0, 256, (25, 17, 3), np.uint8)).quantize(8)
  palette.save(root / "sub" / "palette.png")
  shapes[os.path.join("sub", "palette.png")] = (25, 17)
  exif = Image.Exif()
  exif[0x0112] = 6  # stored 18x29, displayed rotated: 29 high, 18 wide
  Image.fromarray(rng.integers(0, 256, (18, 29, 3), np.uint8)).save(
      root / "sub" / "rotated.jpg", exif=exif)
  shapes[os.path.join("sub", "rotated.jpg")] = (29, 18)
  np.save(root / "tiny.npy", rng.random((3, 5, 3)).astype(np.float32))
  shapes["tiny.npy"] = (3, 5)
  (root / "broken.png").write_bytes(b"\x89PNG not really" * 8)
  return shapes


def test_folder_of_awkward_images_keeps_each_size_and_skips_the_unreadable(
    model, prompt_files, tmp_path):
  shapes = _awkward_folder(tmp_path / "in")
  jobs = runner.plan_outputs(str(tmp_path / "in"), str(tmp_path / "out"), "png")
  ps, pt = runner.load_prompt_pair(*prompt_files)
  result = runner.run_inference(model, [(ps, pt)], jobs, grid=str(tmp_path / "sheet.png"),
                               progress=False)
  assert [os.path.basename(p) for p, _ in result.skipped] == ["broken.png"]
  assert len(result.written) == len(shapes)
  for relative, (h, w) in shapes.items():
    out = image_io.read_image(tmp_path / "out" / (os.path.splitext(relative)[0] + ".png"))
    assert out.shape == (h, w, 3), relative
  sheet = image_io.read_image(tmp_path / "sheet.png")
  assert sheet.shape[0] > 4 * 192 and sheet.shape[1] > 4 * 192  # rows × (P_S, P_T, in, out)
  # The output of one file equals the model on that image (padding and cropping are exact).
  odd = image_io.read_image(tmp_path / "in" / "odd.png")
  direct = np.clip(model(odd, ps, pt), 0, 1)
  written = image_io.read_image(tmp_path / "out" / "odd.png")
  np.testing.assert_allclose(written, direct, atol=1 / 255 + 1e-6)
  # Also for a size GenLV runs unpadded (a multiple of its 32, not of 64): the CLI pads no
  # further than the model would.
  square = BuiltinSource()[0][:32, :32]
  np.testing.assert_allclose(runner.predict_image(model, square, ps, pt),
                             model(square, ps, pt), atol=1e-5)


def test_large_image_runs_in_tiles_close_to_the_whole_image(model, prompt_files, tmp_path):
  image = BuiltinSource()[0][:420, :600]  # a photograph: smooth areas and edges
  ps, pt = runner.load_prompt_pair(*prompt_files)
  whole = runner.predict_image(model, image, ps, pt, tile=0)
  tiled = runner.predict_image(model, image, ps, pt, tile=256, overlap=64)
  assert tiled.shape == whole.shape == image.shape
  # Not exact: the channel attention normalises over the whole tile, and the bottleneck's
  # global attention sees one tile's tokens (tiling docstring). With random weights and no
  # global residual the output is far from the input (~4 dB); tiles reproduce it to within a
  # small fraction (measured: 27.9 dB, rel. RMS 0.064).
  psnr = lambda a, b: 10 * np.log10(1 / np.mean((a - b) ** 2))  # noqa: E731
  assert psnr(tiled, whole) > 22.0
  assert np.sqrt(np.mean((tiled - whole) ** 2)) < 0.15 * np.sqrt(np.mean((whole - image) ** 2))


# ---- the command line ------------------------------------------------------------------------

def test_cli_writes_npy_and_png_and_the_grid(prompt_files, tmp_path, capsys, monkeypatch):
  from genlv_jax.evaluation import grids
  drawn = []
  original = grids.put_text
  monkeypatch.setattr(grids, "put_text", lambda canvas, text, *a: (drawn.append(text),
                                                                   original(canvas, text, *a)))
  Image.fromarray(np.full((45, 31), 200, np.uint8), "L").save(tmp_path / "in.png")
  common = ["--config", TINY, "--random-init", "--prompt-input", prompt_files[0],
            "--prompt-target", prompt_files[1], "--input", str(tmp_path / "in.png")]
  assert infer.main(common + ["--output", str(tmp_path / "o.npy"),
                              "--grid", str(tmp_path / "g.png")]) == 0
  out = np.load(tmp_path / "o.npy")
  assert out.shape == (45, 31, 3) and out.dtype == np.float32
  # A labelled sheet: column titles, the file's name, cells of at least 128 px (the 31 px wide
  # input shown 5x).
  assert image_io.read_image(tmp_path / "g.png").shape[0] > 5 * 45
  assert {"prompt input", "prompt target", "input", "output", "in.png"} <= set(drawn), drawn
  assert "wrote 1 image" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    ({"--input": "missing.png"}, "input not found"),
    ({"--prompt-input": "missing.png"}, "image not found"),
    ({"--prompt-target": "broken.png"}, "cannot read image"),
    ({"--prompt-target": "other_size.png"}, "is 40x32: a prompt pair must have one size"),
    ({"--checkpoint": "no_such_ckpt"}, "checkpoint not found"),
    ({"--tile": "100"}, "multiple of 64"),
    ({"--tile": "-1"}, "--tile must be 0"),
    ({"--resize": "100"}, "--resize must be a positive multiple of 8"),
    ({"--resize": "-256"}, "--resize must be a positive multiple of 8"),
    ({"--output": "out.xyz"}, "unknown output format"),
])
def test_cli_user_errors_are_one_line_without_traceback(prompt_files, tmp_path, capsys,
                                                        monkeypatch, change, message):
  # Every mistake is found before the model is built (nothing compiles here).
  monkeypatch.setattr(infer.api, "load_model", lambda *a: pytest.fail("the model was built"))
  (tmp_path / "broken.png").write_bytes(b"garbage" * 10)
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
  Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(tmp_path / "other_size.png")
  args = {"--config": TINY, "--prompt-input": prompt_files[0],
          "--prompt-target": prompt_files[1], "--input": "in.png", "--output": "out.png"}
  args.update(change)
  paths = {k: v if k in ("--config", "--tile", "--resize") or os.path.isabs(v)
           else str(tmp_path / v) for k, v in args.items()}
  argv = [x for kv in paths.items() for x in kv]
  argv += [] if "--checkpoint" in change else ["--random-init"]
  assert message in user_error(capsys, infer.main, argv)
  assert not os.path.exists(tmp_path / "out.png")


def test_mismatching_checkpoint_is_refused_in_one_line_by_the_real_cli(
    model, prompt_files, tmp_path, python, repo_root):
  """Run as users run it (a subprocess): a checkpoint of another shape lists its problems."""
  wrong = dict(model.params)
  wrong["output"] = {"kernel": np.zeros((3, 3, 7, 3), np.float32)}  # tiny's has 16 inputs
  del wrong["refinement"]
  checkpointing.save_params(tmp_path / "ckpt", wrong)
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
  result = subprocess.run(
      [python, "-m", "genlv_jax.infer", "--config", TINY, "--checkpoint", str(tmp_path / "ckpt"),
       "--prompt-input", prompt_files[0], "--prompt-target", prompt_files[1],
       "--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "out.png")],
      cwd=repo_root, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  assert "Traceback" not in result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and "does not match the config" in errors[0]
  problems = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
  assert any(p.startswith("shape mismatch: output/kernel") for p in problems)
  assert any(p.startswith("missing: refinement/") for p in problems)
  assert not os.path.exists(tmp_path / "out.png")


# ---- non-finite pixels: refused, replaced on request, never written -----------------------------

def _nan_patch_npy(path, size=48) -> np.ndarray:
  """A smooth image with a 10x10 NaN patch (300 values in 100 pixels), saved as .npy."""
  image = procedural_image(4, size)
  image[10:20, 10:20] = np.nan
  np.save(path, image)
  return image


class _NaNPredictor(_RecordingPredictor):
  """A model whose output is NaN wherever its input is dark (a broken checkpoint, as far as the
  runner can tell): some images come out partly NaN, others finite."""

  def __call__(self, batch, prompt_source, prompt_target):
    self.shapes.append(batch.shape)
    return np.where(batch < 0.1, np.nan, batch)


def test_nan_input_is_refused_with_the_file_and_count_before_the_model(
    prompt_files, tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(infer.api, "load_model", lambda *a: pytest.fail("the model was built"))
  _nan_patch_npy(tmp_path / "nan.npy")
  common = ["--config", TINY, "--random-init", "--output", str(tmp_path / "out.png")]
  err = user_error(capsys, infer.main, common + [
      "--prompt-input", prompt_files[0], "--prompt-target", prompt_files[1],
      "--input", str(tmp_path / "nan.npy")])
  assert (f"cannot use image {tmp_path / 'nan.npy'}: 300 non-finite value(s) (NaN or infinity)"
          " in 100 pixel(s); pass --nonfinite replace") in err
  err = user_error(capsys, infer.main, common + [  # a prompt is checked the same way
      "--prompt-input", str(tmp_path / "nan.npy"), "--prompt-target", prompt_files[1],
      "--input", prompt_files[0]])
  assert f"{tmp_path / 'nan.npy'}: 300 non-finite value(s)" in err
  assert not os.path.exists(tmp_path / "out.png")


def test_nonfinite_replace_fills_from_the_nearest_finite_pixel_with_a_warning(
    model, prompt_files, tmp_path, capsys, caplog, monkeypatch):
  image = _nan_patch_npy(tmp_path / "nan.npy")
  image[30, 30, 1] = np.inf  # one channel of one pixel: the whole pixel is replaced
  np.save(tmp_path / "nan.npy", image)
  read = image_io.read_image(tmp_path / "nan.npy", nonfinite="replace")
  assert np.isfinite(read).all()
  np.testing.assert_array_equal(read[11, 10], image[11, 9])    # left edge: from its left
  np.testing.assert_array_equal(read[10, 15], image[9, 15])    # top edge: from above
  neighbours = [image[30 + dy, 30 + dx] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
  assert any(np.array_equal(read[30, 30], n) for n in neighbours)  # one pixel, all channels
  np.testing.assert_array_equal(read[:10], image[:10])         # finite pixels are kept
  with pytest.raises(UserError, match="nothing to replace them with"):
    image_io.replace_nonfinite(np.full((4, 4, 3), np.nan, np.float32))
  # Through the CLI: written, finite, and said so.
  monkeypatch.setattr(infer.api, "load_model", lambda *a: model)
  caplog.clear()
  assert infer.main(["--config", TINY, "--random-init", "--nonfinite", "replace",
                     "--prompt-input", prompt_files[0], "--prompt-target", prompt_files[1],
                     "--input", str(tmp_path / "nan.npy"),
                     "--output", str(tmp_path / "out.npy")]) == 0
  assert np.isfinite(np.load(tmp_path / "out.npy")).all()
  warnings = [r.getMessage() for r in caplog.records if "replaced" in r.getMessage()]
  assert warnings == [f"replaced 301 non-finite value(s) (NaN or infinity) in 101 pixel(s) of "
                      f"{tmp_path / 'nan.npy'} with the nearest finite pixel"]


def test_write_image_refuses_nonfinite_pixels_in_every_format(tmp_path):
  image = np.full((8, 8, 3), 0.5, np.float32)
  image[0, 0, 0] = np.nan
  for name in ("a.png", "a.jpg", "a.npy"):
    with pytest.raises(image_io.ImageWriteError, match="1 non-finite value"):
      image_io.write_image(tmp_path / name, image)
    assert not os.path.exists(tmp_path / name)


def test_nonfinite_outputs_are_reported_as_failed_not_written(prompt_files, tmp_path, capsys,
                                                              monkeypatch):
  (tmp_path / "in").mkdir()
  Image.fromarray(np.full((20, 24, 3), 200, np.uint8)).save(tmp_path / "in" / "light.png")
  Image.fromarray(np.full((20, 24, 3), 5, np.uint8)).save(tmp_path / "in" / "dark.png")
  jobs = runner.plan_outputs(str(tmp_path / "in"), str(tmp_path / "out"), "png")
  result = runner.run_inference(_NaNPredictor(), [], jobs, grid=str(tmp_path / "g.png"),
                                progress=False)
  assert [os.path.basename(p) for p, _ in result.failed] == ["dark.png"]
  assert "1440 non-finite value(s)" in result.failed[0][1]
  assert [os.path.basename(p) for p in result.written] == ["light.png"]
  assert os.listdir(tmp_path / "out") == ["light.png"]
  # One row, light.png's, its 20 px shown 7x; no prompt columns (a model without prompts).
  assert 7 * 20 < image_io.read_image(tmp_path / "g.png").shape[0] < 2 * 7 * 20
  # The CLI writes what it can, then says what it did not, in one line, with status 2.
  monkeypatch.setattr(infer.api, "load_model", lambda *a: _NaNPredictor())
  common = ["--config", TINY, "--random-init", "--prompt-input", prompt_files[0],
            "--prompt-target", prompt_files[1]]
  with pytest.raises(SystemExit) as exit_info:  # (the folder's progress bar is on stderr too)
    infer.main(common + ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "cli")])
  captured = capsys.readouterr()
  errors = [line for line in captured.err.splitlines() if "error:" in line]
  assert exit_info.value.code == 2 and len(errors) == 1 and "Traceback" not in captured.err
  assert "1 of 2 output(s) were not finite and not written (first: the model's output for" in (
      errors[0])
  assert f"wrote 1 image(s) to {tmp_path / 'cli'}" in captured.out
  assert os.listdir(tmp_path / "cli") == ["light.png"]
  err = user_error(capsys, infer.main, common + ["--input", str(tmp_path / "in" / "dark.png"),
                                                 "--output", str(tmp_path / "dark_out.png")])
  assert f"{tmp_path / 'dark_out.png'} not written" in err
  assert not os.path.exists(tmp_path / "dark_out.png")


@pytest.mark.parametrize("name, array, message", [
    ("f255.npy", np.full((8, 8, 3), 200.0, np.float32), "float values range from 200 to 200"),
    ("wide_int.npy", np.full((8, 8), 1000, np.int32), "integer values range from 1000 to 1000"),
    ("complex.npy", np.zeros((8, 8, 3), np.complex64), "dtype complex64 are not images"),
])
def test_npy_arrays_on_another_scale_are_refused_not_clipped(tmp_path, name, array, message):
  """0-255 data saved as float would be clipped to a white image without a word."""
  np.save(tmp_path / name, array)
  with pytest.raises(image_io.ImageReadError, match=message):
    image_io.read_image(tmp_path / name)
  # An unclipped model output (a little outside [0, 1]) is still read, clipped.
  np.save(tmp_path / "overshoot.npy", np.full((8, 8, 3), 1.04, np.float32))
  assert image_io.read_image(tmp_path / "overshoot.npy").max() == 1.0


# ---- options and output locations: checked before the model is loaded ---------------------------

@pytest.mark.parametrize("extra, message", [
    (["--tile", "-5"], "--tile must be 0 (whole images) or a positive multiple of 64, got -5"),
    (["--prompt-max", "0"], "--prompt-max must be at least 8"),
    (["--tile-batch", "0"], "--tile-batch must be at least 1, got 0"),
    (["--grid", "g.png", "--grid-height", "0"], "--grid-height must be between 128 and 4096"),
    (["--nonfinite", "zero"], "argument --nonfinite: invalid choice: 'zero'"),
    (["--output", "in.png"], "is the input file: writing it would overwrite the input"),
    (["--output", "blocker/deeper/out.png"], "blocker is a file, not a folder"),
    (["--grid", "blocker/g.png"], "blocker is a file, not a folder"),
])
def test_options_and_output_locations_are_checked_before_the_model(
    prompt_files, tmp_path, capsys, monkeypatch, extra, message):
  monkeypatch.setattr(infer.api, "load_model", lambda *a: pytest.fail("the model was built"))
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
  (tmp_path / "blocker").write_text("a file where a folder is needed")
  argv = ["--config", TINY, "--random-init", "--prompt-input", prompt_files[0],
          "--prompt-target", prompt_files[1], "--input", str(tmp_path / "in.png"),
          "--output", str(tmp_path / "out.png")]
  argv += [str(tmp_path / a) if a.endswith(".png") else a for a in extra]
  assert message in user_error(capsys, infer.main, argv)
  assert not os.path.exists(tmp_path / "out.png")
  assert image_io.read_image(tmp_path / "in.png").max() == 0  # the input is untouched


def test_missing_output_folders_are_made_before_the_model_is_loaded(prompt_files, tmp_path,
                                                                    capsys, monkeypatch):
  made = []

  def load_model(*args):
    made.append(os.path.isdir(tmp_path / "new" / "deeper") and os.path.isdir(tmp_path / "g"))
    return _RecordingPredictor()

  monkeypatch.setattr(infer.api, "load_model", load_model)
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
  assert infer.main(["--config", TINY, "--random-init", "--prompt-input", prompt_files[0],
                     "--prompt-target", prompt_files[1], "--input", str(tmp_path / "in.png"),
                     "--output", str(tmp_path / "new" / "deeper" / "out.png"),
                     "--grid", str(tmp_path / "g" / "sheet.png")]) == 0
  assert made == [True]
  assert image_io.read_image(tmp_path / "new" / "deeper" / "out.png").shape == (8, 8, 3)


def test_prompts_given_to_a_model_without_prompts_are_said_to_be_ignored(
    prompt_files, tmp_path, caplog, monkeypatch):
  monkeypatch.setattr(infer.api, "load_model", lambda *a: _RecordingPredictor())
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
  assert infer.main(["--config", TINY, "--random-init", "--config.model.use_prompt=False",
                     "--prompt-input", prompt_files[0], "--prompt-target", prompt_files[1],
                     "--input", str(tmp_path / "in.png"),
                     "--output", str(tmp_path / "out.png")]) == 0
  assert "this config's model takes no prompt" in caplog.text
