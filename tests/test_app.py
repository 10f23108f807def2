"""The web app (`python -m genlv_jax.app`): served by a subprocess on a free port with the tiny
config and random weights, and driven through `gradio_client` as the page drives it: a task's
synthesised prompt, an uploaded prompt pair, user mistakes, and outputs checked against
`runner.predict_image` on the same predictor. A model without prompts runs in-process."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, config_path, user_error

gradio_client = pytest.importorskip("gradio_client", reason="the `app` extra is not installed")
from gradio_client import Client, handle_file  # noqa: E402  pylint: disable=wrong-import-position
from gradio_client.exceptions import AppError  # noqa: E402  pylint: disable=wrong-import-position

from genlv_jax import api, app  # noqa: E402  pylint: disable=wrong-import-position
from genlv_jax.inference import prompts, runner  # noqa: E402  pylint: disable=wrong-import-position

TASK = "gaussian_denoising"
START_TIMEOUT_S = 180  # the server imports jax and gradio and builds the model first
# 8-bit PNGs in both directions: the model's output is rounded to 1/255 once.
EIGHT_BIT = 1.0 / 255 + 1e-6


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _write_png(path, image: np.ndarray) -> str:
  Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)
  return str(path)


def _read_png(path) -> np.ndarray:
  return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


def _photo(height: int = 96, width: int = 128) -> np.ndarray:
  """A smooth test picture with some texture, on the 8-bit grid (so reading the PNG back gives
  the array itself)."""
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  image = np.stack([xx / width, yy / height, 0.5 + 0.3 * np.sin(xx / 5 + yy / 9)], -1)
  return np.round(image * 255) / 255


def _quiet_env(tmp) -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu", GRADIO_ANALYTICS_ENABLED="False",
             HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(tmp / "gradio"), TMPDIR=str(tmp / "tmp"))
  # The XLA compilation cache the rest of the suite fills (conftest.py).
  import jax  # pylint: disable=import-outside-toplevel
  env["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "1"
  env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
  os.makedirs(env["TMPDIR"], exist_ok=True)
  return env


def _wait_until_serving(url: str, process: subprocess.Popen, log_path) -> None:
  deadline = time.monotonic() + START_TIMEOUT_S
  while time.monotonic() < deadline:
    if process.poll() is not None:
      with open(log_path, encoding="utf-8") as f:
        pytest.fail(f"the app exited with {process.returncode}:\n{f.read()[-3000:]}")
    with contextlib.suppress(OSError):
      with urllib.request.urlopen(url, timeout=2) as response:
        if response.status == 200:
          return
    time.sleep(0.5)
  pytest.fail(f"the app did not serve {url} within {START_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
  """(client, predictor, server process): the app in a subprocess, and the same tiny
  random-init model in this process (built while the server starts). At the end the server is
  stopped with SIGTERM: it must exit with status 0 and remove its results folder."""
  tmp = tmp_path_factory.mktemp("app")
  port = _free_port()
  url = f"http://127.0.0.1:{port}/"
  log_path = tmp / "server.log"
  with open(log_path, "w", encoding="utf-8") as log:
    process = subprocess.Popen(
        [sys.executable, "-m", "genlv_jax.app", "--config", config_path("tiny"), "--random-init",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=_quiet_env(tmp), stdout=log, stderr=subprocess.STDOUT)
  try:
    predictor = api.load_model(config_path("tiny"))
    _wait_until_serving(url, process, log_path)
    with pytest.MonkeyPatch.context() as patch:
      # gradio_client reports usage unless this is off (its own flag falls back to it).
      patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
      client = Client(url, verbose=False, analytics_enabled=False,
                      download_files=str(tmp / "downloads"))
      yield client, predictor, process
  finally:
    process.send_signal(signal.SIGTERM)
    try:
      status = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
      process.kill()
      status = process.wait()
  assert status == 0, log_path.read_text()[-3000:]
  assert not [n for n in os.listdir(tmp / "tmp") if n.startswith("genlv_app_")]


def _run(client, image_path, *, mode=app.TASK_MODE, task=TASK, severity=0.5, seed=0,
         source=None, target=None, tile=256, overlap=64):
  return client.predict(image_path and handle_file(image_path), mode, task, severity, seed,
                        source and handle_file(source), target and handle_file(target), tile,
                        overlap, api_name="/run")


def test_task_prompt_gives_the_predict_image_output_and_shows_the_pair(served, tmp_path):
  client, predictor, _ = served
  photo = _photo()
  image_path = _write_png(tmp_path / "photo.png", photo)
  (shown_input, output), download, shown_source, shown_target, summary = _run(
      client, image_path, severity=0.3, seed=2)
  result = _read_png(output)
  assert result.shape == photo.shape
  np.testing.assert_array_equal(_read_png(download), result)
  np.testing.assert_array_equal(_read_png(shown_input), photo)
  assert os.path.basename(download) == "photo_genlv.png"
  assert "128x96" in summary
  # The pair shown is the synthesised one, and the output is predict_image's under it.
  source, target = prompts.synthesize_prompt(TASK, 0.3, 2)
  assert np.abs(_read_png(shown_source) - source).max() <= EIGHT_BIT
  assert np.abs(_read_png(shown_target) - target).max() <= EIGHT_BIT
  expected = runner.predict_image(predictor, photo, source, target, tile=256, overlap=64)
  assert np.abs(result - np.clip(expected, 0, 1)).max() <= EIGHT_BIT
  # The preview endpoint the task, severity and seed fields call shows the same pair.
  preview_source, _ = client.predict(TASK, 0.3, 2, api_name="/prompt")
  np.testing.assert_array_equal(_read_png(preview_source), _read_png(shown_source))


def test_uploaded_prompt_pair_runs_in_tiles_like_predict_image(served, tmp_path):
  client, predictor, _ = served
  photo = _photo()
  prompt_photo = _photo(80, 80)[:, ::-1]
  source_path = _write_png(tmp_path / "before.png", prompt_photo)
  target_path = _write_png(tmp_path / "after.png", 1.0 - prompt_photo)
  (_, output), _, _, _, summary = _run(
      client, _write_png(tmp_path / "photo.png", photo), mode=app.UPLOAD_MODE,
      source=source_path, target=target_path, tile=64, overlap=16)
  assert "64 px tiles" in summary
  result = _read_png(output)
  expected = runner.predict_image(predictor, photo, prompt_photo, 1.0 - prompt_photo, tile=64,
                                  overlap=16)
  assert result.shape == photo.shape
  assert np.abs(result - np.clip(expected, 0, 1)).max() <= EIGHT_BIT


def test_user_mistakes_are_messages_and_the_server_goes_on(served, tmp_path):
  client, _, process = served
  image_path = _write_png(tmp_path / "photo.png", _photo(64, 64))
  small = _write_png(tmp_path / "small.png", _photo(32, 48))
  mistakes = {
      "one size": dict(mode=app.UPLOAD_MODE, source=image_path, target=small),
      "upload both images": dict(mode=app.UPLOAD_MODE, source=image_path),
      "cannot be synthesised": dict(task="dehazing"),
      "unknown task": dict(task="gausian_denoising"),
      "multiple of 64": dict(tile=100),
      "must be in [0, tile": dict(tile=64, overlap=64),
      "upload an input image": dict(image_path=None),
  }
  for expected, kwargs in mistakes.items():
    with pytest.raises(AppError, match=expected.replace("[", r"\[")):
      _run(client, **{"image_path": image_path, **kwargs})
  with pytest.raises(AppError, match="greater than maximum"):  # the slider checks it
    client.predict(TASK, 1.5, 0, api_name="/prompt")
  assert process.poll() is None
  source, _ = client.predict(TASK, 0.5, 0, api_name="/prompt")
  assert _read_png(source).shape == (256, 256, 3)


class _Negative:
  """A stand-in predictor without prompts: 1 - x, whatever the size."""

  def __init__(self, config):
    self.config = config

  def __call__(self, images, prompt_source=None, prompt_target=None):
    assert prompt_source is None and prompt_target is None
    return 1.0 - images


def test_a_model_without_prompts_has_no_prompt_inputs(tmp_path, monkeypatch):
  monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
  monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
  config = api.config_for(config_path("tiny"), None, ["--config.model.use_prompt=False"])
  store = app.ResultStore(str(tmp_path / "results"))
  blocks = app.build_app(config, _Negative(config), store=store)
  port = _free_port()
  blocks.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                        share=False, ssr_mode=False, quiet=True)
  try:
    client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False,
                    download_files=str(tmp_path / "downloads"))
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/run"}
    assert len(endpoints["/run"]["parameters"]) == 3  # image, tile, overlap
    photo = _photo(40, 72)
    (_, output), _, _ = client.predict(handle_file(_write_png(tmp_path / "p.png", photo)), 0, 0,
                                       api_name="/run")
    assert np.abs(_read_png(output) - (1.0 - photo)).max() <= EIGHT_BIT
  finally:
    blocks.close()
    store.close()


@pytest.mark.parametrize("argv, expected", [
    (["--port", "0"], "--port must be between"),
    (["--tile", "100"], "multiple of 64"),
    (["--host"], "expected one argument"),
])
def test_bad_command_lines_are_one_line_errors(capsys, argv, expected):
  err = user_error(capsys, app.main, ["--config", config_path("tiny"), "--random-init", *argv])
  assert expected in err


def test_predict_image_reports_each_tile_to_the_progress_bar():
  config = api.config_for(config_path("tiny"), None, ["--config.model.use_prompt=False"])
  calls = []
  runner.predict_image(_Negative(config), _photo(96, 128), None, None, tile=64, overlap=16,
                       progress=lambda done, total: calls.append((done, total)))
  assert calls == [(k, 6) for k in range(1, 7)]  # 2 rows x 3 columns of 64 px tiles
  calls.clear()
  runner.predict_image(_Negative(config), _photo(64, 64), None, None, tile=64, overlap=16,
                       progress=lambda done, total: calls.append((done, total)))
  assert not calls  # one tile: whole, no bar
