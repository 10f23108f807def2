"""`python -m genlv_jax.infer`, tiling and image files: what a user running the model on their
own pictures relies on. One tiny random-init model for the module; images up to 64 px share
one compiled shape (the CLI pads to multiples of 64)."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from PIL import Image

import genlv_jax
from conftest import config_path, user_error
from genlv_jax import checkpointing, image_io, infer, tiling
from genlv_jax.image_sources import BuiltinSource, procedural_image

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


# ---- the model on awkward files ---------------------------------------------------------------

def _awkward_folder(root) -> dict[str, tuple[int, int]]:
  """One file of each awkward kind (all within 64 px); returns the expected (H, W) by path."""
  rng = np.random.default_rng(1)
  (root / "sub").mkdir(parents=True)
  shapes = {}
  Image.fromarray(rng.integers(0, 256, (37, 53, 3), np.uint8)).save(root / "odd.png")
  shapes["odd.png"] = (37, 53)
  Image.fromarray(rng.integers(0, 256, (30, 20), np.uint8), "L").save(root / "gray.png")
  shapes["gray.png"] = (30, 20)
  Image.fromarray(rng.integers(0, 256, (21, 33, 4), np.uint8), "RGBA").save(root / "rgba.png")
  shapes["rgba.png"] = (21, 33)
  Image.fromarray(rng.integers(0, 65536, (19, 27), np.uint16)).save(root / "deep16.png")
  shapes["deep16.png"] = (19, 27)
  palette = Image.fromarray(rng.integers(0, 256, (25, 17, 3), np.uint8)).quantize(8)
  palette.save(root / "sub" / "palette.png")
  shapes[os.path.join("sub", "palette.png")] = (25, 17)
  exif = Image.Exif()
  exif[0x0112] = 6  # stored 24x40, displayed rotated: 40 high, 24 wide
  Image.fromarray(rng.integers(0, 256, (24, 40, 3), np.uint8)).save(
      root / "sub" / "rotated.jpg", exif=exif)
  shapes[os.path.join("sub", "rotated.jpg")] = (40, 24)
  np.save(root / "tiny.npy", rng.random((3, 5, 3)).astype(np.float32))
  shapes["tiny.npy"] = (3, 5)
  (root / "broken.png").write_bytes(b"\x89PNG not really" * 8)
  return shapes


def test_folder_of_awkward_images_keeps_each_size_and_skips_the_unreadable(
    model, prompt_files, tmp_path):
  shapes = _awkward_folder(tmp_path / "in")
  jobs = infer.plan_outputs(str(tmp_path / "in"), str(tmp_path / "out"), "png")
  ps, pt = infer.load_prompt_pair(*prompt_files)
  result = infer.run_inference(model, ps, pt, jobs, grid=str(tmp_path / "sheet.png"),
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


def test_large_image_runs_in_tiles_close_to_the_whole_image(model, prompt_files, tmp_path):
  image = BuiltinSource()[0][:420, :600]  # a photograph: smooth areas and edges
  ps, pt = infer.load_prompt_pair(*prompt_files)
  whole = infer.predict_image(model, image, ps, pt, tile=0)
  tiled = infer.predict_image(model, image, ps, pt, tile=256, overlap=64)
  assert tiled.shape == whole.shape == image.shape
  # Not exact: the channel attention normalises over the whole tile (tiling docstring). With
  # random weights the model adds large structured changes (~12 dB from its input); tiles
  # reproduce them to within a fraction (measured: 26.7 dB, rel. RMS 0.18).
  psnr = lambda a, b: 10 * np.log10(1 / np.mean((a - b) ** 2))  # noqa: E731
  assert psnr(tiled, whole) > 22.0
  assert np.sqrt(np.mean((tiled - whole) ** 2)) < 0.3 * np.sqrt(np.mean((whole - image) ** 2))


# ---- the command line ------------------------------------------------------------------------

def test_cli_writes_npy_and_png_and_the_grid(prompt_files, tmp_path, capsys):
  Image.fromarray(np.full((45, 31), 200, np.uint8), "L").save(tmp_path / "in.png")
  common = ["--config", TINY, "--random-init", "--prompt-input", prompt_files[0],
            "--prompt-target", prompt_files[1], "--input", str(tmp_path / "in.png")]
  assert infer.main(common + ["--output", str(tmp_path / "o.npy"),
                              "--grid", str(tmp_path / "g.png")]) == 0
  out = np.load(tmp_path / "o.npy")
  assert out.shape == (45, 31, 3) and out.dtype == np.float32
  assert image_io.read_image(tmp_path / "g.png").shape[0] == 192 + 8
  assert "wrote 1 image" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    ({"--input": "missing.png"}, "input not found"),
    ({"--prompt-input": "missing.png"}, "image not found"),
    ({"--prompt-target": "broken.png"}, "cannot read image"),
    ({"--checkpoint": "no_such_ckpt"}, "checkpoint not found"),
    ({"--tile": "100"}, "multiple of 64"),
    ({"--output": "out.xyz"}, "unknown output format"),
])
def test_cli_user_errors_are_one_line_without_traceback(prompt_files, tmp_path, capsys,
                                                        change, message):
  (tmp_path / "broken.png").write_bytes(b"garbage" * 10)
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
  args = {"--config": TINY, "--prompt-input": prompt_files[0],
          "--prompt-target": prompt_files[1], "--input": "in.png", "--output": "out.png"}
  args.update(change)
  paths = {k: v if k in ("--config", "--tile") or os.path.isabs(v) else str(tmp_path / v)
           for k, v in args.items()}
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
