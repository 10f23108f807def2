"""Where each task's data comes from (genlv_jax.data.task_sources): domain sources, paired
folders for procedural tasks, missing data stopping a run, the authors' prepared tree, their
mixture (`official101`) and their whole-image resize (`data.crop="resize"`)."""

from __future__ import annotations

import collections
import logging
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import config_path
from genlv_jax import cli
from genlv_jax.config_defaults import default_config
from genlv_jax.config_io import load_config
from genlv_jax.data import input_pipeline, records, task_selection, task_sources

VOCABULARY = task_selection.task_vocabulary()


def make_config(tasks: str, batch: int = 8, size: int = 16, **data):
  config = default_config()
  config.seed, config.batch_size, config.image_size = 0, batch, size
  config.data.source, config.data.tasks = "builtin", tasks
  for key, value in data.items():
    config.data[key] = value
  return config


def png(path, color, size=(32, 32)) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.full(size + (3,), color, np.uint8)).save(path)


def color_of(image: np.ndarray) -> tuple[int, ...]:
  return tuple(int(v) for v in np.round(image.reshape(-1, 3).mean(0) * 255))


def samples(config, batches: int = 3):
  """(task name, {key: image}) of every sample of the first batches."""
  iterator = input_pipeline.make_train_iterator(config, 0, 1)
  out = []
  for _ in range(batches):
    batch = next(iterator)
    for k, task_id in enumerate(batch["task_id"]):
      out.append((VOCABULARY[task_id], {key: batch[key][k] for key in
                                        ("prompt_source", "prompt_target", "input", "target")}))
  return out


# ---- domain sources --------------------------------------------------------------------------

CT_COLORS = [(7, 211, 13 + 20 * i) for i in range(4)]  # no builtin image averages to these


def test_a_domain_task_reads_its_domain_source(tmp_path):
  for i, color in enumerate(CT_COLORS):
    png(tmp_path / "ct" / f"slice{i}.png", color)
  config = make_config("ct_sr,canny", batch=12, task_sources=f"ct=folder:{tmp_path / 'ct'}")
  seen = collections.Counter()
  for task, q in samples(config):
    seen[task] += 1
    clean = ("target", "prompt_target") if task == "ct_sr" else ("input", "prompt_source")
    colors = {color_of(q[key]) for key in clean}
    if task == "ct_sr":  # SR of a constant image is that image: all four are CT slices
      assert colors <= set(CT_COLORS) and color_of(q["input"]) in CT_COLORS
    else:  # the generic (builtin) source, never the CT slices
      assert not colors & set(CT_COLORS)
  assert seen["ct_sr"] > 3 and seen["canny"] > 3
  # A task-level entry wins over its domain's; the domain's tasks share one opened source.
  config.data.task_sources = f"ct=folder:{tmp_path / 'ct'};ct_sr=builtin"
  plan = task_sources.plan(config, ["ct_sr", "ct_denoising"])
  assert plan["ct_sr"].clean == "builtin" and plan["ct_denoising"].clean.startswith("folder:")


def test_a_domain_task_without_its_source_is_missing_unless_fallback_is_asked(caplog):
  config = make_config("ct_sr,mri_denoising,dehazing,canny")
  with pytest.raises(task_sources.MissingDataError) as info:
    task_sources.check_training_data(config)
  problems = info.value.problems
  assert [p.split(":")[0] for p in problems] == ["ct_sr", "mri_denoising", "dehazing"]
  assert "data.task_sources='ct=folder:DIR'" in problems[0]
  assert "needs paired_dataset data" in problems[2]
  config.data.domain_fallback = True
  with pytest.raises(task_sources.MissingDataError) as info:
    input_pipeline.make_train_iterator(config, 0, 1)
  assert [p.split(":")[0] for p in info.value.problems] == ["dehazing"]
  config.data.tasks = "ct_sr,canny"
  with caplog.at_level(logging.WARNING):
    names, plan = task_sources.configured_tasks(config)
  assert names == ("ct_sr", "canny") and plan["ct_sr"].clean == "builtin"
  assert any("domain_fallback" in r.getMessage() and "ct_sr" in r.getMessage()
             for r in caplog.records)
  # A set leaves its domain tasks without data out, naming them in a warning.
  config.data.domain_fallback = False
  config.data.tasks = "procedural"
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    names, _ = task_sources.configured_tasks(config)
  assert "ct_sr" not in names and "gaussian_denoising" in names and "rtv" in names
  assert any("ct_sr" in r.getMessage() for r in caplog.records)


