"""Every command-line tool draws one line between the user's mistakes and our bugs.

A user mistake (`genlv_jax.errors.UserError`: a missing file, an unknown config field, a bad
argument) prints exactly one `error: …` line on stderr, no traceback, and exits with status 2.
Anything else — a plain `ValueError` from jax, orbax, grain or our own internals included — is a
bug and keeps its traceback: it is never turned into `error:` / exit 2.

Both sides are shown for each CLI: infer, evaluate, finetune, convert, summary and tasks
in-process (`main(argv)`), train and demo (absl apps) as users run them, in a subprocess. No
model is built or compiled here: every internal error is injected before any model work.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import genlv_jax.api
from conftest import REPO, config_path, user_error
from genlv_jax import cli, convert, evaluate, evaluation, finetune, infer, summary
from genlv_jax.errors import PathNotFoundError, UserError
from genlv_jax.tasks import registry
from genlv_jax.training import checkpointing
from genlv_jax.training import finetune as finetuning

TINY = config_path("tiny")
MISSING_CONFIG = os.path.join(REPO, "configs", "no_such_config.py")

# `python -m genlv_jax.tasks` runs `genlv_jax.tasks.__main__`: the CLI itself, or a thin
# wrapper around `genlv_jax.tasks.cli`.
_tasks_entry = importlib.import_module("genlv_jax.tasks.__main__")
tasks_cli = getattr(_tasks_entry, "cli", _tasks_entry)


def internal(*args, **kwargs):
  """Stands for a bug deep inside a library: a plain ValueError, not a UserError."""
  raise ValueError("internal")


def not_reached(*args, **kwargs):
  pytest.fail("a user mistake got past the checks (the model or the conversion was started)")


def assert_internal_error_propagates(capsys, main, argv) -> None:
  """`main(argv)` lets the injected `ValueError("internal")` out as it is: not a UserError, no
  SystemExit, no `error:` line."""
  with pytest.raises(ValueError, match="^internal$") as info:
    main(list(argv))
  assert type(info.value) is ValueError  # pylint: disable=unidiomatic-typecheck
  assert not isinstance(info.value, UserError)
  assert "error:" not in capsys.readouterr().err


def _image(path, size=16) -> str:
  Image.fromarray(np.full((size, size, 3), 128, np.uint8)).save(path)
  return str(path)


# ---- the shared plumbing -----------------------------------------------------------------------

@pytest.mark.parametrize("error", [UserError("bad value\nsecond line"),
                                   PathNotFoundError("file not found: x.png")])
def test_a_user_error_is_its_first_line_and_exit_2(capsys, error):
  def main(argv):
    raise error
  with pytest.raises(SystemExit) as exit_info:
    cli.user_errors_exit(main)([])
  assert exit_info.value.code == cli.EXIT_USER_ERROR == 2
  assert capsys.readouterr().err == f"error: {str(error).splitlines()[0]}\n"


@pytest.mark.parametrize("error", [ValueError("internal"), FileNotFoundError("internal"),
                                   KeyError("internal")])
def test_any_other_exception_passes_through_the_wrapper(capsys, error):
  """Built-in types a UserError shares (ValueError, FileNotFoundError) are not user errors."""
  def main(argv):
    raise error
  with pytest.raises(type(error)) as info:
    cli.user_errors_exit(main)([])
  assert info.value is error
  assert capsys.readouterr().err == ""


# ---- infer -------------------------------------------------------------------------------------

@pytest.fixture
def infer_argv(tmp_path):
  """A complete, valid `infer` command line on tiny 16x16 files (random-init weights)."""
  return ["--config", TINY, "--random-init",
          "--prompt-input", _image(tmp_path / "p_in.png"),
          "--prompt-target", _image(tmp_path / "p_out.png"),
          "--input", _image(tmp_path / "in.png"), "--output", str(tmp_path / "out.png")]


@pytest.mark.parametrize("extra, message", [
    (["--config.model.no_such_field=1"], "unknown config field 'model.no_such_field'"),
    (["--frobnicate"], "unrecognised arguments: --frobnicate"),
    (["--overlap", "lots"], "argument --overlap: invalid int value: 'lots'"),
    (["--checkpoint", "ckpt"], "argument --checkpoint: not allowed with argument --random-init"),
])
def test_infer_user_mistakes_are_one_line_and_exit_2(infer_argv, capsys, monkeypatch, extra,
                                                     message):
  monkeypatch.setattr(infer.api, "load_model", not_reached)
  assert message in user_error(capsys, infer.main, infer_argv + extra)


def test_infer_missing_config_file_is_one_line_and_exit_2(infer_argv, capsys, monkeypatch):
  monkeypatch.setattr(infer.api, "load_model", not_reached)
  argv = [MISSING_CONFIG if a == TINY else a for a in infer_argv]
  assert f"config file not found: {MISSING_CONFIG}" in user_error(capsys, infer.main, argv)


def test_infer_internal_error_keeps_its_traceback(infer_argv, capsys, monkeypatch):
  monkeypatch.setattr(infer.api, "load_model", internal)
  assert_internal_error_propagates(capsys, infer.main, infer_argv)
  assert not os.path.exists(infer_argv[-1])


# ---- evaluate ----------------------------------------------------------------------------------

@pytest.fixture
def evaluate_argv(tmp_path):
  return ["--config", TINY, "--random-init", "--tasks", "canny", "--num-images", "1",
          "--num-prompts", "1", "--output", str(tmp_path / "r.json")]


@pytest.mark.parametrize("extra, message", [
    (["--num-images", "many"], "argument --num-images: invalid int value: 'many'"),
    (["--config.batch_size=big"], "cannot set batch_size='big': expected int"),
    (["--config.nope.deeper=1"], "unknown config field 'nope.deeper'"),
    (["extra_positional"], "unrecognised arguments: extra_positional"),
])
def test_evaluate_user_mistakes_are_one_line_and_exit_2(evaluate_argv, capsys, monkeypatch,
                                                        extra, message):
  monkeypatch.setattr(evaluate.api, "load_model", not_reached)
  assert message in user_error(capsys, evaluate.main, evaluate_argv + extra)


def test_evaluate_config_argument_the_config_does_not_take_is_one_line(evaluate_argv, capsys,
                                                                      monkeypatch):
  """`configs/tiny.py` has `get_config()` without an argument: `tiny.py:sr` is a user's typo."""
  monkeypatch.setattr(evaluate.api, "load_model", not_reached)
  argv = [f"{TINY}:sr" if a == TINY else a for a in evaluate_argv]
  assert "tiny.py" in user_error(capsys, evaluate.main, argv)


