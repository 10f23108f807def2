"""Export (`genlv_jax.exporting`, `python -m genlv_jax.export`): the exported graphs against the
model, their signatures, their portability, and the command's user errors.

Parity: the tiny config with random init, the exported function against `genlv_jax.load_model`
(the model as users run it, "auto" ops: the compiled CPU kernels where they build), float32,
max abs diff <= 1e-4. StableHLO at two input sizes (symbolic dimensions) and a fixed size, batch
2; ONNX (onnxruntime) at batch 2 and 1 (symbolic batch), skipped when jax2onnx or onnxruntime is
not installed (the `onnx` extra).
"""

from __future__ import annotations

import importlib.util
import os
import re

import jax
import numpy as np
import pytest

import genlv_jax.api
from conftest import config_path, requires_cpu_kernel, user_error
from genlv_jax import api, export, exporting
from genlv_jax.config_io import load_config
from genlv_jax.errors import PathNotFoundError, UserError
from genlv_jax.models import apply_model, build_model, cpu_kernels, ops
from genlv_jax.models.params import compare_param_trees

TINY = config_path("tiny")
TOLERANCE = 1e-4
ONNX_MISSING = [m for m in ("jax2onnx", "onnx", "onnxruntime")
                if importlib.util.find_spec(m) is None]
requires_onnx = pytest.mark.skipif(
    bool(ONNX_MISSING), reason=f"{', '.join(ONNX_MISSING)} not installed: ONNX export needs the "
    "'onnx' extra (pip install -e '.[onnx]')")


def _inputs(seed: int, batch: int, size: tuple[int, int], prompt_size: tuple[int, int]):
  rng = np.random.default_rng(seed)
  image = rng.random((batch, *size, 3), dtype=np.float32)
  prompts = [rng.random((batch, *prompt_size, 3), dtype=np.float32) for _ in range(2)]
  return image, *prompts


def _custom_call_targets(module_text: str) -> set[str]:
  """Every custom-call target of a StableHLO module, in either printed form."""
  return (set(re.findall(r"custom_call @([\w.$-]+)", module_text))
          | set(re.findall(r'call_target_name = "([^"]+)"', module_text)))


@pytest.fixture(scope="module")
def tiny():
  """The tiny model as users load it (random init, "auto" ops)."""
  return api.load_model(TINY)


@pytest.fixture(scope="module")
def stablehlo_export(tiny, tmp_path_factory):
  """(path, Exported) of the tiny model with symbolic batch, size and prompt size."""
  path = tmp_path_factory.mktemp("stablehlo") / "tiny.stablehlo"
  exported = exporting.export_stablehlo(tiny.config, tiny.params, path)
  return path, exported


# ---- StableHLO ---------------------------------------------------------------------------------

def test_stablehlo_signature_is_symbolic_in_batch_size_and_prompt_size(stablehlo_export):
  _, exported = stablehlo_export
  shapes = [tuple(str(d) for d in aval.shape) for aval in exported.in_avals]
  assert shapes == [("b", "32*h", "32*w", "3"), ("b", "8*ph", "8*pw", "3"),
                    ("b", "8*ph", "8*pw", "3")]
  assert [str(a.dtype) for a in exported.in_avals] == ["float32"] * 3
  assert [tuple(str(d) for d in a.shape) for a in exported.out_avals] == [
      ("b", "32*h", "32*w", "3")]
  assert exported.platforms == exporting.DEFAULT_PLATFORMS


@pytest.mark.parametrize("size, prompt_size", [((64, 64), (64, 64)), ((96, 160), (48, 40))])
def test_stablehlo_matches_the_model(tiny, stablehlo_export, size, prompt_size):
  path, _ = stablehlo_export
  args = _inputs(0, 2, size, prompt_size)
  want = tiny(*args)
  got = np.asarray(exporting.load_stablehlo(path)(*args))
  assert got.shape == want.shape == (2, *size, 3) and got.dtype == np.float32
  diff = float(np.abs(got - want).max())
  print(f"stablehlo {size} prompts {prompt_size} batch 2: max abs diff {diff:.3g}")
  assert diff <= TOLERANCE


