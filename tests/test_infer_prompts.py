"""Prompts without files (`infer --task`), prompt ensembles (`infer --prompts DIR`, `--ensemble`)
and `infer --list-tasks`: each checked against the model run by hand on the same prompts."""

from __future__ import annotations

import os

import numpy as np
import pytest

import genlv_jax
from conftest import config_path, user_error
from genlv_jax import infer
from genlv_jax.data import image_io
from genlv_jax.data.image_sources import BuiltinSource
from genlv_jax.errors import UserError
from genlv_jax.inference import prompts, runner
from genlv_jax.tasks import registry

TINY = config_path("tiny")


@pytest.fixture(scope="module")
def model():
  return genlv_jax.load_model(TINY)


@pytest.fixture
def cli(monkeypatch, model):
  """`infer.main` running the module's model (the same random-init weights `--random-init`
  loads), so that the CLI and the reference computation share compiled programs."""
  monkeypatch.setattr(infer.api, "load_model", lambda *args, **kwargs: model)
  return infer.main


@pytest.fixture
def photo(tmp_path):
  """A user's photo (48x40), not one of the bundled exemplars' crops."""
  path = tmp_path / "photo.png"
  image_io.write_image(path, BuiltinSource()[1][100:148, 200:240])
  return path


def test_a_synthesised_prompt_is_the_tasks_operator_on_a_bundled_photo():
  source, target = prompts.synthesize_prompt("gaussian_denoising", severity=0.0, seed=0)
  assert source.shape == target.shape == (256, 256, 3) and source.dtype == np.float32
  # Restoration: the target is the clean photo, the source it with noise of the task's sigma
  # at that severity (the mildest, so that values clipped to [0, 1] shrink the measured
  # deviation only a little).
  np.testing.assert_array_equal(target, prompts.exemplar(0))
  sigma = registry.get_task("gaussian_denoising").severity.value(0.0) / 255
  assert abs(np.std(source - target) - sigma) < 0.1 * sigma
  # Another seed, another photo and noise; the same seed, the same pair.
  other, _ = prompts.synthesize_prompt("gaussian_denoising", severity=0.0, seed=1)
  assert not np.allclose(other, source)
  np.testing.assert_array_equal(prompts.synthesize_prompt("gaussian_denoising", 0.0, 0)[0], source)
  # Severity 0 is milder than 1 for a task whose input degrades with severity.
  mild = prompts.synthesize_prompt("jpeg_restoration", 0.0)
  strong = prompts.synthesize_prompt("jpeg_restoration", 1.0)
  assert np.mean((mild[0] - mild[1]) ** 2) < np.mean((strong[0] - strong[1]) ** 2)


def test_every_procedural_task_synthesises_and_the_others_say_which_files():
  names = prompts.synthesizable_tasks()
  assert names == [t.name for t in registry.all_tasks() if t.procedural] and len(names) > 50
  for name in names:
    source, target = prompts.synthesize_prompt(name, seed=3, size=64)
    assert source.shape[2] == target.shape[2] == 3, name
    assert np.isfinite(source).all() and np.isfinite(target).all(), name
  for task in registry.all_tasks():
    if not task.procedural:
      with pytest.raises(UserError, match="give --prompt-input and --prompt-target"):
        prompts.synthesize_prompt(task.name)


def test_infer_task_needs_no_prompt_files_and_runs_the_synthesised_prompt(
    model, cli, photo, tmp_path, capsys):
  out = tmp_path / "out.npy"
  assert cli(["--config", TINY, "--random-init", "--task", "gaussian_denoising",
                     "--input", str(photo), "--output", str(out)]) == 0
  assert "wrote 1 image" in capsys.readouterr().out
  source, target = prompts.synthesize_prompt("gaussian_denoising", prompts.DEFAULT_SEVERITY, 0)
  image = image_io.read_image(photo)
  np.testing.assert_allclose(np.load(out), runner.predict_image(model, image, source, target),
                             atol=1e-5)


def _spread_by_hand(outputs):
  stack = np.stack(outputs).astype(np.float64)
  mean = stack.mean(0)
  psnr = [10 * np.log10(1 / np.mean((o - mean) ** 2)) for o in stack]
  return np.mean(psnr), np.min(psnr), stack.std(0).mean()