def test_evaluate_internal_error_keeps_its_traceback(evaluate_argv, capsys, monkeypatch):
  """A ValueError from inside the evaluation library (after a model loaded) is not a user's."""
  monkeypatch.setattr(evaluate.api, "load_model", lambda *a, **k: object())
  monkeypatch.setattr(evaluation.evaluator, "run_evaluation", internal)
  assert_internal_error_propagates(capsys, evaluate.main, evaluate_argv)
  assert not os.path.exists(evaluate_argv[-1])


# ---- finetune ----------------------------------------------------------------------------------

@pytest.fixture
def finetune_argv(tmp_path):
  """Three matching pairs (one held out, two to train): enough for `FewShotPairs`."""
  for folder in ("in", "out"):
    (tmp_path / folder).mkdir()
    for i in range(3):
      _image(tmp_path / folder / f"{i}.png")
  return ["--config", TINY, "--random-init", "--pairs-input", str(tmp_path / "in"),
          "--pairs-target", str(tmp_path / "out"), "--workdir", str(tmp_path / "ft")]


@pytest.mark.parametrize("extra, message", [
    (["--strategy", "everything"], "argument --strategy: invalid choice: 'everything'"),
    (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["--config.optimizer.no_such_field=1"], "unknown config field 'optimizer.no_such_field'"),
])
def test_finetune_user_mistakes_are_one_line_and_exit_2(finetune_argv, capsys, monkeypatch,
                                                        extra, message):
  monkeypatch.setattr(genlv_jax.api, "load_model", not_reached)
  assert message in user_error(capsys, finetune.main, finetune_argv + extra)