def test_stablehlo_runs_with_jax_alone(tiny, stablehlo_export):
  """The file is a plain `jax.export` module: `deserialize(bytes).call(x, ps, pt)`."""
  path, _ = stablehlo_export
  args = _inputs(1, 2, (64, 64), (64, 64))
  with open(path, "rb") as f:
    got = np.asarray(jax.export.deserialize(bytearray(f.read())).call(*args))
  assert float(np.abs(got - tiny(*args)).max()) <= TOLERANCE


def test_stablehlo_calls_no_cpu_kernel(stablehlo_export):
  """The module's only custom calls are jax's own shape assertions (symbolic dimensions):
  nothing of the compiled CPU kernels (`genlv_*` FFI targets), no backend kernel."""
  _, exported = stablehlo_export
  text = exported.mlir_module()
  targets = _custom_call_targets(text)
  assert targets <= {"shape_assertion"}, targets
  # Not even mentioned (say, in a backend-config attribute): the FFI targets by name.
  kernel_targets = cpu_kernels._HANDLERS  # pylint: disable=protected-access
  assert not [name for name in kernel_targets if name in text]


@requires_cpu_kernel
def test_the_custom_call_check_sees_the_cpu_kernels(tiny):
  """The check above would catch a kernel: the model as configured ("auto" on one CPU device)
  lowers to `genlv_*` custom calls."""
  model = build_model(tiny.config)
  args = _inputs(0, 1, (64, 64), (64, 64))
  text = jax.jit(lambda *a: apply_model(model, tiny.params, *a)).lower(*args).as_text()
  assert _custom_call_targets(text) & set(cpu_kernels._HANDLERS)  # pylint: disable=protected-access


def test_stablehlo_fixed_size_through_the_command(tiny, tmp_path, capsys):
  path = tmp_path / "fixed.stablehlo"
  assert export.main(["--config", TINY, "--random-init", "--format", "stablehlo", "--output",
                      str(path), "--height", "64", "--width", "128", "--platforms", "cpu"]) == 0
  out = capsys.readouterr().out
  assert f"wrote {path} (StableHLO for cpu" in out and "input (b, 64, 128, 3)" in out
  model = exporting.load_stablehlo(path)
  assert model.input_names == exporting.INPUT_NAMES
  assert [tuple(str(d) for d in s) for s in model.input_shapes] == [
      ("b", "64", "128", "3"), ("b", "8*ph", "8*pw", "3"), ("b", "8*ph", "8*pw", "3")]
  args = _inputs(2, 2, (64, 128), (32, 32))
  diff = float(np.abs(np.asarray(model(*args)) - tiny(*args)).max())
  print(f"stablehlo fixed (64, 128) prompts (32, 32) batch 2: max abs diff {diff:.3g}")
  assert diff <= TOLERANCE


def test_a_model_without_prompts_exports_the_input_only():
  config = load_config(TINY, ["model.use_prompt=false"])
  abstract = api.abstract_params(build_model(config), config)
  params = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), abstract)
  exported = exporting.export_stablehlo(config, params, platforms=["cpu"])
  assert [tuple(str(d) for d in a.shape) for a in exported.in_avals] == [
      ("b", "64*h", "64*w", "3")]  # X-Restormer pads to a multiple of 64
  assert _custom_call_targets(exported.mlir_module()) <= {"shape_assertion"}
  with pytest.raises(UserError, match="takes no prompt"):
    exporting.export_stablehlo(config, params, platforms=["cpu"], prompt_height=64,
                               prompt_width=64)


def test_portable_config_replaces_only_backend_specific_choices():
  config = load_config(TINY, ["ops.depthwise=grouped", "ops.conv=cpu_kernel",
                              "ops.attention=cudnn", "ops.windows=patches", "remat=true"])
  portable = exporting.portable_config(config)
  assert dict(portable.ops) == {"depthwise": "grouped", "windows": "patches",
                                "attention": "matmul", "conv": "xla", "layer_norm": "xla"}
  assert portable.remat is False
  assert dict(exporting.portable_config(TINY, "onnx").ops) == exporting.PORTABLE_OPS["onnx"]
  assert dict(exporting.portable_config(TINY, "accelerator").ops) == (
      exporting.PORTABLE_OPS["accelerator"])
  assert config.ops.conv == "cpu_kernel"  # a copy: the caller's config is unchanged


