"""`python -m genlv_jax.evaluate`: the papers' metrics per task, the spread over prompt pairs
(Table V), the identity baseline and the mismatch test. Tiny random-init model, 64 px crops:
every forward pass has one shape."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from conftest import config_path, user_error
from genlv_jax import evaluate, evaluation
from genlv_jax.data import image_io
from genlv_jax.data.image_sources import BuiltinSource, procedural_image
from genlv_jax.evaluation import samples as eval_samples
from genlv_jax.tasks import get_task

TINY = config_path("tiny")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
  """One CLI run: a restoration task (by paper name), a feature extraction task, a paired task
  with folders, a paired task without; K = 3 prompts on N = 2 images; the mismatch test."""
  root = tmp_path_factory.mktemp("evaluate")
  for i in range(4):  # a paired "dehazing" set: input = hazy (whitened), target = clean
    clean = procedural_image(i, 72)
    image_io.write_image(root / "hazy" / f"{i}.png", 0.6 * clean + 0.4)
    image_io.write_image(root / "clear" / f"{i}.png", clean)
  output = root / "out" / "report.json"
  code = evaluate.main([
      "--config", TINY, "--random-init", "--tasks", "Gaussian Denoising,canny,dehazing,"
      "lowlight_enhancement", "--paired", f"dehazing={root / 'hazy'}|{root / 'clear'}",
      "--source", "builtin", "--num-images", "2", "--num-prompts", "3", "--mismatch",
      "--output", str(output)])
  assert code == 0
  with open(output) as f:
    data = json.load(f)
  return data, (root / "out" / "report.md").read_text()


def test_report_has_metrics_with_spread_over_prompts_and_identity(report):
  data, _ = report
  assert data["num_prompts"] == 3 and data["checkpoint"] == "random init"
  assert set(data["tasks"]) == {"gaussian_denoising", "canny", "dehazing"}
  for name, keys in (("gaussian_denoising", {"psnr", "ssim"}), ("dehazing", {"psnr", "ssim"}),
                     ("canny", {"mae"})):
    task = data["tasks"][name]
    assert set(task["metrics"]) == keys and set(task["identity"]) == keys, name
    for spread in task["metrics"].values():
      assert len(spread["per_prompt"]) == 3
      assert spread["mean"] == pytest.approx(np.mean(spread["per_prompt"]))
      assert spread["std"] == pytest.approx(np.std(spread["per_prompt"]))
      # Different prompt pairs give (slightly) different results, even untrained.
      assert spread["std"] > 0
  canny = data["tasks"]["canny"]
  assert canny["category"] == "feature_extraction" and 0 < canny["metrics"]["mae"]["mean"] < 255
  assert 0 < data["tasks"]["gaussian_denoising"]["identity"]["psnr"] < 40
  assert "lowlight_enhancement" in data["skipped"] and "--paired" in data["skipped"][
      "lowlight_enhancement"]


def test_mismatch_test_crosses_every_prompt_with_every_input_and_clean_images(report):
  data, markdown = report
  cells = data["mismatch"]
  tasks = ["gaussian_denoising", "canny", "dehazing"]
  assert {(c["prompt_task"], c["input_task"]) for c in cells} == {
      (a, b) for a in tasks for b in tasks + ["clean"]}
  for cell in cells:
    assert np.isfinite(cell["vs_input"]["psnr"])
    assert set(cell["vs_target"]) == ({"mae"} if cell["input_task"] == "canny" else
                                      {"psnr", "ssim"})
  clean = [c for c in cells if c["input_task"] == "clean"][0]
  assert clean["identity"]["psnr"] is None  # infinite (input == target): null in strict JSON
  assert "Mismatch test" in markdown and "| prompt \\ input |" in markdown
  assert "± " in markdown and "identity" in markdown and "Skipped lowlight_enhancement" in markdown


def test_samples_are_fixed_by_the_seed_and_only_prompts_change_with_k():
  source = BuiltinSource()
  task = get_task("gaussian_denoising")
  a = eval_samples.procedural_samples(task, eval_samples.CleanImages(source, 64, 3, seed=5), seed=5)
  b = eval_samples.procedural_samples(task, eval_samples.CleanImages(source, 64, 3, seed=5), seed=5)
  np.testing.assert_array_equal(a.inputs, b.inputs)
  np.testing.assert_array_equal(a.prompts(1)[0], b.prompts(1)[0])
  assert not np.array_equal(a.prompts(0)[0], a.prompts(1)[0])
  # Input i and its prompts share a severity: the noise level (target - source) matches.
  noise_in = np.std(a.inputs - a.targets, axis=(1, 2, 3))
  ps, pt = a.prompts(2)
  np.testing.assert_allclose(np.std(ps - pt, axis=(1, 2, 3)), noise_in, rtol=0.35)
  # Held-out selection: test inputs only among the eligible indices; prompts never an input.
  clean = eval_samples.CleanImages(source, 64, 2, seed=0, eligible=np.array([4, 9, 30]))
  assert set(clean.input_indices) <= {4, 9, 30}
  assert not set(clean.prompt_indices) & set(clean.input_indices)


@pytest.mark.parametrize("args, message", [
    (["--tasks", "no_such_task"], "unknown task"),
    (["--tasks", "canny", "--source", "folder:/no/such/dir"], "image folder not found"),
    (["--tasks", "canny", "--checkpoint", "/no/such/ckpt"], "checkpoint not found"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, args, message):
  argv = ["--config", TINY, "--output", str(tmp_path / "r.json")] + args
  if "--checkpoint" not in args:
    argv.append("--random-init")
  assert message in user_error(capsys, evaluate.main, argv)
  assert not (tmp_path / "r.json").exists()


def test_evaluation_logged_in_training_equals_evaluate_on_that_checkpoint(tmp_path):
  """The trainer's periodic evaluation and `python -m genlv_jax.evaluate` are one library: with
  the same settings, the metrics logged at step N equal those of `evaluate` on the checkpoint
  of step N (EMA params on both sides)."""
  from genlv_jax.config_io import load_config
  from genlv_jax.models import Predictor, abstract_params, build_model
  from genlv_jax.training import checkpointing
  from genlv_jax.training.trainer import train_and_evaluate
  overrides = ["model.num_blocks=(1,1,1,1)", "batch_size=2", "image_size=64", "total_steps=2",
               "log_every=1", "eval_every=2", "checkpoint_every=2", "eval_images=2",
               "eval_prompts=2", "optimizer.ema_decay=0.5", "optimizer.warmup_steps=0",
               "optimizer.learning_rate=0.01",
               "data.tasks=gaussian_denoising,canny"]
  workdir = tmp_path / "run"
  train_and_evaluate(load_config(TINY, overrides), str(workdir))
  with open(workdir / "metrics.jsonl") as f:
    logged = [json.loads(line) for line in f]
  logged = {k: v for row in logged if row["step"] == 2 for k, v in row.items()
            if k.startswith("eval/")}
  assert {"eval/gaussian_denoising/psnr", "eval/canny/mae",
          "eval/canny/identity_mae"} <= set(logged)

  output = tmp_path / "report.json"
  assert evaluate.main(["--config", TINY, *(f"--config.{o}" for o in overrides),
                        "--checkpoint", str(workdir), "--num-images", "2", "--num-prompts", "2",
                        "--output", str(output)]) == 0
  report = json.loads(output.read_text())
  assert report["test_images_from"] == "held-out images of the training source"
  measured = evaluation.scalar_metrics(report)
  assert set(measured) == set(logged)
  for key, value in logged.items():
    assert measured[key] == pytest.approx(value, rel=1e-5, abs=1e-5), key
  # Without --config: the workdir's recorded config (with its overrides) is used.
  assert evaluate.main(["--checkpoint", str(workdir), "--num-images", "2", "--num-prompts", "2",
                        "--output", str(tmp_path / "again.json")]) == 0
  again = json.loads((tmp_path / "again.json").read_text())
  assert evaluation.scalar_metrics(again) == measured
  assert again["config"] == f"{workdir}/config.json"
  # convert takes the workdir the same way; the file holds the params evaluate measured (EMA).
  from genlv_jax import convert
  assert convert.main(["jax-to-torch", "--input", str(workdir),
                       "--output", str(tmp_path / "run.pth")]) == 0
  config = load_config(TINY, overrides)
  model = build_model(config)
  with checkpointing.TrainCheckpointer(str(workdir), every=1, keep=1) as checkpointer:
    ema = checkpointer.restore_params(abstract_params(model, config))
  converted = checkpointing.load_params(model, config, str(tmp_path / "run.pth"))
  for a, b in zip(jax.tree.leaves(ema), jax.tree.leaves(converted)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Both measured the EMA params: the raw params of that step give other numbers.
  with checkpointing.TrainCheckpointer(str(workdir), every=1, keep=1) as checkpointer:
    raw = checkpointer.restore_params(abstract_params(model, config), prefer_ema=False)
  raw_report = evaluation.run_evaluation(config, Predictor(model, raw, config), num_images=2,
                                         num_prompts=2)
  key = "eval/gaussian_denoising/psnr"
  assert abs(evaluation.scalar_metrics(raw_report)[key] - logged[key]) > 1e-3


# ---- what a person sees, and mistakes found before the model is loaded --------------------------

class _Identity:
  """A 'model' that returns its input (every metric equals the identity baseline)."""

  def __call__(self, images, prompt_source=None, prompt_target=None):
    return np.asarray(images)


class _NaNModel:
  def __call__(self, images, prompt_source=None, prompt_target=None):
    return np.full(np.shape(images), np.nan, np.float32)


def _argv(tmp_path, *extra):
  return ["--config", TINY, "--random-init", "--source", "builtin", "--num-images", "1",
          "--num-prompts", "2", "--output", str(tmp_path / "new" / "report.json"), *extra]


def test_prints_the_table_after_wrote_and_warns_about_skipped_tasks(tmp_path, capsys,
                                                                    monkeypatch):
  monkeypatch.setattr(evaluate.api, "load_model", lambda *a: _Identity())
  assert evaluate.main(_argv(tmp_path, "--tasks", "gaussian_denoising,canny,dehazing")) == 0
  out, err = capsys.readouterr()
  json_path, md_path = tmp_path / "new" / "report.json", tmp_path / "new" / "report.md"
  first, rest = out.split("\n", 1)
  assert first == f"wrote {json_path} and {md_path}"
  table = rest.strip().splitlines()
  assert table[0].startswith("| task | category | metric |") and len(table) == 2 + 3
  assert [row.split(" | ")[0] for row in table[2:]] == [
      "| gaussian_denoising (Gaussian Denoising)", "| gaussian_denoising (Gaussian Denoising)",
      "| canny (Canny)"]
  assert all(row in md_path.read_text().splitlines() for row in table)  # as report.md has it
  assert "+0.0000 |" in table[-1]  # the identity model: no change
  warnings = [line for line in err.splitlines() if line.startswith("warning:")]
  assert warnings == ["warning: skipping dehazing: paired_dataset task (RESIDE ITS [40]): give "
                      "its folders with --paired 'dehazing=INPUT_DIR|TARGET_DIR'"]


@pytest.mark.parametrize("extra, message", [
    (["--tasks", "dehazing"], "none of the requested tasks can be evaluated (dehazing: "
                              "paired_dataset task (RESIDE ITS [40]): give its folders with "
                              "--paired 'dehazing=INPUT_DIR|TARGET_DIR')"),
    (["--tasks", "canny", "--crop", "5000"], "--crop must be between 1 and 1024 px, got 5000"),
    (["--tasks", "canny", "--crop", "0"], "--crop must be between 1 and 1024 px, got 0"),
    (["--tasks", "canny", "--num-prompts", "0"], "--num-prompts must be at least 1, got 0"),
    (["--tasks", "canny", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--tasks", "canny", "--output", "OUT/report.md"], "give the JSON report's path"),
    (["--tasks", "canny", "--output", "OUT/blocker/r.json"], "blocker is a file, not a folder"),
    (["--tasks", "canny", "--source", "folder:OUT/missing"], "image folder not found"),
])
def test_mistakes_are_found_before_the_model_is_loaded(tmp_path, capsys, monkeypatch, extra,
                                                       message):
  monkeypatch.setattr(evaluate.api, "load_model", lambda *a: pytest.fail("the model was built"))
  (tmp_path / "blocker").write_text("a file where a folder is needed")
  extra = [a.replace("OUT", str(tmp_path)) for a in extra]
  assert message in user_error(capsys, evaluate.main, _argv(tmp_path, *extra))
  assert not (tmp_path / "new" / "report.json").exists()


def test_a_model_with_nonfinite_predictions_reads_nan_not_infinity(tmp_path, capsys,
                                                                   monkeypatch):
  """NaN metrics used to become null in the JSON and `∞` (perfect) in the Markdown."""
  monkeypatch.setattr(evaluate.api, "load_model", lambda *a: _NaNModel())
  assert evaluate.main(_argv(tmp_path, "--tasks", "gaussian_denoising")) == 0
  out, err = capsys.readouterr()
  data = json.loads((tmp_path / "new" / "report.json").read_text())
  n = data["tasks"]["gaussian_denoising"]["num_images"] * 64 * 64 * 3 * 2  # 2 prompt pairs
  assert data["non_finite_predictions"] == {"gaussian_denoising": n}
  assert data["tasks"]["gaussian_denoising"]["metrics"]["psnr"]["mean"] is None
  markdown = (tmp_path / "new" / "report.md").read_text()
  assert "NaN ± NaN" in markdown and "∞" not in markdown
  assert "NaN ± NaN" in out
  assert f"warning: gaussian_denoising: {n} prediction value(s) are not finite" in err


def test_images_smaller_than_the_crop_are_said_to_be_upscaled(caplog):
  source = BuiltinSource()
  small = min(range(len(source)), key=lambda i: min(source.read_rgb(i).shape[:2]))
  side = min(source.read_rgb(small).shape[:2])
  clean = eval_samples.CleanImages(source, side + 8, 1, seed=0, eligible=np.array([small]))
  clean.inputs()
  assert any("smaller than the" in r.getMessage() and "upscaled" in r.getMessage()
             for r in caplog.records)


def test_an_unusable_test_pair_is_left_out_never_replaced(tmp_path, caplog):
  from genlv_jax.data.paired_sources import PairedFolderSource
  for i in range(5):
    clean = procedural_image(i, 64)
    image_io.write_image(tmp_path / "in" / f"{i}.png", 0.5 * clean)
    image_io.write_image(tmp_path / "out" / f"{i}.png", clean)
  broken = tmp_path / "in" / "2.png"  # a test position (pairs 0 and 2 of 5); the header
  broken.write_bytes(broken.read_bytes()[:200])  # still parses, the pixels do not decode
  source = PairedFolderSource(str(tmp_path / "in"), str(tmp_path / "out"))
  samples = eval_samples.paired_samples(get_task("dehazing"), source, 64, 2, seed=0)
  assert len(samples.inputs) == 1  # pair 0 only: pair 2 is not replaced by pair 3
  np.testing.assert_allclose(samples.targets[0], procedural_image(0, 64), atol=1 / 255)
  assert "left out, unusable" in caplog.text and "2.png" in caplog.text
  ps, _ = samples.prompts(0)
  assert not np.allclose(ps[0], samples.inputs[0])  # prompts come from other pairs


# ---- each task evaluated on its own data, as training resolves it ------------------------------

def _png(path, color, size=64) -> None:
  from PIL import Image
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.full((size, size, 3), color, np.uint8)).save(path)


def _color(image: np.ndarray) -> tuple[int, ...]:
  return tuple(int(v) for v in np.round(np.asarray(image).reshape(-1, 3).mean(0) * 255))


def _data_config(tasks: str, size: int = 64, **data):
  from genlv_jax.config_defaults import default_config
  config = default_config()
  config.seed, config.image_size, config.batch_size = 0, size, 4
  config.data.source, config.data.tasks = "builtin", tasks
  for key, value in data.items():
    config.data[key] = value
  return config


def _training_eval_split(config, name: str, kind: str) -> np.ndarray:
  """The indices the input pipeline holds out of `name`'s source (its evaluation split)."""
  from genlv_jax.data import input_pipeline, task_sources
  _, plan = task_sources.configured_tasks(config, log=False)
  sources = input_pipeline._open_sources(config, plan)  # pylint: disable=protected-access
  return getattr(sources, kind)[name].indices