def test_missing_data_stops_the_trainer_check_with_one_line_per_task(capsys):
  from genlv_jax.training import trainer  # pylint: disable=import-outside-toplevel
  config = load_config(config_path("tiny"), ["data.tasks=ct_sr,dehazing,canny"])
  with pytest.raises(task_sources.MissingDataError) as info:
    trainer.check_config(config)
  with pytest.raises(SystemExit) as exit_info:
    cli.report_user_error(info.value)
  err = capsys.readouterr().err.splitlines()
  assert exit_info.value.code == 2
  assert len([line for line in err if line.startswith("error:")]) == 1
  assert err[0].startswith("error: 2 tasks in data.tasks have no training data")
  assert [line.split(":")[0].strip() for line in err[1:]] == ["ct_sr", "dehazing"]


# ---- paired folders for a procedural task ------------------------------------------------------

def test_paired_folders_given_for_a_procedural_task_replace_its_synthesis(tmp_path, caplog):
  targets = [(30 + 40 * i, 90, 150) for i in range(4)]
  for i, color in enumerate(targets):
    png(tmp_path / "clean" / f"{i}.png", color)
    png(tmp_path / "noisy" / f"{i}.png", tuple(v + 20 for v in color))
  paired = (f"gaussian_denoising={tmp_path / 'noisy'}|{tmp_path / 'clean'};"
            f"dehazing={tmp_path / 'noisy'}|{tmp_path / 'clean'}")
  config = make_config("gaussian_denoising,canny", paired=paired)
  with caplog.at_level(logging.WARNING):
    drawn = samples(config, 2)
  for task, q in drawn:
    if task == "gaussian_denoising":  # exactly the folders' pairs: no noise was synthesised
      for inp, tgt in (("input", "target"), ("prompt_source", "prompt_target")):
        assert color_of(q[tgt]) in targets
        assert color_of(q[inp]) == tuple(v + 20 for v in color_of(q[tgt]))
  assert {t for t, _ in drawn} == {"gaussian_denoising", "canny"}
  # Folders for a task the run does not train are named, not dropped in silence.
  assert any("dehazing" in r.getMessage() and "not used" in r.getMessage()
             for r in caplog.records)


# ---- the authors' prepared tree ----------------------------------------------------------------

