"""`python -m genlv_jax.finetune`: few-shot adaptation with the strategies of the large paper's
Fig. 12 — the held-out loss falls, and only the strategy's parameters move; a Ctrl-C keeps best/
and the log consistent and the same command resumes to the uninterrupted result; unusable pairs
are skipped by name, never replaced by another pair."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import genlv_jax
from conftest import config_path, user_error
from genlv_jax import api, finetune, host_tuning
from genlv_jax.config_io import load_config
from genlv_jax.data import image_io
from genlv_jax.data.image_sources import decode_rgb, procedural_image
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


# Run by `python -c`: the real command line, with a real SIGINT sent at the start of one step.
INTERRUPTED_RUN = """
import os, signal, sys
from genlv_jax.training import finetune as finetuning
train_batch = finetuning.FewShotPairs.train_batch
def interrupting(self, seed, step, batch_size):
  if step == int(os.environ["INTERRUPT_AT_STEP"]):
    os.kill(os.getpid(), signal.SIGINT)
  return train_batch(self, seed, step, batch_size)
finetuning.FewShotPairs.train_batch = interrupting
from genlv_jax import finetune
sys.exit(finetune.main(sys.argv[1:]))
"""


def _finetune_process(root, workdir: str, interrupt_at: int = 0) -> subprocess.CompletedProcess:
  """The command line on the pairs of `root`, from `root/start`, 12 steps, evaluated every 4.
  It builds the train step at XLA's lowest backend optimisation level (half the compile time on
  CPU, the same numbers up to rounding), sharing the suite's persistent compilation cache; every
  run gets the same environment (the CPU settings the entry point would re-exec with), so runs
  compare bit for bit."""
  env = host_tuning.tuned_environment(dict(
      os.environ, XLA_FLAGS="--xla_backend_optimization_level=0", JAX_PLATFORMS="cpu",
      JAX_COMPILATION_CACHE_DIR=os.path.join(tempfile.gettempdir(), "genlv_jax_test_xla_cache"),
      INTERRUPT_AT_STEP=str(interrupt_at)))
  launcher = ["-c", INTERRUPTED_RUN] if interrupt_at else ["-m", "genlv_jax.finetune"]
  return subprocess.run([sys.executable, *launcher, *_argv(root, workdir)], env=env,
                        capture_output=True, text=True, timeout=600)


def _argv(root, workdir: str, *extra: str) -> list[str]:
  return ["--config", TINY, "--checkpoint", str(root / "start"), "--pairs-input",
          str(root / "in"), "--pairs-target", str(root / "out"), "--workdir",
          str(root / workdir), "--steps", "12", "--eval-every", "4", "--lr", "1e-3",
          "--batch-size", "2", "--holdout", "1", *extra]


def _read_log(workdir) -> dict:
  with open(workdir / finetuning.LOG_NAME) as f:
    return json.load(f)


def _same_tree(a, b) -> bool:
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(leaves_a) == len(leaves_b) and all(
      np.asarray(x).tobytes() == np.asarray(y).tobytes() for x, y in zip(leaves_a, leaves_b))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """Random-init tiny GenLV saved as a checkpoint, then fine-tuned with the default strategy by
  the real command line, uninterrupted. The train step's compile dominates this file."""
  root = tmp_path_factory.mktemp("finetune")
  _pairs(root, 5)
  start = genlv_jax.load_model(TINY)
  checkpointing.save_params(root / "start", start.params)
  result = _finetune_process(root, "ft")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "held-out L1" in result.stdout and "Traceback" not in result.stderr
  return root, start, _read_log(root / "ft")


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
    ("three_one_unreadable", [], "2 usable pair(s) matched"),
    ("five", ["--holdout", "0"], "--holdout must be at least 1"),
    ("five", ["--checkpoint", "/no/such/ckpt"], "checkpoint not found"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, setup, args, message):
  if setup != "none":
    _pairs(tmp_path, {"two": 2, "five": 5, "three_one_unreadable": 3}[setup])
  if setup == "three_one_unreadable":
    _truncate(tmp_path / "in" / "01.png")
  argv = ["--config", TINY, "--pairs-input", str(tmp_path / "in"), "--pairs-target",
          str(tmp_path / "out"), "--workdir", str(tmp_path / "ft")] + args
  if "--checkpoint" not in args:
    argv.append("--random-init")
  assert message in user_error(capsys, finetune.main, argv)
  assert not (tmp_path / "ft" / "best").exists()