CT_COLORS = [(7, 211, 13 + 20 * i) for i in range(8)]  # no builtin image averages to these


def test_a_domain_task_is_evaluated_on_the_held_out_images_of_its_own_source(tmp_path):
  from genlv_jax.data.records import holdout_indices
  for i, color in enumerate(CT_COLORS):
    _png(tmp_path / "ct" / f"slice{i}.png", color)
  config = _data_config("ct_sr,canny", task_sources=f"ct=folder:{tmp_path / 'ct'}", holdout=3)
  samples = evaluation.make_samples(config, num_images=8)
  ct = samples.tasks["ct_sr"]
  held = holdout_indices(len(CT_COLORS), 3)
  assert len(held) == 3  # fewer than the 8 asked for: only held-out images are test inputs
  # The split the trainer leaves out of the CT folder, and nothing else.
  np.testing.assert_array_equal(_training_eval_split(config, "ct_sr", "own_eval"), held)
  np.testing.assert_array_equal(ct.input_indices, held)
  assert [_color(t) for t in ct.targets] == [CT_COLORS[i] for i in held]  # SR: target = clean
  assert ct.inputs.shape == (3, 64, 64, 3) and ct.origin.startswith("data.task_sources ct=")
  _, prompt_targets = ct.prompts(1)  # other CT slices, never a test input
  assert {_color(t) for t in prompt_targets} <= set(CT_COLORS) - {CT_COLORS[i] for i in held}
  # canny keeps the generic source (builtin), never the CT slices.
  assert not {_color(x) for x in samples.tasks["canny"].inputs} & set(CT_COLORS)
  assert samples.clean is not None and samples.skipped == {}
  again = evaluation.make_samples(config, num_images=8).tasks["ct_sr"]  # deterministic
  np.testing.assert_array_equal(again.inputs, ct.inputs)
  np.testing.assert_array_equal(again.prompts(1)[0], ct.prompts(1)[0])
  # Without its domain's images the task is skipped (saying how to give them), as the training
  # set leaves it out; nothing is synthesised from photographs.
  config.data.task_sources = ""
  samples = evaluation.make_samples(config, num_images=2)
  assert set(samples.tasks) == {"canny"}
  assert "data.task_sources='ct=folder:DIR'" in samples.skipped["ct_sr"]


