"""Stopping `python -m genlv_jax.train` by a signal: Ctrl-C (SIGINT) saves the step and exits 130
with one line saying how to resume; SIGTERM (preemption) saves and exits 0; a second Ctrl-C gets
the operating system's default action. Runs are fresh processes with the micro config of
test_train.py (its compiled programs come from the same persistent cache)."""

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import config_path
from test_train import OVERRIDES, STEPS, _env, _last_logged_step, _loss_rows


def _cli_env():
  env = _env(1)
  # No CPU re-exec: its XLA flags would make the programs differ from run_training.py's (cached).
  env["GENLV_HOST_TUNING"] = "0"
  return env


def _command(workdir, *extra):
  return [sys.executable, "-m", "genlv_jax.train", "--config", config_path("tiny"),
          "--workdir", str(workdir), *OVERRIDES, *extra]


@contextlib.contextmanager
def _sigint_not_ignored():
  """A test runner started as a background job has SIGINT ignored, which children inherit, and
  the trainer (like Python) leaves an ignored SIGINT ignored. A handler set here instead goes
  back to the default in the child, as in a terminal."""
  if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
    yield
    return
  signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _signal_after(command, workdir, step, signum, log):
  """Runs `command` until metrics.jsonl has a loss row after `step`, sends `signum`, and returns
  (exit status, stderr)."""
  with open(log, "w") as err:
    with _sigint_not_ignored():
      proc = subprocess.Popen(command, env=_cli_env(), stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and _last_logged_step(workdir) <= step:
      time.sleep(0.02)
    proc.send_signal(signum)
    proc.wait(timeout=300)
  with open(log) as f:
    return proc.returncode, f.read()


def test_ctrl_c_saves_and_says_how_to_resume_and_sigterm_saves_the_resumed_run(tmp_path):
  from genlv_jax.config_io import load_config
  from genlv_jax.training.trainer import read_workdir_config
  workdir = tmp_path / "w"
  command = _command(workdir)
  status, err = _signal_after(command, workdir, 1, signal.SIGINT, tmp_path / "first.log")
  assert status == 130 and "Traceback" not in err, err[-3000:]
  last = err.strip().splitlines()[-1]
  found = re.fullmatch(r"interrupted: saved step (\d+) in (\S+); resume with the same command: "
                       r"(.+)", last)
  assert found, err[-3000:]
  saved = int(found[1])
  assert 2 <= saved < STEPS
  assert found[2] == str(workdir / "checkpoints" / str(saved)) and os.path.isdir(found[2])
  assert shlex.split(found[3]) == ["python", "-m", "genlv_jax.train", *command[3:]]
  # Every step trained was logged (the last ones at the stop) and saved.
  assert [s for s, _ in _loss_rows(workdir)] == list(range(1, saved + 1))
  # The workdir records its config.
  expected = load_config(config_path("tiny"), [o.removeprefix("--config.") for o in OVERRIDES])
  assert read_workdir_config(workdir).to_dict() == expected.to_dict()

  # The same command with another seed resumes there, warning that the data stream changed;
  # SIGTERM then saves and exits 0, as launchers expect.
  status, err = _signal_after([*command, "--config.seed=1"], workdir, saved, signal.SIGTERM,
                              tmp_path / "second.log")
  assert status == 0 and "Traceback" not in err, err[-3000:]
  assert f"resumed from {workdir}/checkpoints/{saved}" in err
  warning = [line for line in err.splitlines() if "differs from its config.json" in line]
  assert len(warning) == 1 and warning[0].endswith("in: seed: 0 -> 1"), err[-3000:]
  stopped = int(re.search(r"SIGTERM: saved step (\d+) in ", err)[1])
  assert saved < stopped and (workdir / "checkpoints" / str(stopped)).is_dir()
  assert [s for s, _ in _loss_rows(workdir)] == list(range(1, stopped + 1))
  assert read_workdir_config(workdir).seed == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_after_a_first_ctrl_c_a_second_one_gets_the_default_action_and_handlers_come_back():
  """The trainer's stop handlers, in this process: the first SIGINT asks for a stop; from then
  on SIGINT has the operating system's default action (a second Ctrl-C ends the process at once,
  even inside XLA); leaving restores the handlers found."""
  from genlv_jax.training import trainer
  if threading.current_thread() is not threading.main_thread():
    pytest.skip("signal handlers can only be set in the main thread")
  with _sigint_not_ignored():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with trainer._StopSignals() as stops:  # pylint: disable=protected-access
      assert stops.requested(0) is None
      assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
      os.kill(os.getpid(), signal.SIGINT)
      deadline = time.time() + 10
      while not stops.received and time.time() < deadline:
        time.sleep(0.01)
      assert stops.requested(0) == signal.SIGINT
      assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
    assert {s: signal.getsignal(s) for s in before} == before
