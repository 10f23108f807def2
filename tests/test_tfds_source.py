"""Tests of data/prepare_folder.py and the `tfds:NAME` image source (offline, tiny folders)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genlv_jax import evaluation
from genlv_jax.config_defaults import default_config
from genlv_jax.data import image_sources, input_pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "data", "prepare_folder.py")
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
if not os.path.exists(PYTHON):
  PYTHON = sys.executable
NAME = "genlv_test_images"


def _load_script():
  spec = importlib.util.spec_from_file_location("prepare_folder", SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  """A folder of 12 images of several kinds plus a corrupt file, prepared once."""
  root = tmp_path_factory.mktemp("images")
  rng = np.random.default_rng(0)
  (root / "sub").mkdir()
  for i in range(9):
    Image.fromarray(rng.integers(0, 256, (30 + i, 40, 3), dtype=np.uint8)).save(
        root / ("sub" if i % 3 == 0 else ".") / f"rgb{i}.png")
  Image.fromarray(rng.integers(0, 256, (33, 35), dtype=np.uint8)).save(root / "gray.png")
  Image.fromarray(rng.integers(0, 256, (31, 36, 4), dtype=np.uint8)).save(root / "rgba.png")
  Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(root / "photo.jpg")
  (root / "broken.png").write_bytes(b"\x89PNG not really" * 5)
  data_dir = tmp_path_factory.mktemp("tfds")
  out = subprocess.run(
      [PYTHON, SCRIPT, "--input", str(root), "--name", NAME, "--data-dir", str(data_dir),
       "--val-fraction", "0.25"], cwd=REPO, capture_output=True, text=True, timeout=300,
      check=False)
  assert out.returncode == 0, out.stderr[-2000:]
  summary = json.loads(out.stdout.strip().splitlines()[-1])
  return root, data_dir, summary


def test_prepare_folder_writes_an_array_record_dataset(prepared):
  root, data_dir, summary = prepared
  assert summary["name"] == NAME
  assert sum(summary["splits"].values()) == 12 and set(summary["splits"]) == {"train",
                                                                              "validation"}
  assert summary["skipped"] == [str(root / "broken.png")]
  files = os.listdir(data_dir / NAME / "1.0.0")
  assert any(".array_record-" in f for f in files) and "dataset_info.json" in files


def test_tfds_source_reads_every_image_as_the_folder_source_does(prepared):
  root, data_dir, summary = prepared
  folder = image_sources.parse_source(f"folder:{root}")
  expected = {os.path.relpath(p, root): folder[i] for i, p in enumerate(folder.paths)}
  seen = {}
  for split in ("train", "validation"):
    source = image_sources.parse_source(f"tfds:{NAME}", data_dir=str(data_dir), split=split)
    assert len(source) == summary["splits"][split]
    for i in range(len(source)):
      filename = source._ds[i]["filename"].decode()  # pylint: disable=protected-access
      seen[filename] = source[i]
  assert set(seen) == set(expected)
  for name, image in seen.items():
    assert image.dtype == np.float32 and image.shape[2] == 3
    np.testing.assert_array_equal(image, expected[name], err_msg=name)  # lossless / same bytes


def test_tfds_data_source_reads_it_without_our_code(prepared):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  _, data_dir, summary = prepared
  ds = tfds.data_source(NAME, split="train", data_dir=str(data_dir), download=False)
  assert len(ds) == summary["splits"]["train"]
  assert ds[0]["image"].ndim == 3 and ds[0]["image"].shape[2] == 3


def test_pipeline_trains_from_tfds_and_evaluates_on_its_validation_split(prepared):
  _, data_dir, _ = prepared
  config = default_config()
  config.batch_size, config.image_size = 2, 32  # images of ~30 px: upscaled for the crop
  config.data.source, config.data.data_dir = f"tfds:{NAME}", str(data_dir)
  config.data.tasks, config.data.eval_split = "gaussian_denoising", "validation"
  config.data.workers = 1  # the tfds handle is reopened in the worker process
  iterator = input_pipeline.make_train_iterator(config, 0, 1)
  try:
    batch = next(iterator)
  finally:
    iterator.close()
  assert batch["input"].shape == (2, 32, 32, 3)
  config.data.workers = 0
  samples = evaluation.make_samples(config, num_images=2)
  assert samples.tasks["gaussian_denoising"].targets.shape == (2, 32, 32, 3)


def test_unknown_tfds_dataset_is_one_line_error(tmp_path):
  with pytest.raises(image_sources.ImageSourceError) as info:
    image_sources.parse_source("tfds:no_such_dataset_xyz", data_dir=str(tmp_path))
  assert "\n" not in str(info.value) and "no_such_dataset_xyz" in str(info.value)


@pytest.mark.parametrize("args,message", [
    (["--input", "{missing}", "--name", "ok_name"], "not found"),
    (["--input", "{images}", "--name", "Bad-Name"], "snake_case"),
    (["--input", "{images}", "--name", "mnist"], "registered"),
    (["--input", "{images}", "--name", NAME], "already exists"),
    (["--input", "{images}", "--name", "ok_name", "--val-fraction", "1.5"], "val-fraction"),
])
def test_prepare_folder_user_errors_are_one_line(prepared, tmp_path, capsys, args, message):
  root, data_dir, _ = prepared
  args = [a.format(missing=tmp_path / "missing", images=root) for a in args]
  status = _load_script().main(args + ["--data-dir", str(data_dir)])
  err = capsys.readouterr().err
  assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