def test_finetune_without_workdir_is_one_line_and_exit_2(finetune_argv, capsys, monkeypatch):
  monkeypatch.setattr(genlv_jax.api, "load_model", not_reached)
  argv = finetune_argv[:-2]
  assert "the following arguments are required: --workdir" in user_error(capsys, finetune.main,
                                                                          argv)


def test_finetune_internal_error_keeps_its_traceback(finetune_argv, capsys, monkeypatch):
  monkeypatch.setattr(genlv_jax.api, "load_model", internal)
  monkeypatch.setattr(finetuning, "finetune", not_reached)
  assert_internal_error_propagates(capsys, finetune.main, finetune_argv)
  # The workdir was checked (created) before any work; nothing was written into it.
  assert not os.listdir(finetune_argv[-1])


# ---- convert -----------------------------------------------------------------------------------

@pytest.fixture
def convert_argv(tmp_path):
  """torch-to-jax of a file that exists (its content is never read here)."""
  source = tmp_path / "weights.pth"
  source.write_bytes(b"never read")
  return ["torch-to-jax", "--config", TINY, "--input", str(source),
          "--output", str(tmp_path / "params")]


@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: command"),
    (["jax-to-onnx"], "invalid choice: 'jax-to-onnx'"),
    (["torch-to-jax", "--config", TINY], "the following arguments are required: --input"),
])
def test_convert_bad_command_lines_are_one_line_and_exit_2(capsys, monkeypatch, argv, message):
  monkeypatch.setattr(checkpointing, "torch_to_params_dir", not_reached)
  monkeypatch.setattr(checkpointing, "params_dir_to_torch", not_reached)
  assert message in user_error(capsys, convert.main, argv)


@pytest.mark.parametrize("extra, message", [
    (["--config.model.no_such_field=1"], "unknown config field 'model.no_such_field'"),
    (["--config.model.dim=wide"], "cannot set model.dim='wide': expected int"),
    (["--frobnicate"], "unrecognised arguments: --frobnicate"),
])
def test_convert_user_mistakes_are_one_line_and_exit_2(convert_argv, capsys, monkeypatch, extra,
                                                       message):
  monkeypatch.setattr(checkpointing, "torch_to_params_dir", not_reached)
  assert message in user_error(capsys, convert.main, convert_argv + extra)


def test_convert_internal_error_keeps_its_traceback(convert_argv, capsys, monkeypatch):
  monkeypatch.setattr(checkpointing, "torch_to_params_dir", internal)
  assert_internal_error_propagates(capsys, convert.main, convert_argv)


# ---- summary -----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: --config"),
    (["--config", TINY, "--frobnicate"], "unrecognised arguments: --frobnicate"),
    (["--config", TINY, "--config.model.heads=(1,x)"], "cannot set model.heads='(1,x)'"),
    (["--config", MISSING_CONFIG], "config file not found"),
])
def test_summary_user_mistakes_are_one_line_and_exit_2(capsys, monkeypatch, argv, message):
  monkeypatch.setattr(summary, "summarize", not_reached)
  assert message in user_error(capsys, summary.main, argv)


def test_summary_override_of_a_whole_config_group_is_one_line(capsys, monkeypatch):
  """`--config.model=3` names a group of fields, not a value: a user's mistake."""
  monkeypatch.setattr(summary, "summarize", not_reached)
  assert "model" in user_error(capsys, summary.main, ["--config", TINY, "--config.model=3"])


def test_summary_internal_error_keeps_its_traceback(capsys, monkeypatch):
  monkeypatch.setattr(summary, "summarize", internal)
  assert_internal_error_propagates(capsys, summary.main, ["--config", TINY, "--json"])