def fake_authors_tree(root) -> dict[str, set]:
  """A small GenLV_Processed_Data (+ SuperBench sibling) in the authors' layout; returns, per
  task, the (input colour, target colour) pairs it holds."""
  g = root / "GenLV_Processed_Data"
  expected = collections.defaultdict(set)

  def pair(task, inp_path, inp, tgt_path, tgt):
    png(inp_path, inp)
    png(tgt_path, tgt)
    expected[task].add((inp, tgt))

  for i in range(3):  # RESIDE names: <n>_<k>_<beta> -> <n>
    pair("dehazing", g / f"Restoration/Dehaze/Train_256/input/{i}_1_0.9.png", (200, 10 * i, 0),
         g / f"Restoration/Dehaze/Train_256/target/{i}.png", (100, 10 * i, 0))
  fivek = [(5, 60 + 30 * i, 100) for i in range(3)]
  retouch = g / "Enhancement/PhotoRetouch/Train_256"
  for i, color in enumerate(fivek):  # FiveK expert C is PhotoRetouch's target
    pair("photo_retouching", retouch / f"input/a{i}.png", (color[0] + 1, color[1], color[2]),
         retouch / f"target/a{i}.png", color)
    pair("rtv", retouch / f"target/a{i}.png", color,
         g / f"Stylization/RTV/Train_256_target/a{i}.png", (color[0] + 2, color[1], 0))
    for k in (1, 2):  # two style references, k_<stem>
      pair("monet_style", retouch / f"target/a{i}.png", color,
           g / f"Stylization/Monet/Train_256_target/{k}_a{i}.png", (50 * k, color[1], 250))
  for i in range(3):
    for f, name in enumerate(("Amaro", "Lomo")):
      ori, filt = (i * 20, 240, 40), (i * 20, 240 - 100 * (f + 1), 40)
      pair("instagram_filter_removal",
           g / f"Enhancement/InstagramFilter/Train_256/processed/{i}_{name}.png", filt,
           g / f"Enhancement/InstagramFilter/Train_256/original/{i}_Original.png", ori)
      expected["instagram_filter_addition"].add((ori, filt))
    for light in ("D_CS", "T_CS"):
      pair("white_balance_correction",
           g / f"Enhancement/WhiteBalance/Train_256/input/img_{i}_{light}.png",
           (30 + i, 30 + 5 * len(light) + (light == "T_CS"), 90),
           g / f"Enhancement/WhiteBalance/Train_256/target/img_{i}_G_AS.png", (30 + i, 77, 90))
    pair("ct_sr", g / f"Restoration/CT/Train_X4Down_256/{i}.png", (120, 120, 10 + i),
         g / f"Restoration/CT/Train_target_256/{i}.png", (120, 130, 10 + i))
    expo = g / "Enhancement/ExpoCorrect/Train_256"
    for code, exposure in ((60, "N1.5"), (180, "P1")):  # <name>_<exposure> -> <name>
      pair("exposure_correction", expo / f"input/a{i}_{exposure}.png", (40 * i, code, 7),
           expo / f"target/a{i}.png", (40 * i, 120, 7))
    png(g / f"Restoration/CT/Train_GN15_256/{i}.png", (121, 121, 10 + i))
    expected["ct_denoising"].add(((121, 121, 10 + i), (120, 130, 10 + i)))
    pair("weather_sr",
         root / f"SuperBench_Processd_Data/Restoration/Weather/Train_X4Down_256/{i}.png",
         (70, 3, 3 + i), root / f"SuperBench_Processd_Data/Restoration/Weather/Train_target_256/"
         f"{i}.png", (70, 9, 3 + i))
  return dict(expected)


AUTHORS_TASKS = ("dehazing", "photo_retouching", "rtv", "monet_style", "instagram_filter_removal",
                 "instagram_filter_addition", "white_balance_correction", "ct_sr", "ct_denoising",
                 "weather_sr", "exposure_correction", "gaussian_denoising")


def test_the_authors_tree_is_read_as_is(tmp_path):
  expected = fake_authors_tree(tmp_path)
  root = tmp_path / "GenLV_Processed_Data"
  config = make_config(",".join(AUTHORS_TASKS), batch=33, size=32, paired_root=str(root))
  plan = task_sources.plan(config, AUTHORS_TASKS)
  assert all(plan[t].kind == "paired" for t in AUTHORS_TASKS[:-1])
  assert plan["gaussian_denoising"].kind == "clean"  # synthesised on ImageNet by the authors too
  seen = collections.Counter()
  for task, q in samples(config, 4):
    seen[task] += 1
    if task == "gaussian_denoising":
      continue
    for inp, tgt in (("input", "target"), ("prompt_source", "prompt_target")):
      assert (color_of(q[inp]), color_of(q[tgt])) in expected[task], task
    if task == "monet_style":  # prompt and input show the same style reference
      assert color_of(q["target"])[0] == color_of(q["prompt_target"])[0]
    if task == "exposure_correction":  # … the same exposure
      assert color_of(q["input"])[1] == color_of(q["prompt_source"])[1]
    if task.startswith("instagram"):  # … and the same filter
      filtered = "input" if task.endswith("removal") else "target"
      prompt = "prompt_source" if task.endswith("removal") else "prompt_target"
      assert color_of(q[filtered])[1] == color_of(q[prompt])[1]
  assert set(seen) == set(AUTHORS_TASKS), seen
  # Every task of the authors' loader that reads a folder has an entry; none is procedural
  # there without being so here.
  assert len(task_sources.AUTHORS_LAYOUT) == 101 - 34
  missing = task_sources.plan(make_config("all", paired_root=str(root)))["dust_removal"]
  assert missing.kind == "missing" and "Restoration/DustRemoval" in missing.origin


