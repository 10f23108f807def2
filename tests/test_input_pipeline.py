"""Tests of genlv_jax.data.input_pipeline: determinism, topology independence, restore, task
weights, prompt/input image choice, bad data, held-out eval samples and paired data."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from genlv_jax import evaluation
from genlv_jax.config_defaults import default_config
from genlv_jax.data import image_sources, input_pipeline, records, task_selection

FAST_TASKS = "gaussian_denoising,canny,jpeg_restoration,inpainting"


def make_config(source: str = "builtin", tasks: str = FAST_TASKS, batch: int = 4,
                size: int = 32, seed: int = 0, **data):
  config = default_config()
  config.seed, config.batch_size, config.image_size = seed, batch, size
  config.data.source, config.data.tasks = source, tasks
  for key, value in data.items():
    config.data[key] = value
  return config


def take(iterator, n: int) -> list[dict]:
  return [next(iterator) for _ in range(n)]


def assert_batches_equal(a: list[dict], b: list[dict]) -> None:
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert set(x) == set(y) == {"prompt_source", "prompt_target", "input", "target", "task_id"}
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def concat(parts: list[dict]) -> dict:
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def solid_folder(root, n: int, size=(40, 48)) -> list[tuple[int, int, int]]:
  """n PNGs of distinct solid colours; returns the colours in file order."""
  root.mkdir(parents=True, exist_ok=True)
  colors = [(20 + 9 * i, 200 - 7 * i, (60 + 37 * i) % 256) for i in range(n)]
  for i, c in enumerate(colors):
    Image.fromarray(np.full(size + (3,), c, np.uint8)).save(root / f"img{i:02d}.png")
  return colors


def truncated_png(path) -> None:
  """A PNG whose header parses but whose pixel data is cut short."""
  noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
  Image.fromarray(noise).save(path)
  path.write_bytes(path.read_bytes()[:200])


def color_of(image: np.ndarray) -> tuple[int, ...]:
  return tuple(int(v) for v in np.round(image.reshape(-1, 3).mean(0) * 255))


# ---- determinism and topology ----------------------------------------------------------------

def test_batches_have_the_documented_shapes_and_are_deterministic():
  config = make_config()
  a = take(input_pipeline.make_train_iterator(config, 0, 1), 3)
  b = take(input_pipeline.make_train_iterator(config, 0, 1), 3)
  assert_batches_equal(a, b)
  for key in ("prompt_source", "prompt_target", "input", "target"):
    assert a[0][key].shape == (4, 32, 32, 3) and a[0][key].dtype == np.float32
    assert 0.0 <= a[0][key].min() and a[0][key].max() <= 1.0
  assert a[0]["task_id"].dtype == np.int32 and a[0]["task_id"].shape == (4,)
  names = {task_selection.task_vocabulary()[i] for b in a for i in b["task_id"]}
  assert names <= set(FAST_TASKS.split(","))
  other = take(input_pipeline.make_train_iterator(make_config(seed=1), 0, 1), 1)
  assert not np.array_equal(other[0]["input"], a[0]["input"])


def test_global_batch_is_the_same_for_one_and_two_processes():
  config = make_config(batch=4)
  single = take(input_pipeline.make_train_iterator(config, 0, 1), 3)
  halves = [take(input_pipeline.make_train_iterator(config, p, 2), 3) for p in (0, 1)]
  for step in range(3):
    joined = concat([halves[0][step], halves[1][step]])
    assert_batches_equal([single[step]], [joined])
    assert halves[0][step]["input"].shape[0] == 2


def test_worker_processes_do_not_change_the_batches():
  config = make_config(tasks="gaussian_denoising,canny", batch=2)
  in_process = take(input_pipeline.make_train_iterator(config, 0, 1), 3)
  config.data.workers = 2
  iterator = input_pipeline.make_train_iterator(config, 0, 1)
  try:
    with_workers = take(iterator, 3)
  finally:
    iterator.close()
  assert_batches_equal(in_process, with_workers)


def test_reader_threads_do_not_change_the_batches():
  config = make_config(tasks="gaussian_denoising,poisson_denoising,ringing_removal", batch=6)
  one = take(input_pipeline.make_train_iterator(config, 0, 1), 2)
  config.data.read_threads = 3  # the noise draws use OpenCV's thread-local generator
  assert_batches_equal(one, take(input_pipeline.make_train_iterator(config, 0, 1), 2))


def test_restore_mid_epoch_gives_the_same_following_batches():
  config = make_config()
  iterator = input_pipeline.make_train_iterator(config, 0, 1)
  take(iterator, 5)  # 20 of the ~36 training images: mid-epoch
  state = json.loads(json.dumps(iterator.get_state()))
  expected = take(iterator, 3)
  assert state["next_sample"] == 20 and iterator.step == 8

  restored = input_pipeline.make_train_iterator(config, 0, 1)
  restored.set_state(state)
  assert_batches_equal(take(restored, 3), expected)
  # The state has no topology in it: restore it on "two processes".
  parts = []
  for p in (0, 1):
    it = input_pipeline.make_train_iterator(config, p, 2)
    it.set_state(json.dumps(state))
    parts.append(next(it))
  assert_batches_equal([concat(parts)], expected[:1])
  with pytest.raises(ValueError, match="not an input-pipeline state"):
    restored.set_state({"step": 3})


def test_batch_size_must_divide_among_processes():
  with pytest.raises(ValueError, match="not divisible"):
    input_pipeline.make_train_iterator(make_config(batch=3), 0, 2)


# ---- tasks and weights -----------------------------------------------------------------------

def test_task_sets_and_weights_parse():
  acmmm = task_selection.select_tasks("acmmm30")
  assert "mixed_degradation" in acmmm and "dehazing" not in acmmm and "canny" in acmmm
  assert len(task_selection.select_tasks("procedural")) >= 45
  assert task_selection.select_tasks("Canny, gaussian_denoising,canny") == (
      "canny", "gaussian_denoising")
  with pytest.raises(ValueError, match="needs paired_dataset data"):
    task_selection.select_tasks("dehazing")
  with pytest.raises(ValueError, match="unknown task"):
    task_selection.select_tasks("no_such_task")

  names = ("gaussian_denoising", "impulse_denoising", "canny")
  np.testing.assert_allclose(task_selection.task_probabilities(names), [1 / 3] * 3)
  np.testing.assert_allclose(
      task_selection.task_probabilities(names, "category:restoration=1,feature_extraction=3"),
      [1 / 8, 1 / 8, 3 / 4])
  np.testing.assert_allclose(task_selection.task_probabilities(names, "task:canny=2"),
                             [1 / 4, 1 / 4, 1 / 2])
  for bad in ("task:dehazing=1", "category:styles=1", "task:canny=-1", "weighted"):
    with pytest.raises(ValueError):
      task_selection.task_probabilities(names, bad)


@pytest.mark.parametrize("weights,expected", [
    ("uniform", [1 / 3, 1 / 3, 1 / 3]),
    ("task:brightness_darkening_correction=6", [6 / 8, 1 / 8, 1 / 8]),
    ("category:restoration=3,enhancement=1", [1 / 4, 3 / 8, 3 / 8]),
])
def test_task_weights_shape_the_task_histogram(weights, expected):
  names = ["brightness_darkening_correction", "gaussian_denoising", "impulse_denoising"]
  config = make_config(tasks=",".join(names), batch=50, size=16, task_weights=weights)
  ids = np.concatenate([b["task_id"] for b in take(
      input_pipeline.make_train_iterator(config, 0, 1), 8)])
  vocabulary = task_selection.task_vocabulary()
  freq = [np.mean(ids == vocabulary.index(n)) for n in names]
  np.testing.assert_allclose(freq, expected, atol=0.07)  # 400 draws: ~3 standard errors


def test_prompt_comes_from_another_image_and_each_epoch_covers_every_image(tmp_path):
  colors = solid_folder(tmp_path / "imgs", 8)
  config = make_config(f"folder:{tmp_path / 'imgs'}", "brightness_darkening_correction",
                       batch=4, size=16)
  batches = take(input_pipeline.make_train_iterator(config, 0, 1), 4)
  for b in batches:
    for k in range(4):
      assert color_of(b["target"][k]) != color_of(b["prompt_target"][k])
  for epoch in (batches[:2], batches[2:]):  # 8 images, batch 4: two batches per epoch
    targets = [color_of(t) for b in epoch for t in b["target"]]
    assert sorted(targets) == sorted(colors)
  assert [color_of(t) for t in batches[0]["target"]] != [
      color_of(t) for t in batches[2]["target"]]  # reshuffled every epoch


# ---- bad data --------------------------------------------------------------------------------

def test_corrupt_and_truncated_files_are_skipped_and_counted(tmp_path, caplog):
  root = tmp_path / "imgs"
  colors = solid_folder(root, 6, size=(12, 10))  # smaller than the crop: upscaled
  (root / "corrupt.png").write_bytes(b"\x00garbage" * 20)
  truncated_png(root / "truncated.png")
  config = make_config(f"folder:{root}", "brightness_darkening_correction", batch=7, size=16)
  with caplog.at_level(logging.WARNING):
    iterator = input_pipeline.make_train_iterator(config, 0, 1)
    batches = take(iterator, 2)  # 7 listed files, batch 7: every file read at least once
  assert iterator.metrics() == {"data/skipped": 2}
  for name in ("corrupt.png", "truncated.png"):
    assert sum(name in r.getMessage() for r in caplog.records) == 1, name
  for b in batches:
    assert b["input"].shape == (7, 16, 16, 3)
    assert {color_of(t) for t in b["target"]} <= set(colors)


def test_source_without_a_readable_image_stops_with_one_line(tmp_path):
  (tmp_path / "junk").mkdir()
  (tmp_path / "junk" / "a.png").write_bytes(b"not an image")
  (tmp_path / "trunc").mkdir()
  for name in ("a.png", "b.png"):
    truncated_png(tmp_path / "trunc" / name)
  for folder in ("junk", "trunc", "missing"):
    with pytest.raises(ValueError) as info:
      input_pipeline.make_train_iterator(make_config(f"folder:{tmp_path / folder}"), 0, 1)
    assert isinstance(info.value, image_sources.ImageSourceError)
    assert "\n" not in str(info.value) and str(tmp_path / folder) in str(info.value)


# ---- evaluation samples and paired data --------------------------------------------------------

def test_eval_samples_are_fixed_and_held_out_of_training(tmp_path):
  colors = solid_folder(tmp_path / "imgs", 24)  # holdout: min(64, 24 // 10) = 2 images
  config = make_config(f"folder:{tmp_path / 'imgs'}", "brightness_darkening_correction,canny",
                       batch=11, size=16)
  held = {colors[i] for i in records.holdout_indices(24, -1)}
  assert len(held) == 2
  samples = evaluation.make_samples(config, None, num_images=3, seed=5).tasks
  again = evaluation.make_samples(config, "canny", num_images=3, seed=5).tasks
  assert set(samples) == {"brightness_darkening_correction", "canny"}
  np.testing.assert_array_equal(samples["canny"].inputs, again["canny"].inputs)
  np.testing.assert_array_equal(samples["canny"].prompts(0)[1], again["canny"].prompts(0)[1])
  # The test images are the held-out ones (two: the third asked for does not exist).
  clean_side = {"brightness_darkening_correction": "targets", "canny": "inputs"}
  for name, task_samples in samples.items():
    assert task_samples.inputs.shape == (2, 16, 16, 3)
    assert {color_of(x) for x in getattr(task_samples, clean_side[name])} == held
  clean_keys = {"brightness_darkening_correction": ("prompt_target", "target"),  # degrade
                "canny": ("prompt_source", "input")}  # transform: the source is clean
  batches = take(input_pipeline.make_train_iterator(config, 0, 1), 4)
  seen = {color_of(b[key][k]) for b in batches for k in range(11)
          for key in clean_keys[task_selection.task_vocabulary()[b["task_id"][k]]]}
  assert len(seen) == 22 and not seen & held  # 44 inputs: two epochs of the 22 others


def test_paired_task_reads_matching_input_and_target(tmp_path):
  targets = solid_folder(tmp_path / "clear", 4)
  (tmp_path / "hazy").mkdir()
  for i, c in enumerate(targets):  # RESIDE-style names: img00_1.png pairs with img00.png
    hazy = np.full((40, 48, 3), [min(255, v + 40) for v in c], np.uint8)
    Image.fromarray(hazy).save(tmp_path / "hazy" / f"img{i:02d}_1.png")
  config = make_config(tasks="dehazing", batch=6, size=16,
                       paired=f"dehazing={tmp_path / 'hazy'}|{tmp_path / 'clear'}")
  batch = next(input_pipeline.make_train_iterator(config, 0, 1))
  for k in range(6):
    inp, tgt = color_of(batch["input"][k]), color_of(batch["target"][k])
    assert tgt in targets and inp == tuple(min(255, v + 40) for v in tgt)
    assert tgt != color_of(batch["prompt_target"][k])
  assert set(batch["task_id"]) == {task_selection.task_vocabulary().index("dehazing")}