# ---- tasks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["list", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["sample", "canny", "--output", "DIR", "--size", "8"], "--size must be at least 16, got 8"),
    (["show", "canny", "--output", "sheet.png", "--seed", "abc"],
     "argument --seed: invalid int value: 'abc'"),
    (["show", "--output", "sheet.png"], "the following arguments are required: task"),
])
def test_tasks_user_mistakes_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
  """`genlv_jax.tasks`' `main` returns the status (2) instead of exiting."""
  argv = [str(tmp_path / a) if a in ("DIR", "sheet.png") else a for a in argv]
  assert tasks_cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
  assert message in err
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize("function, argv", [
    ("all_tasks", ["list"]),
    ("get_task", ["show", "canny", "--output", "sheet.png"]),
])
def test_tasks_internal_error_keeps_its_traceback(tmp_path, capsys, monkeypatch, function, argv):
  """A ValueError inside the registry is not an unknown task (only its KeyError is)."""
  monkeypatch.setattr(registry, function, internal)
  argv = [str(tmp_path / a) if a == "sheet.png" else a for a in argv]
  assert_internal_error_propagates(capsys, tasks_cli.main, argv)


# ---- train and demo (absl apps, run as users run them) -----------------------------------------

# Patches the trainer before the entry point is imported (so that `from … import
# train_and_evaluate` sees the patch too), then runs the entry point as its `__main__` does.
ABSL_WITH_INTERNAL_ERROR = """
import importlib, sys
from absl import app
from genlv_jax import cli
from genlv_jax.training import trainer

def internal(*args, **kwargs):
  raise ValueError("internal")

trainer.train_and_evaluate = internal
entry = importlib.import_module(sys.argv[1])
sys.argv = sys.argv[1:]
app.run(entry.main, flags_parser=cli.absl_flags_parser)
"""

ABSL_APPS = ("genlv_jax.train", "genlv_jax.demo")


def _env() -> dict:
  env = {k: v for k, v in os.environ.items()
         if k not in ("SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS")}
  env.update(JAX_PLATFORMS="cpu", GENLV_HOST_TUNING="0",
             PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return env


def _run(*command: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, *command], cwd=REPO, env=_env(), capture_output=True,
                        text=True, timeout=120, check=False)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
  """A user mistake as a user sees it: status 2, one `error:` line, no traceback (absl and XLA
  may log other lines on stderr)."""
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, result.stderr[-3000:]
  return errors[0]


@pytest.mark.parametrize("module", ABSL_APPS)
def test_absl_app_unknown_config_field_is_one_line_and_exit_2(module, tmp_path):
  line = _one_error_line(_run("-m", module, "--config", TINY, "--workdir", str(tmp_path / "w"),
                              "--config.no_such_field=1"))
  assert "no_such_field" in line
  assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("module", ABSL_APPS)
def test_absl_app_without_workdir_is_one_line_and_exit_2(module):
  assert "--workdir" in _one_error_line(_run("-m", module, "--config", TINY))


def test_train_missing_config_file_is_one_line_and_exit_2(tmp_path):
  line = _one_error_line(_run("-m", "genlv_jax.train", "--config", MISSING_CONFIG,
                              "--workdir", str(tmp_path / "w")))
  assert "no_such_config.py" in line
  assert not (tmp_path / "w").exists()


def test_demo_config_file_with_a_syntax_error_is_one_line_and_exit_2(tmp_path):
  """The argparse CLIs report a broken config file in one line (`cannot load config`)."""
  broken = tmp_path / "broken.py"
  broken.write_text("def get_config(:\n")
  line = _one_error_line(_run("-m", "genlv_jax.demo", "--config", str(broken),
                              "--workdir", str(tmp_path / "w")))
  assert "broken.py" in line


@pytest.mark.parametrize("module", ABSL_APPS)
def test_absl_app_internal_error_keeps_its_traceback(module, tmp_path):
  result = _run("-c", ABSL_WITH_INTERNAL_ERROR, module, "--config", TINY,
                "--workdir", str(tmp_path / "w"))
  assert result.returncode not in (0, 2), result.stderr[-3000:]
  assert "Traceback" in result.stderr and "ValueError: internal" in result.stderr
  assert not any(line.startswith("error: ") for line in result.stderr.splitlines())