@pytest.mark.slow  # ~100 s on 2 busy cores when XLA compiles cold (20 s from its cache)
def test_a_tiny_run_trains_on_the_authors_pairs(tmp_path):
  """Two training steps of configs/tiny.py on the fake tree (the pipeline test above checks
  which pairs the batches hold)."""
  from genlv_jax.training import trainer  # pylint: disable=import-outside-toplevel
  fake_authors_tree(tmp_path)
  config = load_config(config_path("tiny"), [
      "data.tasks=dehazing,ct_sr,monet_style", f"data.paired_root={tmp_path}/GenLV_Processed_Data",
      "image_size=32", "total_steps=2", "eval_every=0", "log_every=1", "checkpoint_every=100",
      "perf.count_flops=false", "async_checkpointing=false", "data.crop=resize",
      "model.num_blocks=(1,1,1,1)"])
  state = trainer.train_and_evaluate(config, str(tmp_path / "workdir"))
  assert int(state.step) == 2


# ---- the authors' mixture and resize ----------------------------------------------------------

# Percent of samples per task in chxy95/GenLV extended_version/dataset/genlv_100_dataloader.py
# (DatasetPrompt_Train.__getitem__, tasks_version 0): 'Base' 33 % split p=[20/33, 7/33, 2/33,
# 4/33] into X-Distortion (13 families of x_distortion/__init__.py's distortions_dict, uniform,
# then uniform over each family's functions), Extra-Degradation (7), Operators (2) and Mixture;
# each dataset 1/100, ShadowRemovalISTD and ShadowRemovalSRD 0.5/100 each, SDRHDR,
# InstagramFilter, CT, MRI and Satellite 2/100 each (two tasks each).
X_FAMILY = 20 / 13
AUTHORS_PERCENT = {
    "gaussian_denoising": X_FAMILY * 2 / 6,   # noise_gaussian_RGB and noise_gaussian_YCrCb
    "poisson_denoising": X_FAMILY / 6, "motion_deblurring": X_FAMILY / 6,
    "jpeg_restoration": X_FAMILY / 2, "jpeg2000_restoration": X_FAMILY / 2,
    "brightness_brightening_correction": X_FAMILY, "spatter_removal": X_FAMILY,
    "quantization_median_restoration": X_FAMILY / 3, "pixelation_removal": X_FAMILY,
    "sr_x4": 1.0, "sr_x2": 1.0, "demosaicing": 1.0, "simple_deraining": 1.0,  # 7/33 of 33 %
    "canny": 1.0, "laplacian": 1.0,                                          # 2/33
    "mixed_degradation": 4.0,                                                # 4/33
    "dehazing": 1.0, "shadow_removal": 1.0, "sdr_to_hdr": 1.0, "hdr_to_sdr": 1.0,
    "instagram_filter_addition": 1.0, "ct_sr": 1.0, "ct_denoising": 1.0, "weather_sr": 1.0,
    "monet_style": 1.0, "rtv": 1.0, "white_balance_correction": 1.0, "hough_line": 1.0,
}