def _authors_tree(root) -> dict[str, list]:
  """A small GenLV_Processed_Data (as tests/test_task_sources.py builds one) with dehazing
  (RESIDE names), CT SR (HR targets, x4-down inputs) and a style (FiveK inputs, `<k>_<stem>`
  targets, k the style reference); returns each task's (input, target) colours per file."""
  g = root / "GenLV_Processed_Data"
  for i in range(6):  # <n>_<k>_<beta> -> <n>
    _png(g / f"Restoration/Dehaze/Train_256/input/{i}_1_0.9.png", (200, 30 * i, 0), 32)
    _png(g / f"Restoration/Dehaze/Train_256/target/{i}.png", (100, 30 * i, 0), 32)
    _png(g / f"Restoration/CT/Train_X4Down_256/{i}.png", (120, 120, 10 + i), 32)
    _png(g / f"Restoration/CT/Train_target_256/{i}.png", (120, 130, 10 + i), 32)
  for i in range(4):
    _png(g / f"Enhancement/PhotoRetouch/Train_256/target/a{i}.png", (5, 60 + 30 * i, 100), 32)
    for k in (1, 2):
      _png(g / f"Stylization/Monet/Train_256_target/{k}_a{i}.png", (50 * k, 60 + 30 * i, 250),
           32)
  return g