# ---- Ctrl-C and resuming -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def interrupted(run):
  """The run of `run` sent SIGINT at the start of step 6 (after the evaluation at step 4), then
  the same command again."""
  root, _, _ = run
  result = _finetune_process(root, "ft_interrupted", interrupt_at=6)
  at_interrupt = _read_log(root / "ft_interrupted")
  best_at_interrupt = genlv_jax.load_model(TINY, checkpoint=at_interrupt["checkpoint"]).params
  state = ocp.StandardCheckpointer().restore(
      str(root / "ft_interrupted" / finetuning.STATE_NAME / "train_state"))
  resumed = _finetune_process(root, "ft_interrupted")
  return root, result, at_interrupt, best_at_interrupt, state, resumed


def test_ctrl_c_leaves_best_and_log_consistent_and_says_how_to_resume(run, interrupted):
  root, start, uninterrupted = run
  _, result, log, best, state, _ = interrupted
  assert result.returncode == 130, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert log["evaluations"] == uninterrupted["evaluations"][:2]  # steps 0 and 4, the same
  best_step = log["best_step"]
  assert best_step == min((e["heldout_l1"], e["step"]) for e in log["evaluations"])[1]
  assert last == (f"interrupted at step 6: {root / 'ft_interrupted' / 'best'} holds the params "
                  f"of step {best_step} (held-out L1 {log['best_heldout_l1']:.5f}); rerun the "
                  "same command to resume from step 4")
  # best/ holds what the log names: the params of step 4 (kept in state/) or the initial ones.
  assert int(state["step"]) == 4 and not log["finished"]
  assert _same_tree(best, state["params"] if best_step == 4 else start.params)


def test_the_same_command_resumes_to_the_uninterrupted_result_bit_for_bit(run, interrupted):
  root, _, uninterrupted = run
  _, _, _, _, _, resumed = interrupted
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert resumed.stdout.startswith("resumed from step 4: held-out L1")
  log = _read_log(root / "ft_interrupted")
  assert log.pop("resumed_from") == [4] and log["finished"]
  assert log["checkpoint"] == str(root / "ft_interrupted" / "best")
  # Everything else as in the uninterrupted run, floats bit for bit (JSON keeps every digit).
  differ = {k for k in set(log) | set(uninterrupted) if log.get(k) != uninterrupted.get(k)}
  assert differ == {"checkpoint"}
  tuned = genlv_jax.load_model(TINY, checkpoint=str(root / "ft"))
  resumed_best = genlv_jax.load_model(TINY, checkpoint=str(root / "ft_interrupted"))
  assert _same_tree(tuned.params, resumed_best.params)
  # Nothing is left to resume from, nor half-written.
  assert sorted(os.listdir(root / "ft_interrupted")) == ["best", finetuning.LOG_NAME]


def test_a_finished_run_says_so_and_other_arguments_are_refused(run, capsys):
  root, _, _ = run
  log_file = root / "ft" / finetuning.LOG_NAME
  before = log_file.read_bytes()
  assert finetune.main(_argv(root, "ft")) == 0
  assert capsys.readouterr().out.startswith("already finished: held-out L1")
  message = user_error(capsys, finetune.main, _argv(root, "ft", "--lr", "1e-2",
                                                   "--strategy", "full"))
  assert "holds another fine-tuning run" in message
  assert "--strategy full_backbone there, full here" in message
  assert "--lr 0.001 there, 0.01 here" in message
  assert log_file.read_bytes() == before


