"""`python -m genlv_jax.data.prepare`: the Beam pipeline on the DirectRunner (one worker,
in memory) over tiny sources — paired folders in the authors' and RESIDE's layouts, a teacher,
heavy procedural targets — and what a rerun does: the same bytes, only missing shards made,
unreadable inputs listed, shards that grain reads."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from conftest import user_error
from genlv_jax.data import image_io, records
from genlv_jax.data.image_sources import procedural_image
from genlv_jax.data.prepare import manifest, shards
from genlv_jax.tasks import all_tasks, get_task

pytest.importorskip("apache_beam", reason="apache-beam (for `prepare`) is not installed")
from genlv_jax.data.prepare.__main__ import main  # noqa: E402  (needs Beam at run time only)
from genlv_jax.data.prepare.jobs import item_rng  # noqa: E402

BEAM = ["--no-progress", "--", "--direct_num_workers=1", "--direct_running_mode=in_memory"]


def grayscale(image: np.ndarray) -> np.ndarray:
  """The trivial teacher of `targets`: BT.601 luma, as an HxW map."""
  return image @ np.array([0.299, 0.587, 0.114], np.float32)


def wrong_size(image: np.ndarray) -> np.ndarray:
  """A teacher that returns the wrong thing: the launcher says so before any worker runs."""
  return image[::2]


def _prepare(*argv) -> None:
  assert main([*argv, *BEAM]) == 0


def _folder(root, n: int, size: int = 48, broken: bool = False):
  for i in range(n):
    image_io.write_image(root / f"img{i}.png", procedural_image(i, size))
  if broken:
    (root / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
  return root


def _records(folder) -> list[dict]:
  return [shards.decode_record(r) for r in _raw(folder)]


def _raw(folder) -> list[bytes]:
  import grain.python as grain
  source = grain.ArrayRecordDataSource(shards.shard_paths(str(folder)))
  return [source[i] for i in range(len(source))]


@pytest.fixture(scope="module")
def heavy_run(tmp_path_factory):
  """One folder (5 images and a broken PNG), `heavy` Gaussian denoising in shards of 2, twice."""
  root = tmp_path_factory.mktemp("prepare")
  source = _folder(root / "images", 5, broken=True)
  for out in ("a", "b"):
    _prepare("heavy", "--task", "gaussian_denoising", "--root", str(source), "--shard-size", "2",
             "--output", str(root / out))
  return root, source


def test_heavy_pairs_are_seeded_by_task_and_key_at_five_levels(heavy_run):
  root, source = heavy_run
  records = _records(root / "a" / "gaussian_denoising")
  assert [r["key"] for r in records] == [f"img{i}.png" for i in range(5)]
  task = get_task("gaussian_denoising")
  for r in records:
    assert r["role"] == "train" and r["severity"] == r["level"] / 4
    clean = image_io.read_image(source / r["key"])
    rng = item_rng(0, task.name, r["key"])
    rng.integers(5)  # the level draw
    noisy, target = task.synthesize(clean, r["severity"], rng)
    np.testing.assert_allclose(r["target"], clean, atol=0.5 / 255)
    np.testing.assert_allclose(r["input"], noisy, atol=0.51 / 255)


def test_two_runs_write_the_same_bytes_and_grain_reads_them(heavy_run):
  root, _ = heavy_run
  names = sorted(os.listdir(root / "a" / "gaussian_denoising"))
  assert names == sorted(os.listdir(root / "b" / "gaussian_denoising"))
  assert [n for n in names if n.endswith(".array_record")] == [
      f"train-0000{i}-of-00003.array_record" for i in range(3)]
  for name in names:
    assert ((root / "a" / "gaussian_denoising" / name).read_bytes()
            == (root / "b" / "gaussian_denoising" / name).read_bytes()), name
  pairs = shards.read_shards(str(root / "a"), "gaussian_denoising")
  assert len(pairs) == 5 and pairs.read_pair(4)[0].shape == (48, 48, 3)
  copy = pickle.loads(pickle.dumps(pairs))  # as grain hands a source to its workers
  np.testing.assert_array_equal(copy[3]["target"], pairs[3]["target"])
  # What the training records read from a paired source, skipped items noted.
  inp, tgt = records.SkipLog().read(copy, "read_pair", 2)
  assert inp.shape == tgt.shape == (48, 48, 3) and inp.dtype == np.float32


def test_unreadable_inputs_are_counted_and_listed(heavy_run, capsys):
  root, source = heavy_run
  folder = root / "a" / "gaussian_denoising"
  assert (folder / "skipped.tsv").read_text().startswith("zz_broken.png\t")
  sidecar = shards.read_sidecar(str(folder / "train-00002-of-00003.array_record"))
  assert sidecar["records"] == 1 and [k for k, _ in sidecar["skipped"]] == ["zz_broken.png"]
  _prepare("heavy", "--task", "gaussian_denoising", "--root", str(source), "--shard-size", "2",
           "--output", str(root / "a"))  # all there: nothing to run, the summary is printed
  out = capsys.readouterr().out
  assert "5 record(s) in 3 shard(s)" in out and "0 written now, 3 already there" in out
  assert "skipped 1 input(s)" in out and "zz_broken.png:" in out


def test_a_rerun_writes_only_the_missing_shard(heavy_run):
  root, source = heavy_run
  folder = root / "b" / "gaussian_denoising"
  shard_files = sorted(folder.glob("*.array_record"))
  old = 1_000_000_000
  for path in shard_files:
    os.utime(path, (old, old))
  before = shard_files[1].read_bytes()
  shard_files[1].unlink()
  _prepare("heavy", "--task", "gaussian_denoising", "--root", str(source), "--shard-size", "2",
           "--output", str(root / "b"))
  assert [p.stat().st_mtime == old for p in shard_files] == [True, False, True]
  assert shard_files[1].read_bytes() == before
  assert not [p for p in folder.iterdir() if ".tmp-" in p.name]


def test_heavy_rtv_on_one_64px_image(tmp_path):
  source = _folder(tmp_path / "one", 1, size=64)
  _prepare("heavy", "--task", "rtv", "--root", str(source), "--output", str(tmp_path / "out"))
  (record,) = _records(tmp_path / "out" / "rtv")
  assert record["severity"] is None and record["level"] is None
  expected = get_task("rtv").synthesize(record["input"], 0.0, np.random.default_rng(0))[1]
  np.testing.assert_allclose(record["target"], expected, atol=0.51 / 255)
  assert np.abs(record["target"] - record["input"]).mean() > 0.005


def test_targets_pairs_each_image_with_the_teachers_output(tmp_path, capsys):
  source = _folder(tmp_path / "images", 3)
  _prepare("targets", "--task", "depth_estimation", "--teacher", "test_prepare:grayscale",
           "--root", str(source), "--output", str(tmp_path / "out"))
  records = _records(tmp_path / "out" / "depth_estimation")
  assert len(records) == 3
  for r in records:
    np.testing.assert_allclose(r["target"], np.repeat(grayscale(r["input"])[..., None], 3, 2),
                               atol=1 / 255)
  assert "test_prepare:nothing" in user_error(capsys, main, [
      "targets", "--task", "depth_estimation", "--teacher", "test_prepare:nothing", "--root",
      str(source), "--output", str(tmp_path / "x")])


def test_training_reads_prepared_shards_under_prepared_root(tmp_path):
  """`data.prepared_root` is the `--output` of prepare: a task with shards there trains on
  their pairs (here a teacher task, which has no other data)."""
  from test_task_sources import make_config, samples  # pylint: disable=import-outside-toplevel
  from genlv_jax.data import task_sources  # pylint: disable=import-outside-toplevel
  source = _folder(tmp_path / "images", 4, size=32)
  _prepare("targets", "--task", "depth_estimation", "--teacher", "test_prepare:grayscale",
           "--root", str(source), "--output", str(tmp_path / "out"))
  config = make_config("depth_estimation", batch=4, size=16, holdout=1,
                       prepared_root=str(tmp_path / "out"))
  (data,) = task_sources.plan(config, ["depth_estimation"]).values()
  assert data.kind == "paired" and data.origin.startswith("data.prepared_root")
  for task, sample in samples(config, batches=2):
    assert task == "depth_estimation"
    for source_key, target_key in (("input", "target"), ("prompt_source", "prompt_target")):
      # Every pair is an image and the teacher's map of it (crops of both, aligned).
      expected = np.repeat(grayscale(sample[source_key])[..., None], 3, 2)
      np.testing.assert_allclose(sample[target_key], expected, atol=2 / 255)
  # Without the shards the task has no data, and a run naming it stops.
  with pytest.raises(task_sources.MissingDataError):
    task_sources.check_training_data(make_config("depth_estimation"))


def _write(path, image) -> None:
  image_io.write_image(path, image)


def test_paired_reads_the_authors_tree_and_reside_names(tmp_path):
  tree = tmp_path / "GenLV_Processed_Data"
  dehaze = tree / "Restoration" / "Dehaze" / "Train_256"
  for i in range(2):  # ITS names: N_k_beta.png (input) → N.png (target)
    _write(dehaze / "target" / f"{i}.png", procedural_image(i, 32))
    for k in range(2):
      _write(dehaze / "input" / f"{i}_{k}_0.8.png", 0.5 * procedural_image(i, 32) + 0.4)
  _write(dehaze / "input" / "7_1_0.8.png", procedural_image(7, 32))  # no target
  for i in range(2):  # one folder, two tasks: SDR → HDR and HDR → SDR
    _write(tree / "Enhancement" / "SDRHDR" / "SDR" / "Train_256" / f"{i}.png",
           procedural_image(10 + i, 32))
    _write(tree / "Enhancement" / "SDRHDR" / "HDR" / "Train_256" / f"{i}.png",
           procedural_image(20 + i, 32))
  _prepare("paired", "--root", str(tree), "--output", str(tmp_path / "out"))
  assert sorted(os.listdir(tmp_path / "out")) == ["dehazing", "hdr_to_sdr", "sdr_to_hdr"]
  dehazing = _records(tmp_path / "out" / "dehazing")
  assert [r["key"] for r in dehazing] == [f"Restoration/Dehaze/Train_256/input/{i}_{k}_0.8.png"
                                          for i in range(2) for k in range(2)]
  np.testing.assert_allclose(dehazing[3]["target"], procedural_image(1, 32), atol=0.5 / 255)
  sdr, hdr = _records(tmp_path / "out" / "sdr_to_hdr"), _records(tmp_path / "out" / "hdr_to_sdr")
  np.testing.assert_array_equal(sdr[1]["input"], hdr[1]["target"])
  # The raw RESIDE ITS download (hazy/ + clear/) pairs the same way.
  its = tmp_path / "ITS"
  for role, folder in (("input", "hazy"), ("target", "clear")):
    (its / folder).mkdir(parents=True)
    for path in (dehaze / role).iterdir():
      (its / folder / path.name).write_bytes(path.read_bytes())
  _prepare("paired", "--task", "dehazing", "--root", str(its), "--output", str(tmp_path / "its"))
  assert [r["key"] for r in _records(tmp_path / "its" / "dehazing")] == [
      f"hazy/{i}_{k}_0.8.png" for i in range(2) for k in range(2)]


def test_the_manifest_covers_the_23_paired_tasks():
  paired = sorted(t.name for t in all_tasks() if t.source == "paired_dataset")
  assert sorted(d.task for d in manifest.PAIRED_DATASETS) == paired and len(paired) == 23
  assert sorted(manifest.AUTHORS_MODEL_FOLDERS) == sorted(
      t.name for t in all_tasks() if t.source == "model")
  # Each paired task has the authors' prepared folder(s) to look for first.
  assert all(d.authors for d in manifest.PAIRED_DATASETS)


@pytest.mark.parametrize("argv, message", [
    (["heavy", "--task", "dehazing", "--source", "builtin"], "is paired_dataset"),
    (["heavy", "--task", "exposure_correction", "--source", "builtin"], "on the fly"),
    (["heavy", "--task", "rtv", "--source", "builtin", "--runnr=Dataflow"], "--runnr"),
    (["targets", "--task", "canny", "--teacher", "numpy:abs", "--source", "builtin"],
     "is procedural"),
    (["targets", "--task", "hed_boundary", "--teacher", "test_prepare:wrong_size", "--source",
      "builtin"], "the teacher returned"),
    (["paired", "--task", "dehazing", "--root", "OUT"], "no known layout of dehazing"),
    (["testset", "--source", "nowhere"], "unknown image source"),
])
def test_mistakes_are_one_line(tmp_path, capsys, argv, message):
  argv = [a.replace("OUT", str(tmp_path)) for a in argv] + ["--output", str(tmp_path / "o")]
  assert message in user_error(capsys, main, argv)


def test_a_rerun_with_other_settings_is_refused(heavy_run, capsys):
  root, source = heavy_run
  assert "levels differ" in user_error(capsys, main, [
      "heavy", "--task", "gaussian_denoising", "--root", str(source), "--shard-size", "2",
      "--levels", "3", "--output", str(root / "a"), *BEAM])