def _pair_colors(task_data, indices) -> list[tuple]:
  from genlv_jax.data import task_sources
  source = task_sources.open_pairs(task_data)
  return [tuple(_color(image / 255.0 if image.dtype == np.uint8 else image)
                for image in source.read_pair(int(i))) for i in indices]


def test_tasks_with_the_authors_pairs_are_evaluated_on_their_held_out_pairs(tmp_path):
  from genlv_jax.data import task_sources
  from genlv_jax.data.records import holdout_indices
  root = _authors_tree(tmp_path)
  tasks = "dehazing,ct_sr,monet_style"
  without = evaluation.make_samples(_data_config(tasks, 32), num_images=4)
  assert without.tasks == {} and set(without.skipped) == set(tasks.split(","))
  config = _data_config(tasks, 32, paired_root=str(root), holdout=2)
  samples = evaluation.make_samples(config, num_images=4)
  assert samples.skipped == {} and samples.clean is None  # no task reads data.source
  plan = task_sources.plan(config, tasks.split(","))
  for name, n in (("dehazing", 6), ("ct_sr", 6), ("monet_style", 8)):
    got = samples.tasks[name]
    held = holdout_indices(n, 2)
    np.testing.assert_array_equal(_training_eval_split(config, name, "paired_eval"), held)
    np.testing.assert_array_equal(got.input_indices, held)
    assert [(_color(x), _color(y)) for x, y in zip(got.inputs, got.targets)] == _pair_colors(
        plan[name], held), name
    assert got.origin.startswith("data.paired_root"), name
    for k in range(3):  # prompts: other pairs of the tree, never a test pair
      ps, pt = got.prompts(k)
      prompts = {(_color(a), _color(b)) for a, b in zip(ps, pt)}
      assert prompts <= set(_pair_colors(plan[name], range(n))) - set(
          _pair_colors(plan[name], held)), (name, k)
  # The style's prompt pair shows the input's style reference (k in <k>_<stem>: red = 50 k).
  monet = samples.tasks["monet_style"]
  assert sorted(_color(t)[0] for t in monet.targets) == [50, 100]
  for k in range(3):
    np.testing.assert_array_equal([_color(t)[0] for t in monet.prompts(k)[1]],
                                  [_color(t)[0] for t in monet.targets])