def test_a_prompt_folder_is_an_ensemble_whose_mean_is_written_and_spread_reported(
    model, cli, photo, tmp_path, capsys):
  folder = tmp_path / "prompts"
  pairs = []
  for k, task in enumerate(["gaussian_denoising", "jpeg_restoration"]):
    source, target = prompts.synthesize_prompt(task, seed=k, size=64)
    (folder / task).mkdir(parents=True)
    image_io.write_image(folder / task / "prompt_input.png", source)
    image_io.write_image(folder / task / "prompt_target.png", target)
    pairs.append((image_io.read_image(folder / task / "prompt_input.png"),
                  image_io.read_image(folder / task / "prompt_target.png")))
  out = tmp_path / "out.npy"
  assert cli(["--config", TINY, "--random-init", "--prompts", str(folder),
                     "--input", str(photo), "--output", str(out)]) == 0
  image = image_io.read_image(photo)
  outputs = [runner.predict_image(model, image, s, t) for s, t in pairs]
  np.testing.assert_allclose(np.load(out), np.mean(outputs, axis=0), atol=1e-5)
  psnr_mean, psnr_min, std = _spread_by_hand(outputs)
  line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("prompt ensemble")]
  assert line == [f"prompt ensemble: outputs under the different prompts are {psnr_mean:.2f} dB "
                  f"PSNR from their mean (lowest {psnr_min:.2f} dB), pixel std {std:.4f}"]


def test_ensemble_of_synthesised_prompts_uses_consecutive_seeds(model, cli, photo, tmp_path):
  out = tmp_path / "out.npy"
  assert cli(["--config", TINY, "--random-init", "--task", "jpeg_restoration",
                     "--ensemble", "2", "--prompt-seed", "5", "--severity", "0.25",
                     "--input", str(photo), "--output", str(out)]) == 0
  image = image_io.read_image(photo)
  outputs = [runner.predict_image(model, image, *prompts.synthesize_prompt(
      "jpeg_restoration", 0.25, seed)) for seed in (5, 6)]
  np.testing.assert_allclose(np.load(out), np.mean(outputs, axis=0), atol=1e-5)


def test_list_tasks_shows_what_task_accepts(capsys):
  with pytest.raises(SystemExit) as stop:
    infer.main(["--list-tasks"])
  assert stop.value.code == 0
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 1 + len(registry.all_tasks())
  synthesised = {line.split()[0] for line in lines[1:] if "--task (synthesised)" in line}
  assert synthesised == set(prompts.synthesizable_tasks())


@pytest.mark.parametrize("extra, message", [
    (["--task", "depth_estimation"], "cannot be synthesised; give --prompt-input"),
    (["--task", "gausian_denoising"], "did you mean gaussian_denoising"),
    (["--task", "gaussian_denoising", "--severity", "1.5"], "--severity must be between 0"),
    (["--task", "gaussian_denoising", "--ensemble", "0"], "--ensemble must be at least 1"),
    (["--task", "gaussian_denoising", "--prompts", "prompts"], "give one prompt source"),
    (["--severity", "0.5", "--prompts", "prompts"], "go with --task"),
    (["--prompts", "nowhere"], "--prompts nowhere: no such folder"),
    (["--prompts", "half"], "has no prompt_target.* beside it"),
    (["--prompts", "empty"], "no prompt pair"),
    ([], "this model needs a prompt: give --task NAME"),
])
def test_prompt_source_mistakes_are_one_line_before_the_model(
    tmp_path, capsys, monkeypatch, photo, extra, message):
  monkeypatch.setattr(infer.api, "load_model", lambda *a: pytest.fail("the model was built"))
  monkeypatch.chdir(tmp_path)
  for name in ("prompts/a", "half", "empty"):
    os.makedirs(name)
  image_io.write_image("prompts/a/prompt_input.png", np.zeros((8, 8, 3), np.float32))
  image_io.write_image("prompts/a/prompt_target.png", np.ones((8, 8, 3), np.float32))
  image_io.write_image("half/prompt_input.png", np.zeros((8, 8, 3), np.float32))
  argv = ["--config", TINY, "--random-init", "--input", str(photo), "--output", "out.png",
          *extra]
  assert message in user_error(capsys, infer.main, argv)
  assert not os.path.exists("out.png")