@pytest.mark.parametrize("target", sorted(exporting.PORTABLE_OPS))
def test_every_ops_field_has_a_portable_choice(target):
  choices = exporting.PORTABLE_OPS[target]
  assert set(choices) == set(ops.CHOICES)  # a new ops field needs a portable choice here
  assert all(choice in ops.CHOICES[field] for field, choice in choices.items())
  assert not set(choices.values()) & {"cpu_kernel", "cudnn", "default", "auto"}


def test_an_accelerator_module_calls_no_backend_kernel(tiny):
  """Lowered for GPUs and TPUs first (grouped depthwise conv, patches, XLA's attention): still
  no custom call but jax's shape assertions."""
  exported = exporting.export_stablehlo(tiny.config, tiny.params, platforms=["cuda", "tpu"])
  assert exported.platforms == ("cuda", "tpu")
  assert _custom_call_targets(exported.mlir_module()) <= {"shape_assertion"}


def test_unrolled_gives_the_unrolled_models_parameter_layout():
  """ONNX export unrolls `nn.scan` (which jax2onnx cannot convert): the split parameters fit
  the unrolled model exactly."""
  config = load_config(TINY, ["model.scan_blocks=true"])
  abstract = api.abstract_params(build_model(config), config)
  params = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), abstract)
  unrolled_config, unrolled_params = exporting.unrolled(config, params)
  assert unrolled_config.model.scan_blocks is False
  want = api.abstract_params(build_model(unrolled_config), unrolled_config)
  assert compare_param_trees(want, unrolled_params) == []
  assert exporting.unrolled(unrolled_config, unrolled_params)[1] is unrolled_params


def test_load_stablehlo_refuses_missing_and_foreign_files(tmp_path):
  with pytest.raises(PathNotFoundError, match="StableHLO module not found"):
    exporting.load_stablehlo(tmp_path / "missing.stablehlo")
  (tmp_path / "notes.txt").write_text("not a module")
  with pytest.raises(UserError, match="is not a serialised jax.export module"):
    exporting.load_stablehlo(tmp_path / "notes.txt")


# ---- ONNX --------------------------------------------------------------------------------------

@requires_onnx
def test_onnx_matches_the_model(tiny, tmp_path, capsys):
  import onnxruntime  # pylint: disable=import-outside-toplevel
  path = tmp_path / "tiny.onnx"
  assert export.main(["--config", TINY, "--random-init", "--format", "onnx", "--output",
                      str(path), "--height", "64", "--width", "64"]) == 0
  assert "input (B, 64, 64, 3), prompts (B, 64, 64, 3)" in capsys.readouterr().out
  session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
  assert [i.name for i in session.get_inputs()] == list(exporting.INPUT_NAMES)
  assert [o.name for o in session.get_outputs()] == [exporting.OUTPUT_NAME]
  assert session.get_inputs()[0].shape == ["B", 64, 64, 3]
  assert session.get_outputs()[0].shape == ["B", 64, 64, 3]
  for batch in (2, 1):
    args = _inputs(3 + batch, batch, (64, 64), (64, 64))
    got = session.run([exporting.OUTPUT_NAME], dict(zip(exporting.INPUT_NAMES, args)))[0]
    diff = float(np.abs(got - tiny(*args)).max())
    print(f"onnx (64, 64) batch {batch}: max abs diff {diff:.3g}")
    assert got.shape == (batch, 64, 64, 3) and diff <= TOLERANCE
  import onnx  # pylint: disable=import-outside-toplevel
  proto = onnx.load(str(path))
  onnx.checker.check_model(proto)
  # Standard operators only: no custom domain a runtime would need a plugin for.
  assert {node.domain for node in proto.graph.node} <= {"", "ai.onnx"}
  assert not proto.functions
  # The depthwise convs are grouped Conv nodes (PORTABLE_OPS["onnx"]), not nine slices each.
  groups = [a.i for n in proto.graph.node if n.op_type == "Conv" for a in n.attribute
            if a.name == "group"]
  assert groups and max(groups) > 1


# ---- the command's user errors -----------------------------------------------------------------