def test_a_procedural_task_with_paired_folders_is_evaluated_on_those_pairs(tmp_path):
  import shutil
  from genlv_jax.data.records import holdout_indices
  from genlv_jax.errors import UserError
  targets = [(30 + 30 * i, 90, 150) for i in range(6)]
  for i, color in enumerate(targets):
    _png(tmp_path / "clean" / f"{i}.png", color)
    _png(tmp_path / "noisy" / f"{i}.png", tuple(v + 20 for v in color))
  dirs = f"{tmp_path / 'noisy'}|{tmp_path / 'clean'}"
  config = _data_config("gaussian_denoising,canny", paired=f"gaussian_denoising={dirs}",
                        holdout=2)
  samples = evaluation.make_samples(config, num_images=4)
  denoising = samples.tasks["gaussian_denoising"]
  held = holdout_indices(6, 2)
  np.testing.assert_array_equal(
      _training_eval_split(config, "gaussian_denoising", "paired_eval"), held)
  np.testing.assert_array_equal(denoising.input_indices, held)
  # Exactly the folders' pairs: no noise synthesised on top.
  assert [_color(t) for t in denoising.targets] == [targets[i] for i in held]
  np.testing.assert_allclose(denoising.inputs - denoising.targets, 20 / 255, atol=1e-6)
  ps, pt = denoising.prompts(0)
  assert _color(pt[0]) in targets and _color(ps[0]) == tuple(v + 20 for v in _color(pt[0]))
  assert denoising.origin == f"data.paired {dirs}"
  assert not {_color(x) for x in samples.tasks["canny"].inputs} & set(targets)  # builtin
  # An explicit `paired` (evaluate --paired) still stands for data.paired: the same folders
  # keep the held-out split; other folders are evaluated whole; none synthesises the task.
  same = evaluation.make_samples(config, "gaussian_denoising", num_images=4,
                                 paired=f"gaussian_denoising={tmp_path}/noisy/|{dirs.split('|')[1]}"
                                 ).tasks["gaussian_denoising"]  # the same folders, written apart
  np.testing.assert_array_equal(same.inputs, denoising.inputs)
  shutil.copytree(tmp_path / "noisy", tmp_path / "other" / "noisy")
  shutil.copytree(tmp_path / "clean", tmp_path / "other" / "clean")
  other = evaluation.make_samples(
      config, "gaussian_denoising", num_images=2,
      paired=f"gaussian_denoising={tmp_path}/other/noisy|{tmp_path}/other/clean"
  ).tasks["gaussian_denoising"]
  np.testing.assert_array_equal(other.input_indices, [0, 3])  # evenly over all 6 pairs
  synthesised = evaluation.make_samples(config, "gaussian_denoising", paired="", num_images=2)
  noise = synthesised.tasks["gaussian_denoising"].inputs - synthesised.tasks[
      "gaussian_denoising"].targets
  assert np.std(noise) > 0.02 and synthesised.clean is not None
  with pytest.raises(UserError, match="--paired input folder not found"):
    evaluation.make_samples(config, "gaussian_denoising",
                            paired=f"gaussian_denoising={tmp_path}/missing|{tmp_path}/clean")
