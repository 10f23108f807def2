"""Training: sharded == single device, multi-process == single process, killed-and-resumed ==
uninterrupted, non-finite steps skipped. Each run is a fresh process (XLA_FLAGS and
jax.distributed are per process); compiled programs are shared through a persistent cache."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import config_path

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 10
# A micro GenLV and two fast tasks: the point is the training machinery, not the model.
OVERRIDES = [
    "--config.model.num_blocks=(1,1,1,1)", "--config.batch_size=8", "--config.image_size=64",
    f"--config.total_steps={STEPS}", "--config.log_every=1", "--config.eval_every=0",
    "--config.checkpoint_every=100", "--config.optimizer.warmup_steps=2",
    "--config.optimizer.learning_rate=0.001", "--config.data.tasks=gaussian_denoising,jpeg_restoration",
    "--config.sharding_min_size=0", "--config.perf.count_flops=false",
]
CACHE = os.path.join(tempfile.gettempdir(), "genlv_jax_test_xla_cache")


def _env(devices=1):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  env["JAX_COMPILATION_CACHE_DIR"] = CACHE
  env["PYTHONPATH"] = os.path.dirname(HERE) + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _command(out, workdir, *extra):
  return [sys.executable, os.path.join(HERE, "run_training.py"), str(out), config_path("tiny"),
          str(workdir), *OVERRIDES, *extra]


def _train(tmp, name, devices=1, extra=()):
  out = tmp / f"{name}.json"
  result = subprocess.run(_command(out, tmp / name, *extra), env=_env(devices),
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(out.read_text()), dict(np.load(str(out) + ".npz"))


PEAK = 0.38  # TFLOP/s per device: the perf rows' MFU on a CPU, which has no published peak


@pytest.fixture(scope="module")
def single(tmp_path_factory):
  return _train(tmp_path_factory.mktemp("single"), "single",
                extra=["--config.perf.count_flops=true", f"--config.perf.peak_tflops={PEAK}"])


@pytest.fixture(scope="module")
def data2(tmp_path_factory):
  """Data parallelism on two devices of one process: the reference of two processes with one
  device each (a sum of two gradients is the same in either order)."""
  return _train(tmp_path_factory.mktemp("data2"), "data2", devices=2,
                extra=["--config.mesh.data=2", "--config.mesh.fsdp=1"])


def _assert_same_losses(a, b, rtol=1e-4):
  assert sorted(a) == sorted(b) == [str(s) for s in range(1, STEPS + 1)] or len(a) == STEPS
  for step in a:
    assert abs(a[step] - b[step]) <= rtol * abs(a[step]), (step, a[step], b[step])


def test_data_parallel_and_fsdp_give_the_single_device_losses(single, data2, tmp_path):
  data2 = data2[0]
  fsdp, _ = _train(tmp_path, "fsdp", devices=8, extra=["--config.mesh.data=2", "--config.mesh.fsdp=4"])
  assert single[0]["devices"] == 1 and data2["devices"] == 2
  _assert_same_losses(single[0]["losses"], data2["losses"])
  _assert_same_losses(single[0]["losses"], fsdp["losses"])
  # With fsdp=4 the big kernels are split four ways along their output channels.
  key = "['latent_blocks']['block_0']['channel_ffn']['project_in']['kernel']"
  assert fsdp["specs"][key] == ["None", "fsdp"]
  assert fsdp["shard_shapes"][key][1] * 4 == single[0]["shard_shapes"][key][1]
  split_opt = [k for k, spec in fsdp["opt_specs"].items() if "fsdp" in spec]
  assert any("mu" in k for k in split_opt) and any("nu" in k for k in split_opt)
  assert all(spec == [] or set(spec) == {"None"} for spec in data2["specs"].values())


def test_metrics_hold_perf_rows_memory_and_a_final_goodput_line(single):
  from genlv_jax.config_io import load_config
  from genlv_jax.models import abstract_params, build_model
  from genlv_jax.training import perf
  with open(os.path.join(single[0]["workdir"], "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  train = [r for r in rows if "train/loss" in r]
  assert [r["step"] for r in train] == list(range(1, STEPS + 1))
  config = load_config(config_path("tiny"), [o.removeprefix("--config.") for o in OVERRIDES])
  flops = perf.train_step_flops(config, config.batch_size)
  for r in train:
    step_time = r["perf/step_time_s"]
    assert step_time > 0 and 0 <= r["perf/data_wait_fraction"] <= 1
    assert r["perf/images_per_s_per_device"] == pytest.approx(config.batch_size / step_time)
    assert r["perf/tflops_per_device"] == pytest.approx(flops / step_time / 1e12)
    assert r["perf/mfu"] == pytest.approx(r["perf/tflops_per_device"] / PEAK)
  # XLA's memory analysis, in the first row only: the arguments hold the params and Adam's two
  # moments (float32) and the batch (four 64² images of 8).
  model = build_model(config)
  params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(abstract_params(model, config)))
  assert train[0]["perf/memory_arguments_bytes"] >= 3 * 4 * params + 4 * 4 * 8 * 64 * 64 * 3
  assert train[0]["perf/memory_temporaries_bytes"] > 0
  assert not any("perf/memory_arguments_bytes" in r for r in train[1:])
  # The last line: where the run's time went.
  goodput = rows[-1]
  assert goodput["step"] == STEPS and "train/loss" not in goodput
  parts = ["productive_steps", "setup", "compile", "data_wait", "checkpointing", "evaluation"]
  assert sum(goodput[f"goodput/{p}_s"] for p in parts) == pytest.approx(goodput["goodput/total_s"])
  assert goodput["goodput/compile_s"] > 0 and goodput["goodput/checkpointing_s"] > 0
  assert goodput["goodput/fraction"] == pytest.approx(
      goodput["goodput/productive_steps_s"] / goodput["goodput/total_s"])


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start_processes(tmp_path, name, workdir, extra):
  """Two processes of one run on 127.0.0.1, each recording its host synchronisations."""
  port = _free_port()
  return [subprocess.Popen(
      _command(tmp_path / f"{name}{i}.json", workdir, *extra, "--coordinator",
               f"127.0.0.1:{port}", "--num_processes", "2", "--process_id", str(i),
               "--record_host_syncs", str(tmp_path / f"{name}{i}.syncs.json")),
      env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]


def _finish(procs):
  """The stderr of each process, once all have exited 0."""
  errs = [p.communicate(timeout=600)[1] for p in procs]
  for p, err in zip(procs, errs):
    assert p.returncode == 0, err[-3000:]
  return errs


def _assert_no_host_sync_between_checkpoints(syncs_file, allowed, start=0):
  """Every wait for the other processes came at a step in `allowed` (the start, checkpoints, a
  stop), and some did (the instrument sees the checkpoints' barriers). The record counts the
  batches its process took: a run resumed at `start` adds it."""
  calls = [(name, start + taken) for name, taken in json.loads(syncs_file.read_text())]
  stray = [(name, step) for name, step in calls if step not in allowed]
  assert not stray, f"host synchronisation in steps without a checkpoint: {stray[:10]}"
  assert any(step in allowed - {start} for _, step in calls), calls


def test_two_processes_stop_together_on_sigterm_to_one_and_resume_exactly(data2, tmp_path):
  """SIGTERM to the second process of two: both save the same step and exit 0; the restarted
  run ends with the losses and params of an uninterrupted run on two devices; and in no step
  without a checkpoint does either process wait for the other on the host."""
  workdir = tmp_path / "multi"
  every = 4
  extra = [f"--config.checkpoint_every={every}", "--config.keep_checkpoints=10"]
  procs = _start_processes(tmp_path, "stopped", workdir, extra)
  deadline = time.time() + 300
  while all(p.poll() is None for p in procs) and time.time() < deadline and \
      _last_logged_step(workdir) < 2:
    time.sleep(0.02)
  procs[1].send_signal(signal.SIGTERM)
  errs = _finish(procs)
  stopped = [int(re.search(r"preemption notice: saved step (\d+) in ", err)[1]) for err in errs]
  assert stopped[0] == stopped[1] and 2 <= stopped[0] < STEPS, stopped
  saved = stopped[0]
  assert (workdir / "checkpoints" / str(saved)).is_dir()
  checkpoints = set(range(every, STEPS + 1, every)) | {STEPS}
  for i in range(2):
    _assert_no_host_sync_between_checkpoints(tmp_path / f"stopped{i}.syncs.json",
                                             {0, saved} | {c for c in checkpoints if c < saved})

  errs = _finish(_start_processes(tmp_path, "resumed", workdir, extra))
  assert all(f"resumed from {workdir}/checkpoints/{saved}" in err for err in errs)
  result = json.loads((tmp_path / "resumed0.json").read_text())
  assert result["processes"] == 2 and result["devices"] == 2
  rows = _loss_rows(workdir)
  assert [s for s, _ in rows] == list(range(1, STEPS + 1)), rows
  for step, loss in rows:
    assert abs(loss - data2[0]["losses"][str(step)]) <= 1e-6 * abs(loss), (step, loss)
  resumed = dict(np.load(str(tmp_path / "resumed0.json") + ".npz"))
  worst = max(float(np.max(np.abs(resumed[k] - data2[1][k]))) for k in resumed)
  assert worst <= 1e-6, worst
  for i in range(2):
    _assert_no_host_sync_between_checkpoints(
        tmp_path / f"resumed{i}.syncs.json", {saved} | {c for c in checkpoints if c > saved},
        start=saved)


def _loss_rows(workdir):
  """The (step, train/loss) of each training row of WORKDIR/metrics.jsonl, in file order."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [(r["step"], r["train/loss"]) for r in map(json.loads, f) if "train/loss" in r]


def _last_logged_step(workdir):
  """The highest step with a `train/loss` row in metrics.jsonl so far (0 before the first),
  while a run writes it."""
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      lines = f.read().splitlines()
  except FileNotFoundError:
    return 0
  steps = [0]
  for line in lines:
    try:
      record = json.loads(line)
    except ValueError:  # the row being written
      continue
    if "train/loss" in record:
      steps.append(record["step"])
  return max(steps)


def test_killed_and_resumed_run_ends_with_the_uninterrupted_params_and_metrics(single, tmp_path):
  out, workdir = tmp_path / "resumed.json", tmp_path / "resumed"
  command = _command(out, workdir, "--config.checkpoint_every=4", "--config.keep_checkpoints=10")
  proc = subprocess.Popen(command, env=_env(1), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  first = workdir / "checkpoints" / "4"
  # Killed after the checkpoint of step 4 and at least one logged step after it (steps 5-7:
  # the next checkpoint is at 8).
  deadline = time.time() + 300
  while proc.poll() is None and time.time() < deadline and not (
      first.exists() and _last_logged_step(workdir) > 4):
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert first.exists() and proc.returncode == -signal.SIGKILL
  steps = sorted(int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit())
  assert steps and steps[-1] < STEPS
  assert _last_logged_step(workdir) > steps[-1]  # rows of steps the resumed run trains again
  # A save cut short leaves only orbax's temporary directory, which a restart must ignore.
  (workdir / "checkpoints" / f"{STEPS - 1}.orbax-checkpoint-tmp-0").mkdir()
  result = subprocess.run(command, env=_env(1), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  resumed = dict(np.load(str(out) + ".npz"))
  uninterrupted = single[1]
  assert resumed.keys() == uninterrupted.keys()
  worst = max(float(np.max(np.abs(resumed[k] - uninterrupted[k]))) for k in resumed)
  assert worst <= 1e-6, worst
  # Each step's loss once, as the uninterrupted run logged it.
  rows = _loss_rows(workdir)
  assert [s for s, _ in rows] == list(range(1, STEPS + 1)), rows
  for step, loss in rows:
    assert abs(loss - single[0]["losses"][str(step)]) <= 1e-6 * abs(loss), (step, loss)


def test_non_finite_loss_skips_the_update():
  from genlv_jax import api
  from genlv_jax.config_io import load_config
  from genlv_jax.models import build_model
  from genlv_jax.training.train_step import create_train_state, make_optimizer, make_train_step
  config = load_config(config_path("tiny"), [o.removeprefix("--config.") for o in OVERRIDES])
  model, tx = build_model(config), make_optimizer(config)
  params = api.init_params(model, config)
  state = create_train_state(params, tx, use_ema=True)
  image = jnp.full((1, 64, 64, 3), 0.5)
  batch = {"prompt_source": image, "prompt_target": image, "input": image.at[0, 0, 0, 0].set(jnp.nan),
           "target": image}
  new_state, metrics = jax.jit(make_train_step(model, tx, config))(state, batch)
  assert int(metrics["train/nonfinite"]) == 1 and int(new_state.step) == 1
  for a, b in zip(jax.tree.leaves(state.params) + jax.tree.leaves(state.ema_params),
                  jax.tree.leaves(new_state.params) + jax.tree.leaves(new_state.ema_params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_batch_the_mesh_cannot_split_is_refused_before_compiling(tmp_path):
  command = [sys.executable, "-m", "genlv_jax.train", "--config", config_path("tiny"),
             "--workdir", str(tmp_path / "w"), "--config.batch_size=6", "--config.mesh.data=4",
             "--config.mesh.fsdp=2"]
  result = subprocess.run(command, env=_env(8), capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  assert "not divisible" in result.stderr and "Traceback" not in result.stderr


def test_training_leaves_the_signal_handlers_as_it_found_them(single):
  assert single[0]["signal_handlers_kept"]


@pytest.mark.parametrize("override,field", [
    ("image_size=63", "image_size"), ("image_size=0", "image_size"),
    ("batch_size=0", "batch_size"), ("total_steps=-1", "total_steps"),
    ("log_every=0", "log_every"), ("checkpoint_every=0", "checkpoint_every"),
    ("keep_checkpoints=0", "keep_checkpoints"), ("eval_every=-5", "eval_every"),
    ("on_nan=ignore", "on_nan"),
])
def test_config_values_the_loop_cannot_use_are_user_errors(override, field):
  from genlv_jax.config_io import load_config
  from genlv_jax.errors import UserError
  from genlv_jax.training.trainer import check_config
  check_config(load_config(config_path("tiny")))
  with pytest.raises(UserError, match=f"config.{field} must be"):
    check_config(load_config(config_path("tiny"), [override]))


def test_xrestormer_image_size_must_be_a_multiple_of_64():
  from genlv_jax.config_io import load_config
  from genlv_jax.errors import UserError
  from genlv_jax.training.trainer import check_config
  check_config(load_config(config_path("xrestormer"), ["image_size=128"]))
  with pytest.raises(UserError, match="multiple of 64"):
    check_config(load_config(config_path("xrestormer"), ["image_size=96"]))


def test_train_with_an_image_size_the_model_would_pad_is_one_line_and_exit_2(tmp_path):
  command = [sys.executable, "-m", "genlv_jax.train", "--config", config_path("tiny"),
             "--workdir", str(tmp_path / "w"), "--config.image_size=63"]
  result = subprocess.run(command, env=dict(_env(1), GENLV_HOST_TUNING="0"), capture_output=True,
                          text=True, timeout=300)
  errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
  assert len(errors) == 1 and "image_size must be a positive multiple of 32" in errors[0]
  assert not (tmp_path / "w" / "checkpoints").exists()


def test_config_differences_name_what_changes_the_run_not_its_length_or_layout():
  from genlv_jax.config_io import load_config
  from genlv_jax.training.trainer import config_differences
  recorded = load_config(config_path("tiny"))
  same_run = load_config(config_path("tiny"), [
      "total_steps=1000000", "log_every=7", "checkpoint_every=9", "mesh.data=2", "remat=True",
      "data.workers=3", "eval_every=11"])
  assert config_differences(recorded, same_run) == []
  other = load_config(config_path("tiny"), [
      "model.dim=16", "image_size=128", "seed=3", "batch_size=4", "data.tasks=inpainting",
      "optimizer.learning_rate=0.5"])
  assert config_differences(recorded, other) == [
      "batch_size: 2 -> 4", 'data.tasks: "acmmm30" -> "inpainting"', "image_size: 64 -> 128",
      "model.dim: 8 -> 16", "optimizer.learning_rate: 0.0001 -> 0.5", "seed: 0 -> 3"]


def test_read_workdir_config_gives_back_the_config_with_its_tuples(tmp_path):
  from genlv_jax.config_io import load_config
  from genlv_jax.training import trainer
  assert trainer.read_workdir_config(tmp_path) is None
  config = load_config(config_path("tiny"), ["model.num_blocks=(1,1,1,1)", "seed=7"])
  trainer._write_workdir_config(str(tmp_path), config)  # pylint: disable=protected-access
  read = trainer.read_workdir_config(tmp_path)
  assert read.to_dict() == config.to_dict() and read.model.num_blocks == (1, 1, 1, 1)
  assert sorted(os.listdir(tmp_path)) == ["config.json"]


def test_dropping_replayed_rows_keeps_the_earlier_ones_and_a_torn_line_goes(tmp_path):
  from genlv_jax.training import writers
  path = tmp_path / "metrics.jsonl"
  assert writers.drop_rows_after(path, 3) == 0 and not path.exists()
  rows = [{"step": s, "train/loss": 1.0 / s} for s in (1, 2, 3, 3, 4, 5)]
  path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 6, "train/lo')
  assert writers.drop_rows_after(path, 3) == 3
  assert [json.loads(line) for line in path.read_text().splitlines()] == rows[:4]
  assert sorted(os.listdir(tmp_path)) == ["metrics.jsonl"]
  before = path.read_text()
  assert writers.drop_rows_after(path, 3) == 0 and path.read_text() == before


def test_train_console_shows_progress_checkpoints_and_done_and_the_log_file_the_rest(tmp_path):
  workdir, logs = tmp_path / "w", tmp_path / "logs"
  logs.mkdir()
  command = [sys.executable, "-m", "genlv_jax.train", "--config", config_path("tiny"),
             "--workdir", str(workdir), *OVERRIDES, "--config.log_every=5",
             "--config.checkpoint_every=5", f"--log_dir={logs}"]
  result = subprocess.run(command, env=dict(_env(1), GENLV_HOST_TUNING="0"), capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  console = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
  assert len(console) < 25, "\n".join(console)
  assert not any("orbax" in line.lower() for line in console), "\n".join(console)
  assert any(f"config {config_path('tiny')}" in line for line in console)
  assert any("on mesh {'data': 1, 'fsdp': 1}" in line for line in console)
  progress = [line for line in console if f"step 5/{STEPS} (50%)," in line]
  assert len(progress) == 1 and "steps/s, ETA " in progress[0], "\n".join(console)
  for step in (5, STEPS):
    assert any(line.endswith(f"saving checkpoint of step {step} to {workdir}/checkpoints/{step}")
               for line in console), "\n".join(console)
  assert re.search(rf"done: {STEPS} steps in \S+ \(steps 0 -> {STEPS}\), checkpoint at "
                   rf"{re.escape(str(workdir))}/checkpoints/{STEPS}$", console[-2]), console[-2]
  assert re.search(r"goodput \d+%: productive_steps \S+, setup \S+, compile \S+, data_wait "
                   r"\S+, checkpointing \S+, evaluation \S+$", console[-1]), console[-1]
  # Everything, orbax's details included, is in absl's log file.
  (log_file,) = [p for p in logs.iterdir() if ".INFO." in p.name]
  text = log_file.read_text()
  assert "orbax" in text and "done: " in text


SHARDING_PROBE = """
import json, jax
from genlv_jax import api
from genlv_jax.config_io import load_config
from genlv_jax.models import build_model
from genlv_jax.training import sharding
from genlv_jax.training.train_step import create_train_state, make_optimizer
config = load_config(%r, ["mesh.data=2", "mesh.fsdp=4"])
mesh = sharding.create_mesh(config.mesh)
model, tx = build_model(config), make_optimizer(config)
abstract = jax.eval_shape(lambda p: create_train_state(p, tx, True),
                          api.abstract_params(model, config))
shardings = sharding.tree_shardings(abstract, mesh, config.sharding_rules, config.sharding_min_size)
flat = jax.tree_util.tree_flatten_with_path(shardings)[0]
print(json.dumps({jax.tree_util.keystr(k): str(v.spec) for k, v in flat}))
"""


def test_fsdp_rules_split_big_params_and_their_optimizer_moments():
  # The sharding plan of GenLV-Base on a data=2 x fsdp=4 mesh, without running it.
  result = subprocess.run([sys.executable, "-c", SHARDING_PROBE % config_path("base")],
                          env=_env(8), capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  specs = json.loads(result.stdout.strip().splitlines()[-1])
  norm = lambda spec: spec.replace("PartitionSpec", "P")  # noqa: E731  (repr differs by version)
  specs = {k: norm(v) for k, v in specs.items()}
  kernel = "['latent_blocks']['block_0']['channel_attn']['qkv']['kernel']"       # (384, 1152)
  assert specs[".params" + kernel] == "P(None, 'fsdp')"
  assert specs[".ema_params" + kernel] == "P(None, 'fsdp')"
  moments = [k for k in specs if k.startswith(".opt_state") and k.endswith(kernel)]
  assert len(moments) == 2 and all(specs[k] == "P(None, 'fsdp')" for k in moments)
  # 2 * int(2.66 * 384) = 2042 output channels do not split four ways: the input axis does.
  ffn_in = ".params['latent_blocks']['block_0']['spatial_ffn']['project_in']['kernel']"
  assert specs[ffn_in] == "P('fsdp', None)"
  # Small arrays stay replicated.
  assert specs[".params['latent_blocks']['block_0']['norm1']['weight']"] == "P()"
  assert specs[".step"] == "P()"


def test_checkpointer_round_trips_state_and_data_from_a_relative_workdir(tmp_path, monkeypatch):
  from genlv_jax.training.checkpointing import TrainCheckpointer
  monkeypatch.chdir(tmp_path)
  checkpointer = TrainCheckpointer("relative/workdir", every=2, keep=1)
  state = {"w": jnp.arange(6, dtype=jnp.float32).reshape(2, 3), "step": jnp.int32(4)}
  assert not checkpointer.save(3, state, {"next_sample": 24})        # off the interval
  assert checkpointer.save(4, state, {"next_sample": 32})
  checkpointer.wait()
  assert checkpointer.latest_step() == 4
  target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state)
  restored, data = checkpointer.restore(4, target)
  np.testing.assert_array_equal(np.asarray(restored["w"]), np.asarray(state["w"]))
  assert data == {"next_sample": 32}
  checkpointer.close()


def test_demo_report_of_xrestormer_runs_without_prompts(tmp_path):
  """The demo's table and grid for a model without a prompt path (X-Restormer takes the input
  only); GenLV's prompt path is what `make demo` runs."""
  from genlv_jax import api, demo
  from genlv_jax.config_io import load_config
  from genlv_jax.models import build_model
  config = load_config(config_path("xrestormer"), [
      "model.dim=8", "model.num_blocks=(1,1,1,1)", "model.num_refinement_blocks=1",
      "model.heads=(1,1,2,2)", "image_size=64", "eval_images=1", "data.source=builtin",
      "data.tasks=gaussian_denoising,jpeg_restoration"])
  # All-zero weights (no init to compile): X-Restormer's global residual makes it the identity.
  zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype),
                       api.abstract_params(build_model(config), config))
  table = demo.report(config, zeros, str(tmp_path))
  rows = [line.split(" | ") for line in table.splitlines()[2:]]
  assert [r[0] for r in rows] == ["| gaussian_denoising", "| jpeg_restoration"]
  assert all(r[1] == "PSNR (dB)" and r[2] == r[3] and r[4] == "+0.00 |" for r in rows), table
  assert (tmp_path / "demo_grid.png").exists()
