"""`python -m genlv_jax.finetune`: few-shot adaptation with the strategies of the large paper's
Fig. 12 — the held-out loss falls, and only the strategy's parameters move."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import jax
import numpy as np
import pytest

import genlv_jax
from conftest import config_path, user_error
from genlv_jax import api, finetune
from genlv_jax.config_io import load_config
from genlv_jax.data import image_io
from genlv_jax.data.image_sources import procedural_image
from genlv_jax.models import build_model
from genlv_jax.training import checkpointing
from genlv_jax.training import finetune as finetuning

TINY = config_path("tiny")
BACKBONE = {"patch_embed", "encoder_level1", "encoder_level2", "encoder_level3", "down1_2",
            "down2_3", "down3_4", "latent_blocks", "up4_3", "reduce_chan_level3", "decoder_level3",
            "up3_2", "reduce_chan_level2", "decoder_level2", "up2_1", "decoder_level1",
            "refinement", "output"}


@pytest.fixture(scope="module")
def abstract():
  config = load_config(TINY)
  return api.abstract_params(build_model(config), config)


@pytest.mark.parametrize("strategy, trained", [
    ("prompt_encoder", {"prompt_encoder"}),
    ("prompt_and_latent", {"prompt_encoder", "latent_blocks"}),
    ("prompt_latent_input", {"prompt_encoder", "latent_blocks", "patch_embed", "encoder_level1",
                             "encoder_level2", "encoder_level3", "down1_2", "down2_3",
                             "down3_4"}),
    ("full", BACKBONE | {"prompt_encoder"}),
    ("full_backbone", BACKBONE),
])
def test_strategies_select_the_parts_of_fig_12(abstract, strategy, trained):
  labels = finetuning.trainable_labels(abstract, strategy)
  assert set(labels) == set(abstract)  # a label for every top-level part, nothing else
  assert {k for k, v in labels.items() if v == "trainable"} == trained


def test_strategy_errors(abstract):
  with pytest.raises(ValueError, match="unknown strategy"):
    finetuning.trainable_labels(abstract, "everything")
  no_prompt = {k: v for k, v in abstract.items() if k != "prompt_encoder"}
  with pytest.raises(ValueError, match="prompt encoder"):
    finetuning.trainable_labels(no_prompt, "prompt_and_latent")


def _pairs(root, n: int):
  """A task the model never saw: lower contrast around mid-grey (target = 0.5·x + 0.25)."""
  for i in range(n):
    clean = procedural_image(i, 80)
    image_io.write_image(root / "in" / f"{i:02d}.png", clean)
    image_io.write_image(root / "out" / f"{i:02d}.jpg", 0.5 * clean + 0.25)  # stems match


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """Random-init tiny GenLV saved as a checkpoint, then fine-tuned with the default strategy by
  the real command line. The train step's compile dominates this file: the subprocess builds
  it at XLA's lowest backend optimisation level (half the compile time on CPU, the same
  numbers up to rounding), sharing the suite's persistent compilation cache."""
  root = tmp_path_factory.mktemp("finetune")
  _pairs(root, 5)
  start = genlv_jax.load_model(TINY)
  checkpointing.save_params(root / "start", start.params)
  env = dict(os.environ, XLA_FLAGS="--xla_backend_optimization_level=0", JAX_PLATFORMS="cpu",
             JAX_COMPILATION_CACHE_DIR=os.path.join(tempfile.gettempdir(),
                                                    "genlv_jax_test_xla_cache"))
  result = subprocess.run([
      sys.executable, "-m", "genlv_jax.finetune", "--config", TINY, "--checkpoint",
      str(root / "start"), "--pairs-input", str(root / "in"), "--pairs-target", str(root / "out"),
      "--workdir", str(root / "ft"), "--steps", "12", "--eval-every", "4", "--lr", "1e-3",
      "--batch-size", "2", "--holdout", "1"], env=env, capture_output=True, text=True,
      timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "held-out L1" in result.stdout and "Traceback" not in result.stderr
  with open(root / "ft" / finetuning.LOG_NAME) as f:
    log = json.load(f)
  return root, start, log


def test_finetune_lowers_the_heldout_loss(run):
  _, _, log = run
  losses = [e["heldout_l1"] for e in log["evaluations"]]
  assert [e["step"] for e in log["evaluations"]] == [0, 4, 8, 12]
  assert log["initial_heldout_l1"] == losses[0]
  assert log["best_heldout_l1"] == min(losses) < 0.8 * losses[0]
  assert log["heldout_pairs"] == ["02.png"] and len(log["train_pairs"]) == 4
  assert log["strategy"] == "full_backbone"
  assert 0 < log["trainable_params"] < log["total_params"]


def test_only_the_strategys_parameters_change_and_the_checkpoint_loads(run):
  root, start, log = run
  # `--checkpoint WORKDIR` and `--checkpoint WORKDIR/best` both name the result.
  assert checkpointing.resolve_checkpoint(str(root / "ft")).path == log["checkpoint"]
  tuned = genlv_jax.load_model(TINY, checkpoint=log["checkpoint"])  # what infer/evaluate do
  changed = set()
  for key in start.params:
    before = jax.tree.leaves(start.params[key])
    after = jax.tree.leaves(tuned.params[key])
    if key == "prompt_encoder":  # frozen: bit for bit
      assert all(np.asarray(a).tobytes() == np.asarray(b).tobytes()
                 for a, b in zip(before, after))
    elif any(not np.array_equal(a, b) for a, b in zip(before, after)):
      changed.add(key)
  assert changed == BACKBONE  # every trainable part moved


@pytest.mark.parametrize("setup, args, message", [
    ("none", [], "pairs folder not found"),
    ("two", [], "need at least 3"),
    ("five", ["--holdout", "0"], "--holdout must be at least 1"),
    ("five", ["--checkpoint", "/no/such/ckpt"], "checkpoint not found"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, setup, args, message):
  if setup != "none":
    _pairs(tmp_path, {"two": 2, "five": 5}[setup])
  argv = ["--config", TINY, "--pairs-input", str(tmp_path / "in"), "--pairs-target",
          str(tmp_path / "out"), "--workdir", str(tmp_path / "ft")] + args
  if "--checkpoint" not in args:
    argv.append("--random-init")
  assert message in user_error(capsys, finetune.main, argv)
  assert not (tmp_path / "ft" / "best").exists()
