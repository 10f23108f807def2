"""benchmarks/sharding_comms.py on the tiny model: pure data parallelism moves exactly the
gradients (a ring all-reduce of every parameter) and no activations."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def test_data_parallel_step_all_reduces_the_gradients_and_moves_no_activation():
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
  env.pop("XLA_FLAGS", None)
  out = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "sharding_comms.py"),
                        "--config", os.path.join(REPO, "configs", "tiny.py"), "--devices", "4",
                        "--mesh", "data=4,fsdp=1", "--image-size", "32", "--json"],
                       env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["mesh"] == {"data": 4, "fsdp": 1}
  collectives = result["collectives"]
  # A ring all-reduce sends 2 (n - 1) / n of the float32 gradients per device; XLA combines
  # them with a few other reductions into two all-reduces (1.7 % more bytes here).
  gradients_mb = 2 * 3 / 4 * 4 * result["params"] / 1e6
  assert 1 <= collectives["all-reduce"]["mb_per_device"] / gradients_mb < 1.02, collectives
  # The batch is the only sharded array: nothing else may move (the prompt pair on the batch
  # axis and the windows' patch extraction used to gather activations).
  for kind in ("all-gather", "reduce-scatter", "all-to-all", "collective-permute"):
    assert collectives[kind]["count"] == 0, (kind, collectives)
  prediction = result["predicted"]["TPU v4 (ICI)"]
  assert prediction["comm_ms"] > 0 and prediction["compute_ms"] > 0
  assert 0 < prediction["comm_share"] < 1