def test_official101_is_the_authors_mixture():
  p = task_selection.task_probabilities(VOCABULARY, "official101") * 100
  percent = dict(zip(VOCABULARY, p))
  for name, value in AUTHORS_PERCENT.items():
    assert percent[name] == pytest.approx(value, rel=1e-9), name
  x_tasks = {n for f in task_selection.OFFICIAL101_X_DISTORTIONS.values() for n in f}
  assert len(x_tasks) == 25 and sum(percent[n] for n in x_tasks) == pytest.approx(20)
  datasets = [n for n in VOCABULARY if percent[n] == pytest.approx(1.0)]
  assert len(datasets) == 67 + 7 + 2  # the dataset tasks, Extra-Degradation, Operators
  assert sum(p) == pytest.approx(100)
  # A selection renormalises the same weights.
  np.testing.assert_allclose(task_selection.task_probabilities(
      ["mixed_degradation", "canny", "dehazing"], "official101"), [4 / 6, 1 / 6, 1 / 6])
  levels = task_selection.severity_levels(["gaussian_denoising", "canny"], "official101")
  np.testing.assert_allclose(levels[0], [0, 0.25, 0.5, 0.75, 1])
  assert levels[1] is None


def test_official101_draws_distortion_severities_from_five_levels(monkeypatch):
  drawn = collections.defaultdict(list)

  def fake_quadruplet(task, prompt_clean, input_clean, severity, rng, out=None, copy_clean=True):
    drawn[task.name].append(severity)
    return {k: v for k, v in (out or {}).items()}

  monkeypatch.setattr(records.registry, "make_quadruplet", fake_quadruplet)
  config = make_config("gaussian_denoising,canny", batch=40, task_weights="official101")
  next(input_pipeline.make_train_iterator(config, 0, 1))
  assert set(drawn["gaussian_denoising"]) <= {0.0, 0.25, 0.5, 0.75, 1.0}
  assert len(set(drawn["gaussian_denoising"])) >= 3
  assert len(set(drawn["canny"])) == len(drawn["canny"]) > 1  # uniform draws


def test_resize_crop_is_the_authors_cv2_resize(tmp_path):
  rng = np.random.default_rng(0)
  large = rng.integers(0, 256, (40, 52, 3), np.uint8)   # both sides above 32: INTER_AREA
  narrow = rng.integers(0, 256, (48, 20, 3), np.uint8)  # one side below: INTER_CUBIC
  small_float = rng.random((24, 24, 3), np.float32)
  out = records.resize_whole([large, narrow, small_float], 32)
  as_uint8 = [np.round(o * 255).astype(np.uint8) for o in out]  # uint8 in, resized as uint8
  np.testing.assert_array_equal(
      as_uint8[0], cv2.resize(large, (32, 32), interpolation=cv2.INTER_AREA))
  np.testing.assert_array_equal(
      as_uint8[1], cv2.resize(narrow, (32, 32), interpolation=cv2.INTER_CUBIC))
  assert not np.array_equal(as_uint8[1], cv2.resize(narrow, (32, 32),
                                                    interpolation=cv2.INTER_AREA))
  np.testing.assert_array_equal(out[2], np.clip(cv2.resize(
      small_float, (32, 32), interpolation=cv2.INTER_CUBIC), 0, 1))
  # Through the pipeline: canny's input is the clean image, resized whole.
  (tmp_path / "imgs").mkdir()
  Image.fromarray(large).save(tmp_path / "imgs" / "a.png")
  Image.fromarray(narrow).save(tmp_path / "imgs" / "b.png")
  config = make_config("canny", batch=4, size=32, crop="resize")
  config.data.source = f"folder:{tmp_path / 'imgs'}"
  batch = next(input_pipeline.make_train_iterator(config, 0, 1))
  for image in batch["input"]:
    assert any(np.array_equal(image, o) for o in out[:2])
  config.data.crop = "middle"
  with pytest.raises(ValueError, match="data.crop must be one of random, resize"):
    task_sources.check_training_data(config)
