"""A sweep of bad input across every command: what a user who got something wrong sees.

One row per mistake: the command, its argv (`{d}` is a folder of prepared files) and a fragment
of the message. Every row must end with exit status 2 and exactly one `error:` line on stderr,
no traceback, and, where a model would be built, without `genlv_jax.api.load_model` ever being
called: a mistake is found before any work. Nothing here builds or compiles a model.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
from PIL import Image

import genlv_jax.api
from conftest import config_path
from genlv_jax import convert, evaluate, finetune, infer, summary
from genlv_jax.models import summary as model_summary
from genlv_jax.training import checkpointing
from genlv_jax.training import finetune as finetuning

TINY = config_path("tiny")
tasks_cli = importlib.import_module("genlv_jax.tasks.__main__")
MAINS = {"infer": infer.main, "evaluate": evaluate.main, "convert": convert.main,
         "summary": summary.main, "tasks": tasks_cli.main, "finetune": finetune.main}


def _png(path, size=(16, 16), value=128) -> None:
  Image.fromarray(np.full(size + (3,), value, np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path):
  """The files the rows point at, in one folder."""
  d = tmp_path
  for name in ("ps.png", "pt.png", "in.png"):
    _png(d / name)
  _png(d / "other_size.png", (8, 12))
  nan = np.full((16, 16, 3), 0.5, np.float32)
  nan[2:12, 3:13] = np.nan  # a 10x10 patch: 300 values in 100 pixels
  np.save(d / "nan.npy", nan)
  inf = np.full((16, 16, 3), 0.5, np.float32)
  inf[5, 5] = np.inf
  np.save(d / "inf.npy", inf)
  np.save(d / "f255.npy", np.full((16, 16, 3), 200.0, np.float32))  # 0-255 data as float
  np.save(d / "complex.npy", np.zeros((16, 16, 3), np.complex64))
  (d / "notes.txt").write_text("not an image, not a config")
  (d / "broken.png").write_bytes(b"\x89PNG, but not really" * 4)
  (d / "blocker").write_text("a file where a folder is needed")
  (d / "weights.pth").write_bytes(b"never read")
  (d / "empty").mkdir()
  (d / "images").mkdir()
  _png(d / "images" / "a.png")
  (d / "photos").mkdir()
  (d / "photos" / "holiday.jpg").write_bytes(b"precious")
  (d / "params").mkdir()  # what `is_params_checkpoint` recognises; never restored here
  (d / "params" / "_CHECKPOINT_METADATA").write_text("{}")
  for sub, stems in (("pairs_in", "012"), ("pairs_out", "012"), ("pairs_other", "789")):
    (d / sub).mkdir()
    for stem in stems:
      _png(d / sub / f"{stem}.png")
  return d


# ---- argv builders: a complete, valid command line, changed by one mistake ----------------------

def _build(defaults: dict, changes: dict, extra: tuple) -> list[str]:
  """`defaults` with `changes` applied (None removes an option; "" makes it a flag)."""
  options = {**defaults, **changes}
  argv = []
  for key, value in options.items():
    if value is None:
      continue
    argv += [key] if value == "" else [key, value]
  return argv + list(extra)


def infer_(*extra, **changes) -> list[str]:
  defaults = {"--config": TINY, "--random-init": "", "--prompt-input": "{d}/ps.png",
              "--prompt-target": "{d}/pt.png", "--input": "{d}/in.png",
              "--output": "{d}/out/out.png"}
  return _build(defaults, {"--" + k.replace("_", "-"): v for k, v in changes.items()}, extra)


def evaluate_(*extra, **changes) -> list[str]:
  defaults = {"--config": TINY, "--random-init": "", "--tasks": "canny", "--source": "builtin",
              "--num-images": "1", "--num-prompts": "1", "--output": "{d}/report/r.json"}
  return _build(defaults, {"--" + k.replace("_", "-"): v for k, v in changes.items()}, extra)


def finetune_(*extra, **changes) -> list[str]:
  defaults = {"--config": TINY, "--random-init": "", "--pairs-input": "{d}/pairs_in",
              "--pairs-target": "{d}/pairs_out", "--workdir": "{d}/ft"}
  return _build(defaults, {"--" + k.replace("_", "-"): v for k, v in changes.items()}, extra)


def checkpoint(path: str) -> dict:
  return {"random_init": None, "checkpoint": path}


CASES = [
    # -- infer: options ------------------------------------------------------------------------
    ("infer", infer_("--tile", "-5"), "--tile must be 0 (whole images) or a positive multiple"),
    ("infer", infer_("--tile", "100"), "multiple of 64, got 100"),
    ("infer", infer_("--overlap", "-1"), "overlap must be in [0, tile=256), got -1"),
    ("infer", infer_("--overlap", "256"), "overlap must be in [0, tile=256), got 256"),
    ("infer", infer_("--tile", "0", "--overlap", "-3"), "--overlap must be >= 0, got -3"),
    ("infer", infer_("--tile-batch", "0"), "--tile-batch must be at least 1, got 0"),
    ("infer", infer_("--prompt-max", "0"), "--prompt-max must be at least 8"),
    ("infer", infer_("--prompt-max", "4"), "--prompt-max must be at least 8"),
    ("infer", infer_("--grid", "{d}/g.png", "--grid-height", "0"), "--grid-height must be"),
    ("infer", infer_("--grid", "{d}/g.npy"), "--grid {d}/g.npy: use an image extension"),
    ("infer", infer_("--resize", "100"), "--resize must be a positive multiple of 8"),
    ("infer", infer_("--nonfinite", "ignore"), "argument --nonfinite: invalid choice: 'ignore'"),
    ("infer", infer_(input="{d}/images", output="{d}/o", format="gif"),
     "--format 'gif' is not one of"),
    ("infer", infer_(output="{d}/o.xyz"), "unknown output format"),
    ("infer", infer_(format="npy"), "--format npy does not apply to the file --output"),
    # -- infer: input and prompt files ---------------------------------------------------------
    ("infer", infer_(input="{d}/missing.png"), "input not found: {d}/missing.png"),
    ("infer", infer_(input="{d}/empty"), "no image files under {d}/empty"),
    ("infer", infer_(input="{d}/notes.txt"), "cannot read image {d}/notes.txt"),
    ("infer", infer_(input="{d}/broken.png"), "cannot read image {d}/broken.png"),
    ("infer", infer_(input="{d}/nan.npy"),
     "{d}/nan.npy: 300 non-finite value(s) (NaN or infinity) in 100 pixel(s)"),
    ("infer", infer_(input="{d}/inf.npy"), "{d}/inf.npy: 3 non-finite value(s)"),
    ("infer", infer_(input="{d}/f255.npy"), "float values range from 200 to 200"),
    ("infer", infer_(input="{d}/complex.npy"), "dtype complex64 are not images"),
    ("infer", infer_(prompt_input="{d}/nan.npy"), "{d}/nan.npy: 300 non-finite value(s)"),
    ("infer", infer_(prompt_input="{d}/missing.png"), "image not found: {d}/missing.png"),
    ("infer", infer_(prompt_target="{d}/empty"), "expected an image file, got a directory"),
    ("infer", infer_(prompt_target="{d}/notes.txt"), "cannot read image {d}/notes.txt"),
    ("infer", infer_(prompt_target=None), "give both --prompt-input and --prompt-target"),
    ("infer", infer_(prompt_input=None, prompt_target=None), "this model needs a prompt"),
    ("infer", infer_("--task", "depth_estimation", prompt_input=None, prompt_target=None),
     "task 'depth_estimation' is defined by a teacher model's outputs"),
    ("infer", infer_("--task", "gaussian_denoising"), "give one prompt source, not"),
    ("infer", infer_("--ensemble", "3"), "--severity, --prompt-seed and --ensemble go with --task"),
    ("infer", infer_(prompt_target="{d}/other_size.png"), "a prompt pair must have one size"),
    # -- infer: outputs, checked before the model is loaded ------------------------------------
    ("infer", infer_(output="{d}/in.png"), "is the input file"),
    ("infer", infer_(output="{d}/blocker/out.png"), "{d}/blocker is a file, not a folder"),
    ("infer", infer_("--grid", "{d}/blocker/g.png"), "{d}/blocker is a file, not a folder"),
    ("infer", infer_(input="{d}/images", output="{d}/blocker"),
     "so --output must be one too, not the file {d}/blocker"),
    ("infer", infer_(input="{d}/images", output="{d}/blocker/sub"),
     "{d}/blocker is a file, not a folder"),
    # -- infer: config and weights -------------------------------------------------------------
    ("infer", infer_(**checkpoint("{d}/missing_ckpt")), "checkpoint not found"),
    ("infer", infer_(**checkpoint("{d}/empty")), "is neither an orbax params checkpoint"),
    ("infer", infer_(config="{d}/missing.py"), "config file not found: {d}/missing.py"),
    ("infer", infer_(config="{d}/notes.txt"), "is not a Python file"),
    ("infer", infer_(config="{d}/empty"), "config {d}/empty is a folder"),
    ("infer", infer_("--config.model.no_such_field=1"), "unknown config field"),
    # -- evaluate ------------------------------------------------------------------------------
    ("evaluate", evaluate_(tasks="dehazing"),
     "none of the requested tasks can be evaluated (dehazing: paired_dataset task"),
    ("evaluate", evaluate_(tasks="dehazing,lowlight_enhancement"), "lowlight_enhancement: "),
    ("evaluate", evaluate_("--crop", "5000"), "--crop must be between 1 and 1024 px, got 5000"),
    ("evaluate", evaluate_("--crop", "0"), "--crop must be between 1 and 1024 px, got 0"),
    ("evaluate", evaluate_(num_images="0"), "--num-images must be at least 1, got 0"),
    ("evaluate", evaluate_(num_prompts="0"), "--num-prompts must be at least 1, got 0"),
    ("evaluate", evaluate_("--batch-size", "0"), "--batch-size must be at least 1, got 0"),
    ("evaluate", evaluate_(tasks="no_such_task"), "unknown task"),
    ("evaluate", evaluate_(tasks=","), "select no task"),
    ("evaluate", evaluate_(output="{d}/report.md"), "give the JSON report's path"),
    ("evaluate", evaluate_(output="{d}/blocker/r.json"), "{d}/blocker is a file, not a folder"),
    ("evaluate", evaluate_(output="{d}/empty"), "--output {d}/empty is a folder"),
    ("evaluate", evaluate_(source="folder:{d}/missing"), "image folder not found"),
    ("evaluate", evaluate_(source="s3:bucket"), "unknown image source 's3:bucket'"),
    ("evaluate", evaluate_(tasks="dehazing", paired="dehazing={d}/images"),
     "must be 'INPUT_DIR|TARGET_DIR'"),
    ("evaluate", evaluate_(tasks="dehazing", paired="dehazing={d}/missing|{d}/images"),
     "{d}/missing"),
    ("evaluate", evaluate_("--lpips-weights", "{d}/missing.pth"), "LPIPS weights not found"),
    ("evaluate", evaluate_("--lpips-weights", "{d}/empty"), "a directory"),
    ("evaluate", evaluate_("--lpips-weights", "{d}/notes.txt", "--crop", "16"),
     "LPIPS needs crops of at least 31 px"),
    ("evaluate", evaluate_(**checkpoint("{d}/missing_ckpt")), "checkpoint not found"),
    ("evaluate", evaluate_(config="{d}/notes.txt"), "is not a Python file"),
    ("evaluate", evaluate_("--seed", "-1"), "--seed must be at least 0, got -1"),
    # -- convert -------------------------------------------------------------------------------
    ("convert", [], "the following arguments are required: command"),
    ("convert", ["torch-to-jax", "--config", TINY, "--input", "{d}/missing.pth", "--output",
                 "{d}/p"], "checkpoint not found: {d}/missing.pth"),
    ("convert", ["torch-to-jax", "--config", TINY, "--input", "{d}/empty", "--output", "{d}/p"],
     "--input {d}/empty is a folder"),
    ("convert", ["torch-to-jax", "--config", TINY, "--input", "{d}/weights.pth",
                 "--output", "{d}/notes.txt"], "is a file; torch-to-jax writes"),
    ("convert", ["torch-to-jax", "--config", TINY, "--input", "{d}/weights.pth",
                 "--output", "{d}/photos"], "writing there would delete them"),
    ("convert", ["torch-to-jax", "--config", TINY, "--input", "{d}/weights.pth",
                 "--output", "{d}/blocker/p"], "{d}/blocker is a file, not a folder"),
    ("convert", ["jax-to-torch", "--config", TINY, "--input", "{d}/empty", "--output",
                 "{d}/x.pth"], "is neither an orbax params checkpoint, a training workdir"),
    ("convert", ["jax-to-torch", "--config", TINY, "--input", "{d}/missing", "--output",
                 "{d}/x.pth"], "checkpoint not found: {d}/missing"),
    ("convert", ["jax-to-torch", "--config", TINY, "--input", "{d}/params", "--output",
                 "{d}/x.npz"], "output must end in .pth, .pt or .safetensors"),
    ("convert", ["jax-to-torch", "--config", TINY, "--input", "{d}/params", "--output",
                 "{d}/blocker/x.pth"], "{d}/blocker is a file, not a folder"),
    ("convert", ["jax-to-torch", "--config", "{d}/notes.txt", "--input", "{d}/params",
                 "--output", "{d}/x.pth"], "is not a Python file"),
    # -- summary -------------------------------------------------------------------------------
    ("summary", ["--config", "{d}/missing.py"], "config file not found"),
    ("summary", ["--config", "{d}/notes.txt"], "is not a Python file"),
    ("summary", ["--config", TINY, "--config.model.dim=wide"], "cannot set model.dim='wide'"),
    ("summary", ["--config", TINY, "--config.nope=1"], "unknown config field 'nope'"),
    ("summary", ["--config", TINY, "--frobnicate"], "unrecognised arguments: --frobnicate"),
    # -- tasks ---------------------------------------------------------------------------------
    ("tasks", ["list", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ("tasks", ["show", "no_such_task", "--output", "{d}/s.png"], "unknown task"),
    ("tasks", ["show", "dehazing", "--output", "{d}/s.png"], "only procedural tasks"),
    ("tasks", ["show", "canny", "--output", "{d}/s.xyz"], "unknown image extension"),
    ("tasks", ["show", "canny", "--output", "{d}/blocker/s.png"], "cannot create output"),
    ("tasks", ["sample", "canny", "--output", "{d}/s", "--size", "8"], "--size must be at least"),
    ("tasks", ["sample", "canny", "--output", "{d}/s", "--format", "gif"],
     "argument --format: invalid choice: 'gif'"),
    ("tasks", ["sample", "canny", "--output", "{d}/blocker"], "cannot create output directory"),
    ("tasks", ["sample", "dehazing", "--output", "{d}/s"], "only procedural tasks"),
    ("tasks", ["frobnicate"], "invalid choice: 'frobnicate'"),
    ("tasks", ["sample", "canny", "--output", "{d}/s", "--seed", "-1"],
     "--seed must be at least 0, got -1"),
    ("tasks", ["show", "canny", "--output", "{d}/s.png", "--seed", "-1"],
     "--seed must be at least 0, got -1"),
    ("tasks", ["sample", "canny", "--output", "{d}/s", "--size", "100000"],
     "--size must be at most 4096"),
    # -- tasks list --config: the data fields of a run ----------------------------------------
    ("tasks", ["list", "--config.data.tasks=all"], "config overrides go with `list --config"),
    ("tasks", ["list", "--config", TINY, "--config.data.tasks=no_such_task"], "unknown task"),
    ("tasks", ["list", "--config", TINY, "--config.data.task_sources=ct"],
     "data.task_sources entry 'ct' must be KEY=SOURCE"),
    ("tasks", ["list", "--config", TINY, "--config.data.task_sources=moon=folder:{d}/images"],
     "'moon' is neither a task nor a domain"),
    ("tasks", ["list", "--config", TINY, "--config.data.task_sources=ct=s3:bucket"],
     "ct='s3:bucket' is not an image source"),
    ("tasks", ["list", "--config", TINY, "--config.data.task_sources=dehazing=folder:{d}/images"],
     "dehazing is a paired_dataset task"),
    ("tasks", ["list", "--config", TINY, "--config.data.paired_root={d}/missing"],
     "data.paired_root {d}/missing is not a folder"),
    ("tasks", ["list", "--config", TINY, "--config.data.paired=dehazing={d}/images"],
     "must be 'INPUT_DIR|TARGET_DIR'"),
    # -- finetune: argument-level mistakes (no model needed to find them) -------------------------
    ("finetune", finetune_(pairs_input="{d}/missing"), "pairs folder not found: {d}/missing"),
    ("finetune", finetune_(pairs_target="{d}/blocker"), "pairs folder not found: {d}/blocker"),
    ("finetune", finetune_(pairs_target="{d}/pairs_other"), "{d}/pairs_other"),
    ("finetune", finetune_("--holdout", "0"), "--holdout must be at least 1"),
    ("finetune", finetune_("--strategy", "everything"), "invalid choice: 'everything'"),
    ("finetune", finetune_(config="{d}/notes.txt"), "is not a Python file"),
    ("finetune", finetune_(**checkpoint("{d}/missing_ckpt")), "checkpoint not found"),
    ("finetune", finetune_("--steps", "0"), "--steps must be at least 1"),
    ("finetune", finetune_("--batch-size", "0"), "--batch-size"),
    ("finetune", finetune_("--eval-every", "0"), "--eval-every"),
    ("finetune", finetune_("--lr", "-1"), "--lr must be positive"),
    ("finetune", finetune_("--crop", "0"), "--crop must be at least 8 px"),
    ("finetune", finetune_("--seed", "-1"), "--seed must be >= 0"),
    ("finetune", finetune_("--patience", "0"), "--patience must be at least 1"),
    ("finetune", finetune_(workdir="{d}/blocker"), "{d}/blocker"),
]


def _ids():
  counts: dict[str, int] = {}
  ids = []
  for case in CASES:
    command = (case.values if hasattr(case, "values") else case)[0]
    counts[command] = counts.get(command, 0) + 1
    ids.append(f"{command}-{counts[command]}")
  return ids


@pytest.mark.parametrize("command, argv, message", CASES, ids=_ids())
def test_a_mistake_is_one_error_line_exit_2_and_no_work(folder, capsys, monkeypatch, command,
                                                        argv, message):
  loaded = []

  def load_model(*args, **kwargs):
    loaded.append(args)
    raise AssertionError("genlv_jax.api.load_model was called: the mistake got past the checks")

  def work(*args, **kwargs):
    raise AssertionError("the command's work started: the mistake got past the checks")

  monkeypatch.setattr(genlv_jax.api, "load_model", load_model)
  monkeypatch.setattr(checkpointing, "torch_to_params_dir", work)
  monkeypatch.setattr(checkpointing, "params_dir_to_torch", work)
  monkeypatch.setattr(finetuning, "finetune", work)
  monkeypatch.setattr(summary, "summarize", work)
  monkeypatch.setattr(model_summary, "summarize", work)
  d = str(folder)
  argv = [a.replace("{d}", d) for a in argv]
  try:
    status = MAINS[command](argv)
  except SystemExit as e:
    status = e.code
  err = capsys.readouterr().err
  assert not loaded, "genlv_jax.api.load_model was called"
  assert "Traceback" not in err, err[-3000:]
  errors = [line for line in err.splitlines() if line.startswith("error:")]
  assert status == 2, err[-3000:]
  assert len(errors) == 1, err[-3000:]
  assert message.replace("{d}", d) in errors[0]
  # Nothing was written where the command was told to write (a checked output folder may
  # have been made, empty).
  for name in ("out", "o", "report", "ft", "s", "p", "x.pth", "g.png", "s.png"):
    path = os.path.join(d, name)
    written = [os.path.join(root, f) for root, _, files in os.walk(path) for f in files]
    assert not (os.path.isfile(path) or written), (path, written)
  assert (folder / "photos" / "holiday.jpg").read_bytes() == b"precious"


def test_the_sweep_is_broad():
  """At least 30 rows, and every command is in the sweep."""
  commands = [(c.values if hasattr(c, "values") else c)[0] for c in CASES]
  assert len(commands) >= 30 and set(commands) == set(MAINS)
