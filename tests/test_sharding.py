"""The device mesh and the partitioning rules: a mesh laid out by `mesh_utils` within a slice
and across slices (processes standing in for slices here), and the rule that moves a sharding
axis which does not divide its dimension (reported, not silent)."""

import json
import os
import socket
import subprocess
import sys

import jax
import pytest
from jax.sharding import PartitionSpec as P

from genlv_jax.config_defaults import SHARDING_RULES, default_config
from genlv_jax.training import sharding

HERE = os.path.dirname(os.path.abspath(__file__))


def _env(devices: int) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = os.path.dirname(HERE) + os.pathsep + env.get("PYTHONPATH", "")
  return env


def test_rules_table_is_the_configs_default():
  assert tuple(default_config().sharding_rules) == SHARDING_RULES == sharding.DEFAULT_RULES


def test_an_axis_that_does_not_divide_moves_and_says_so():
  mesh = jax.sharding.AbstractMesh((2, 4), ("data", "fsdp"))
  moves = []
  # GDFN's project_in of GenLV-Base's bottleneck: 2 * int(2.66 * 384) = 2042 output channels.
  spec = sharding.spec_for((384, 2042), ("embed_in", "embed_out"), mesh, SHARDING_RULES, 0, moves)
  assert spec == P("fsdp", None)
  assert moves == ["fsdp (4) does not divide embed_out=2042 of shape (384, 2042): moves to "
                   "dimension 0"]
  moves = []
  # The 3-channel output conv's kernel: nothing divides by 4 but the 48 input channels.
  assert sharding.spec_for((3, 3, 48, 3), ("conv_height", "conv_width", "conv_in", "conv_out"),
                           mesh, SHARDING_RULES, 0, moves) == P(None, None, "fsdp", None)
  moves = []
  assert sharding.spec_for((3, 3, 3, 3), ("conv_height", "conv_width", "conv_in", "conv_out"),
                           mesh, SHARDING_RULES, 0, moves) == P(None, None, None, None)
  assert moves and moves[0].endswith("stays replicated")
  moves = []
  assert sharding.spec_for((384, 1152), ("embed_in", "embed_out"), mesh, SHARDING_RULES, 0,
                           moves) == P(None, "fsdp") and moves == []


MESH_PROBE = """
import json, sys, jax
from genlv_jax.config_io import load_config
from genlv_jax.training import sharding
config = load_config(sys.argv[1], sys.argv[2:])
try:
  mesh = sharding.create_mesh(config.mesh)
except sharding.ShardingError as e:
  print(json.dumps({"error": str(e)}))
else:
  print(json.dumps({"shape": dict(mesh.shape),
                    "process": [[d.process_index for d in row] for row in mesh.devices],
                    "ids": sorted(d.id for d in mesh.devices.flat)}))
"""


def _probe(devices: int, *overrides: str) -> dict:
  out = subprocess.run([sys.executable, "-c", MESH_PROBE, os.path.join(HERE, "..", "configs",
                                                                       "tiny.py"), *overrides],
                       env=_env(devices), capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_mesh_within_one_slice_uses_every_device_once():
  result = _probe(8, "mesh.data=2", "mesh.fsdp=-1")
  assert result["shape"] == {"data": 2, "fsdp": 4} and result["ids"] == list(range(8))
  result = _probe(8, "mesh.dcn_data=2", "mesh.data=2", "mesh.fsdp=2")
  assert "mesh.dcn_data=2 x mesh.dcn_fsdp=1 needs that many processes" in result["error"]
  result = _probe(8, "mesh.dcn_data=3")
  assert "do not divide the 8 devices" in result["error"]


HYBRID = """
import json, sys, jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(sys.argv[1], 2, int(sys.argv[2]))
from genlv_jax.config_io import load_config
from genlv_jax.training import sharding
config = load_config(sys.argv[3], ["mesh.dcn_data=2", "mesh.data=1", "mesh.fsdp=2"])
mesh = sharding.create_mesh(config.mesh)
print(json.dumps({"shape": dict(mesh.shape),
                  "process": [[d.process_index for d in row] for row in mesh.devices]}))
"""


def test_two_slices_put_only_the_dcn_axis_across_processes():
  """Two processes of two devices each, as two slices: `data` (dcn_data=2) runs across the
  processes, `fsdp` stays within each one, where its collectives are cheap."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  tiny = os.path.join(HERE, "..", "configs", "tiny.py")
  procs = [subprocess.Popen([sys.executable, "-c", HYBRID, f"127.0.0.1:{port}", str(i), tiny],
                            env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outputs = []
  for p in procs:
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    outputs.append(json.loads(out.strip().splitlines()[-1]))
  assert outputs[0] == outputs[1]
  assert outputs[0]["shape"] == {"data": 2, "fsdp": 2}
  assert outputs[0]["process"] == [[0, 0], [1, 1]]