def test_a_signal_during_the_writes_waits_for_them_and_a_second_aborts():
  # What was installed before (SIG_IGN when the test runner is a background job).
  before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
  with finetuning._InterruptGuard() as guard:  # pylint: disable=protected-access
    written = []
    with pytest.raises(KeyboardInterrupt):
      with guard.saving():
        os.kill(os.getpid(), signal.SIGINT)
        written.append("best")  # still written: the interrupt waits for the block's end
    assert written == ["best"] and not guard.torn
    with pytest.raises(KeyboardInterrupt):
      with guard.saving():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        written.append("never")
    assert written == ["best"] and guard.torn
    with pytest.raises(KeyboardInterrupt) as stop:  # SIGTERM (a scheduler) stops it the same way
      os.kill(os.getpid(), signal.SIGTERM)
    assert stop.value.signum == signal.SIGTERM
  # The handlers are given back.
  assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_kill_between_the_renames_of_a_save_leaves_the_previous_version(tmp_path):
  path = str(tmp_path / "best")
  os.makedirs(path)
  (tmp_path / "best" / "v").write_text("1")
  new = tmp_path / ".best.new"
  new.mkdir()
  (new / "v").write_text("2")
  os.rename(path, str(tmp_path / ".best.old"))  # what `_replace_dir` does first; then a kill
  finetuning._recover_dir(path)  # pylint: disable=protected-access
  assert (tmp_path / "best" / "v").read_text() == "1"
  assert sorted(os.listdir(tmp_path)) == ["best"]
  new.mkdir()
  (new / "v").write_text("2")
  finetuning._replace_dir(str(new), path)  # pylint: disable=protected-access
  assert (tmp_path / "best" / "v").read_text() == "2" and sorted(os.listdir(tmp_path)) == ["best"]


# ---- which pairs are used ----------------------------------------------------------------------

def _truncate(path) -> None:
  path.write_bytes(path.read_bytes()[:60])  # the header opens; the pixels cannot be decoded


def test_unusable_pairs_are_skipped_by_name_never_replaced(tmp_path, caplog):
  _pairs(tmp_path, 7)
  _truncate(tmp_path / "in" / "03.png")  # decodes no more: the pair that would be held out
  image_io.write_image(tmp_path / "in" / "05.png", procedural_image(5, 80)[:60])  # 80x60
  _truncate(tmp_path / "out" / "06.jpg")  # not even an image file
  with caplog.at_level(logging.WARNING):
    data = finetuning.FewShotPairs(str(tmp_path / "in"), str(tmp_path / "out"), 1, 32)
  assert data.names == ["00.png", "01.png", "02.png", "04.png"]
  assert [s["input"] for s in data.skipped] == ["03.png", "05.png", "06.png"]
  assert data.skipped[0]["reason"].startswith("unreadable input: ")
  assert "80x60" in data.skipped[1]["reason"] and "80x80" in data.skipped[1]["reason"]
  assert data.skipped[2]["reason"].startswith("unreadable target")
  warnings = [r.getMessage() for r in caplog.records if "03.png" in r.getMessage()]
  assert len(warnings) == 1 and "05.png" in warnings[0] and "06.png" in warnings[0]
  held = [data.names[i] for i in data.heldout]
  assert held == ["02.png"] and not set(held) & {data.names[i] for i in data.train}
  # Every pair in memory is the pair its name says.
  for name, (inp, tgt) in zip(data.names, data.pairs):
    np.testing.assert_array_equal(inp, decode_rgb(str(tmp_path / "in" / name)))
    np.testing.assert_array_equal(tgt, decode_rgb(str(tmp_path / "out" / f"{name[:2]}.jpg")))


def test_pairs_sharing_a_target_are_held_out_together(tmp_path):
  _pairs(tmp_path, 4)  # 00..03; then input 02 becomes two inputs of target 02 (RESIDE naming)
  os.replace(tmp_path / "in" / "02.png", tmp_path / "in" / "02_a.png")
  image_io.write_image(tmp_path / "in" / "02_b.png", procedural_image(9, 80))
  data = finetuning.FewShotPairs(str(tmp_path / "in"), str(tmp_path / "out"), 1, 32)
  assert [data.names[i] for i in data.heldout] == ["02_a.png", "02_b.png"]
  assert [data.names[i] for i in data.train] == ["00.png", "01.png", "03.png"]


def test_each_steps_batch_is_a_function_of_seed_and_step(tmp_path):
  _pairs(tmp_path, 4)
  data = finetuning.FewShotPairs(str(tmp_path / "in"), str(tmp_path / "out"), 1, 32)
  batch = data.train_batch(0, 7, 3)
  assert _same_tree(batch, data.train_batch(0, 7, 3))
  assert not _same_tree(batch, data.train_batch(0, 8, 3))
  assert not _same_tree(batch, data.train_batch(1, 7, 3))
