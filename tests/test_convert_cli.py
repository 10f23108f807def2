"""`python -m genlv_jax.convert`: lossless round trips, and one clear line for bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the bridge is an extra: `pip install genlv-jax[bridge]`

# pylint: disable=wrong-import-position
from bridge_testutil import perturb_state_dict
from genlv_jax.bridge import build_torch_model, read_torch_file
from genlv_jax.config_io import load_config
from genlv_jax.convert import main
from genlv_jax.training import checkpointing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "configs", "tiny.py")


def _cli(*args):
  """Runs the real entry point in a subprocess (import path, exit status, stderr as users see)."""
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.run([sys.executable, "-m", "genlv_jax.convert", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tiny_pth(tmp_path_factory):
  torch.manual_seed(0)
  state_dict = perturb_state_dict(build_torch_model(TINY).state_dict())
  path = str(tmp_path_factory.mktemp("cli") / "tiny.pth")
  torch.save({"params_ema": {"module." + k: v for k, v in state_dict.items()}}, path)
  return path, {k: v.numpy() for k, v in state_dict.items()}


def test_torch_to_jax_to_torch_round_trip_is_exact(tmp_path, tiny_pth):
  path, state_dict = tiny_pth
  params_dir, out = str(tmp_path / "params"), str(tmp_path / "back.safetensors")
  first = _cli("torch-to-jax", "--config", TINY, "--input", path, "--output", params_dir)
  assert first.returncode == 0, first.stderr
  assert checkpointing.is_params_checkpoint(params_dir)
  second = _cli("jax-to-torch", "--config", TINY, "--input", params_dir, "--output", out)
  assert second.returncode == 0, second.stderr
  back = read_torch_file(out)
  assert back.keys() == state_dict.keys()
  assert all(np.array_equal(back[k], v) for k, v in state_dict.items())


def test_jax_to_torch_writes_pth_too(tmp_path, tiny_pth):
  path, state_dict = tiny_pth
  params_dir, out = str(tmp_path / "params"), str(tmp_path / "back.pth")
  assert main(["torch-to-jax", "--config", TINY, "--input", path, "--output", params_dir]) == 0
  assert main(["jax-to-torch", "--config", TINY, "--input", params_dir, "--output", out]) == 0
  # What the authors' inference.py reads: torch.load(...)['model'], load_state_dict(strict=True).
  saved = torch.load(out, weights_only=True)
  assert saved.keys() == {"model"}
  build_torch_model(TINY).load_state_dict(saved["model"], strict=True)
  back = read_torch_file(out)
  assert all(np.array_equal(back[k], v) for k, v in state_dict.items())


def test_config_overrides_select_the_prompt_encoder_width(tmp_path, capsys):
  wide = load_config(TINY, ["model.prompt_encoder_width=8"])
  path = str(tmp_path / "wide.pth")
  torch.save({"model": build_torch_model(wide).state_dict()}, path)
  args = ["torch-to-jax", "--config", TINY, "--input", path, "--output", str(tmp_path / "p")]
  err = _first_error_line(capsys, args)
  assert err == ["error: the checkpoint's prompt encoder has width 8, the config's 4: add "
                 "--config.model.prompt_encoder_width=8"]
  assert main(args + ["--config.model.prompt_encoder_width=8"]) == 0
  assert checkpointing.is_params_checkpoint(str(tmp_path / "p"))


def test_bad_input_exits_nonzero_with_one_line_and_no_traceback(tmp_path):
  result = _cli("torch-to-jax", "--config", TINY, "--input", str(tmp_path / "nope.pth"),
                "--output", str(tmp_path / "out"))
  assert result.returncode == 2
  assert result.stderr.splitlines()[0] == f"error: checkpoint not found: {tmp_path / 'nope.pth'}"
  assert "Traceback" not in result.stderr


class _CreatesFileWhenUnpickled:
  def __init__(self, marker):
    self.marker = str(marker)

  def __reduce__(self):
    return (open, (self.marker, "w"))


def _first_error_line(capsys, argv):
  """A user mistake: exit status 2, `error: ` first (then, for a mismatch, the key list)."""
  with pytest.raises(SystemExit) as exit_info:
    main(argv)
  err = capsys.readouterr().err.splitlines()
  assert exit_info.value.code == 2 and err and err[0].startswith("error: ")
  return err


def test_user_errors_print_one_clear_line(tmp_path, capsys, tiny_pth):
  out = str(tmp_path / "out")
  # A malicious pickle: refused, nothing run.
  marker, evil = tmp_path / "pwned", str(tmp_path / "evil.pth")
  torch.save({"params": _CreatesFileWhenUnpickled(marker)}, evil)
  err = _first_error_line(capsys, ["torch-to-jax", "--config", TINY, "--input", evil,
                                   "--output", out])
  assert "refused" in err[0] and len(err) == 1 and not marker.exists()
  # A checkpoint of another config: the summary, then every offending key.
  err = _first_error_line(capsys, ["torch-to-jax", "--config", "configs/xrestormer.py",
                                   "--input", tiny_pth[0], "--output", out])
  assert "does not match the config" in err[0] and len(err) > 100
  assert any(line.strip().startswith("missing: ") for line in err[1:])
  assert any(line.strip().startswith("shape mismatch: ") for line in err[1:])
  # Not an orbax directory, a missing config, a bad output extension.
  err = _first_error_line(capsys, ["jax-to-torch", "--config", TINY, "--input", str(tmp_path),
                                   "--output", str(tmp_path / "x.pth")])
  assert "is neither an orbax params checkpoint, a training workdir" in err[0]
  err = _first_error_line(capsys, ["torch-to-jax", "--config", "configs/nope.py",
                                   "--input", tiny_pth[0], "--output", out])
  assert "config file not found" in err[0]
  err = _first_error_line(capsys, ["jax-to-torch", "--config", TINY, "--input", str(tmp_path),
                                   "--output", str(tmp_path / "x.npz")])
  assert ".safetensors" in err[0]


def _not_reached(*args, **kwargs):
  pytest.fail("the conversion started although its output cannot be written")


def test_outputs_are_checked_and_their_folders_made_before_any_conversion(
    tmp_path, capsys, monkeypatch, tiny_pth):
  path, state_dict = tiny_pth
  params_dir = str(tmp_path / "params")
  assert main(["torch-to-jax", "--config", TINY, "--input", path, "--output", params_dir]) == 0
  # Missing parent folders are made, for both directions.
  deep_params = tmp_path / "new" / "deeper" / "params"
  assert main(["torch-to-jax", "--config", TINY, "--input", path,
               "--output", str(deep_params)]) == 0
  assert checkpointing.is_params_checkpoint(str(deep_params))
  out = tmp_path / "no" / "such" / "folder" / "x.safetensors"
  assert main(["jax-to-torch", "--config", TINY, "--input", params_dir, "--output", str(out)]) == 0
  back = read_torch_file(str(out))
  assert all(np.array_equal(back[k], v) for k, v in state_dict.items())
  capsys.readouterr()
  # Locations that cannot be written are refused before anything is read or converted.
  monkeypatch.setattr(checkpointing, "torch_to_params_dir", _not_reached)
  monkeypatch.setattr(checkpointing, "params_dir_to_torch", _not_reached)
  blocker = tmp_path / "a_file"
  blocker.write_text("in the way")
  err = _first_error_line(capsys, ["jax-to-torch", "--config", TINY, "--input", params_dir,
                                   "--output", str(blocker / "x.pth")])
  assert err == [f"error: cannot write --output {blocker / 'x.pth'}: {blocker} is a file, not "
                 "a folder"]
  err = _first_error_line(capsys, ["jax-to-torch", "--config", TINY, "--input", params_dir,
                                   "--output", str(tmp_path) + os.sep])
  assert len(err) == 1 and ".safetensors" in err[0]
  (tmp_path / "dir.pth").mkdir()
  err = _first_error_line(capsys, ["jax-to-torch", "--config", TINY, "--input", params_dir,
                                   "--output", str(tmp_path / "dir.pth")])
  assert err == [f"error: --output {tmp_path / 'dir.pth'} is a folder; give a file name"]
  err = _first_error_line(capsys, ["torch-to-jax", "--config", TINY, "--input", path,
                                   "--output", str(blocker / "params")])
  assert len(err) == 1 and "is a file, not a folder" in err[0]
  err = _first_error_line(capsys, ["torch-to-jax", "--config", TINY, "--input", path,
                                   "--output", str(blocker)])
  assert err == [f"error: --output {blocker} is a file; torch-to-jax writes an orbax params "
                 "folder"]


def test_torch_to_jax_never_replaces_a_folder_of_other_files(tmp_path, capsys, tiny_pth):
  """orbax's overwrite deletes the whole output folder: a folder that is not a params checkpoint
  (photos, a workdir) is refused and kept as it was; an empty one or an old checkpoint is
  written."""
  path, _ = tiny_pth
  photos = tmp_path / "photos"
  photos.mkdir()
  (photos / "holiday.jpg").write_bytes(b"precious")
  err = _first_error_line(capsys, ["torch-to-jax", "--config", TINY, "--input", path,
                                   "--output", str(photos)])
  assert len(err) == 1 and "would delete them" in err[0]
  assert (photos / "holiday.jpg").read_bytes() == b"precious"
  (tmp_path / "empty").mkdir()
  for _ in range(2):  # into an empty folder, then over the checkpoint written there
    assert main(["torch-to-jax", "--config", TINY, "--input", path,
                 "--output", str(tmp_path / "empty")]) == 0
  assert checkpointing.is_params_checkpoint(str(tmp_path / "empty"))