def _argv(**changes) -> list[str]:
  """A valid command line, changed by one mistake (None removes an option, "" makes a flag)."""
  options = {"--config": TINY, "--random-init": "", "--format": "stablehlo",
             "--output": "{d}/model.stablehlo", **{"--" + k.replace("_", "-"): v
                                                   for k, v in changes.items()}}
  argv = []
  for key, value in options.items():
    if value is not None:
      argv += [key] if value == "" else [key, value]
  return argv


MISTAKES = [
    (_argv(format="tflite"), "argument --format: invalid choice: 'tflite'"),
    (_argv(format=None), "the following arguments are required: --format"),
    (_argv(height="100", width="64"), "--height must be a positive multiple of 64, got 100"),
    (_argv(height="64", width="0"), "--width must be a positive multiple of 64, got 0"),
    (_argv(height="64"), "give both --height and --width, or neither"),
    (_argv(format="onnx", height="96", width="64"), "--height must be a positive multiple of 64"),
    (_argv(prompt_height="12", prompt_width="16"), "--prompt-height must be a positive multiple "
                                                   "of 8, got 12"),
    (_argv(platforms="gpu"), "platforms must be some of cpu, cuda, rocm, tpu, got gpu"),
    (_argv(output="{d}/missing/model.stablehlo"), "folder {d}/missing does not exist"),
    (_argv(output="{d}/blocker/model.stablehlo"), "{d}/blocker is a file, not a folder"),
    (_argv(output="{d}"), "--output {d} is a folder"),
    (_argv(random_init=None), "one of the arguments --checkpoint --random-init is required"),
    (_argv(checkpoint="{d}/ckpt"), "argument --checkpoint: not allowed with argument"),
    (_argv(random_init=None, checkpoint="{d}/missing_ckpt"), "checkpoint not found"),
    (_argv(config="{d}/blocker"), "is not a Python file"),
    (_argv(config=config_path("xrestormer"), prompt_height="64", prompt_width="64"),
     "this model takes no prompt"),
    (_argv() + ["--config.model.no_such_field=1"], "unknown config field"),
    (_argv() + ["--frobnicate"], "unrecognised arguments: --frobnicate"),
]


@pytest.fixture
def no_model_work(monkeypatch):
  """Fails a test that reaches the model: every mistake is found before it is loaded."""
  def not_reached(*args, **kwargs):
    raise AssertionError("the model was loaded or exported: the mistake got past the checks")
  monkeypatch.setattr(genlv_jax.api, "load_model", not_reached)
  monkeypatch.setattr(exporting, "export_stablehlo", not_reached)
  monkeypatch.setattr(exporting, "export_onnx", not_reached)


@pytest.mark.parametrize("argv, message", MISTAKES, ids=[m[1][:40] for m in MISTAKES])
def test_a_mistake_is_one_error_line_and_exit_2(tmp_path, capsys, no_model_work, argv, message):
  (tmp_path / "blocker").write_text("a file where a folder is needed")
  d = str(tmp_path)
  err = user_error(capsys, export.main, [a.replace("{d}", d) for a in argv])
  assert message.replace("{d}", d) in err, err
  assert not os.path.exists(tmp_path / "model.stablehlo")


def test_onnx_without_jax2onnx_is_a_user_error(tmp_path, capsys, no_model_work, monkeypatch):
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "jax2onnx" else real_find_spec(name, *a))
  err = user_error(capsys, export.main, _argv(format="onnx", output=str(tmp_path / "m.onnx")))
  assert "--format onnx needs jax2onnx" in err and "pip install -e '.[onnx]'" in err


def test_an_unwritable_output_folder_is_a_user_error(tmp_path, capsys, no_model_work):
  folder = tmp_path / "read_only"
  folder.mkdir()
  folder.chmod(0o555)
  try:
    if os.access(folder, os.W_OK):  # root writes anywhere: try a folder no one can write
      if not os.path.isdir("/proc/self"):
        pytest.skip("running as root without /proc: no unwritable folder to try")
      folder = "/proc"
    err = user_error(capsys, export.main, _argv(output=os.path.join(folder, "m.stablehlo")))
    assert f"folder {folder} is not writable" in err, err
  finally:
    (tmp_path / "read_only").chmod(0o755)
