"""Exporting a model for serving outside this package: StableHLO (`jax.export`) and ONNX.

The exported function is the forward pass with the parameters baked in as constants:

    GenLV:        (input, prompt_source, prompt_target) -> output
    X-Restormer:  (input) -> output

every array NHWC float32 (images in [0, 1], RGB), the output at the input's size (times
`model.scale` for X-Restormer's SR shape). Both formats are traced with the ops layer's portable
formulations (`portable_config`, `PORTABLE_OPS`): an exported graph never calls the compiled
CPU kernels of `genlv_jax.models.cpu_kernels` (an FFI call exists only in the process that
registered it) nor a backend's fused attention, so one file runs on any backend.

- **StableHLO** (`export_stablehlo`, read back by `load_stablehlo` or by plain
  `jax.export.deserialize(data).call(x, ps, pt)`): for JAX/XLA serving, on CPUs, GPUs and TPUs
  (lowered for all three by default; the first platform decides which formulations the graph
  uses, so give `platforms=("cuda",)` or ("tpu",) to serve on accelerators). Batch, height
  and width are symbolic: the input is (b, m*h, m*w, 3) with m the model's pad multiple (32
  for GenLV, 64 for X-Restormer), the prompts (b, 8*ph, 8*pw, 3), their own size. A fixed
  `height` and `width` (multiples of 64) give a module for that one input size, batch still
  symbolic.
- **ONNX** (`export_onnx`, through `jax2onnx`; run it with onnxruntime or any ONNX runtime, CPU
  and edge devices included): inputs `input`, `prompt_source`, `prompt_target`, output
  `output`. The batch is symbolic (`B`); height and width are fixed (default 256, the training
  size), since jax2onnx cannot yet carry the models' "multiple of m" size constraints.

A request that cannot be honoured (a size that is not a multiple, an unknown platform, an output
location that cannot be written, ONNX without jax2onnx installed) raises `UserError` before any
model work: `check_request` runs every such check.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from typing import Any, Callable, Iterator, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections

from genlv_jax.config_io import ConfigLike, load_config
from genlv_jax.data import image_io
from genlv_jax.errors import PathNotFoundError, UserError
from genlv_jax.models import (PAD_MULTIPLE, apply_model, build_model, flatten_params,
                              unflatten_params)
from genlv_jax.models.genlv import PROMPT_PAD_MULTIPLE

PyTree = Any

FORMATS = ("stablehlo", "onnx")
# The platforms a StableHLO module is lowered for unless told otherwise: the module is one
# program for all (nothing in it is platform-specific), so listing them costs only lowering
# time; the first picks the formulations (`stablehlo_target`).
DEFAULT_PLATFORMS = ("cpu", "cuda", "tpu")
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
# ONNX needs a fixed input size (see the module docstring): the training resolution.
DEFAULT_ONNX_SIZE = 256
INPUT_NAMES = ("input", "prompt_source", "prompt_target")
OUTPUT_NAME = "output"

# What an exported graph computes each op with, by what it is meant to run fastest on. Every
# choice computes the same function (tests/test_model.py checks each pair), so a graph made for
# one target runs correctly on any; only speed differs. None calls a compiled kernel.
PORTABLE_OPS = {
    # XLA:CPU: what "auto" picks on several CPU devices (its grouped conv and patch extraction
    # are ~25x slower than the shifted and reshaped forms).
    "cpu": {"depthwise": "shifted", "windows": "reshape", "attention": "matmul", "conv": "xla",
            "layer_norm": "xla"},
    # GPUs and TPUs: what "auto" picks on one device, with XLA's attention for cuDNN's (a
    # custom call that exists on CUDA only).
    "accelerator": {"depthwise": "grouped", "windows": "patches", "attention": "xla",
                    "conv": "xla", "layer_norm": "xla"},
    # ONNX: a depthwise conv is one grouped Conv node, which runtimes have kernels for; the
    # shifted form is nine slices and adds, 4x the graph's nodes (and jax2onnx's clean-up passes
    # take time quadratic in the nodes: 51 s against 15 s for the tiny config). XLA's attention
    # becomes MatMul nodes, which onnxruntime runs 1.3x as fast as the head-major Einsums.
    "onnx": {"depthwise": "grouped", "windows": "reshape", "attention": "xla", "conv": "xla",
             "layer_norm": "xla"},
}
# Choices that are not one formulation on every backend: "auto" and "default" decide by the
# backend at trace time, "cpu_kernel" is an FFI call into this process's compiled library and
# "cudnn" a GPU-only custom call. Any other choice in a config is kept.
_BACKEND_SPECIFIC = ("auto", "default", "cpu_kernel", "cudnn")


def stablehlo_target(platforms: Sequence[str]) -> str:
  """The `PORTABLE_OPS` target of a StableHLO module: that of its first platform."""
  return "cpu" if platforms[0] == "cpu" else "accelerator"


def portable_config(config: ConfigLike, target: str = "cpu") -> ml_collections.ConfigDict:
  """A copy of `config` whose model computes the same function with portable ops only.

  Every `ops` field left to the backend ("auto", "default") or naming a backend's own kernel
  ("cpu_kernel", "cudnn") becomes the formulation `PORTABLE_OPS[target]` gives it ("cpu",
  "accelerator" or "onnx"); explicit portable choices stay. `remat` is turned off (it only
  changes the backward pass). The parameters of the copy are those of `config`'s model.
  """
  if target not in PORTABLE_OPS:
    raise ValueError(f"unknown export target {target!r}; expected one of {sorted(PORTABLE_OPS)}")
  config = load_config(config)
  current = dict(config.get("ops") or {})
  overrides = [f"ops.{field}={choice}" for field, choice in PORTABLE_OPS[target].items()
               if current.get(field, "auto") in _BACKEND_SPECIFIC]
  return load_config(config, overrides + ["remat=false"])


def _takes_prompt(config: ml_collections.ConfigDict) -> bool:
  return bool(config.model.use_prompt)


def check_sizes(fmt: str, height: Optional[int] = None, width: Optional[int] = None,
                prompt_height: Optional[int] = None, prompt_width: Optional[int] = None) -> None:
  """The input size (`height` and `width`: both or neither, positive multiples of 64) and the
  prompt size (both or neither, positive multiples of 8) of an export in format `fmt`.

  Raises:
    UserError: a size that cannot be exported, or an unknown format.
  """
  if fmt not in FORMATS:
    raise UserError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
  for first, second, multiple, what in ((height, width, PAD_MULTIPLE, ""),
                                        (prompt_height, prompt_width, PROMPT_PAD_MULTIPLE,
                                         "prompt-")):
    if (first is None) != (second is None):
      raise UserError(f"give both --{what}height and --{what}width, or neither")
    for name, value in ((f"--{what}height", first), (f"--{what}width", second)):
      if value is not None and (value <= 0 or value % multiple):
        # 64: the size unit of `infer`'s tiles, which both models take without padding.
        raise UserError(f"{name} must be a positive multiple of {multiple}, got {value}")


def check_platforms(platforms: Sequence[str]) -> tuple[str, ...]:
  """The StableHLO target platforms, validated and deduplicated in order.

  Raises:
    UserError: an empty list or a platform jax cannot lower for.
  """
  chosen = tuple(dict.fromkeys(p.strip().lower() for p in platforms if p.strip()))
  unknown = [p for p in chosen if p not in PLATFORMS]
  if not chosen or unknown:
    raise UserError(f"platforms must be some of {', '.join(PLATFORMS)}, got "
                    f"{', '.join(platforms) or 'none'}")
  return chosen


def check_output(path: str | os.PathLike) -> str:
  """Makes sure the exported file can be written at `path`: its folder exists (it is not
  created: a mistyped folder is more likely than a wanted one) and is writable, and `path` is
  not a folder. Returns the path.

  Raises:
    UserError: the location cannot be written; the message says why.
  """
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.exists(folder) and not os.path.isdir(folder):
    raise UserError(f"cannot write --output {path}: {folder} is a file, not a folder")
  if not os.path.isdir(folder):
    raise PathNotFoundError(f"cannot write --output {path}: folder {folder} does not exist "
                            "(create it first)")
  return image_io.prepare_output_file(path, "--output")


def check_onnx_available() -> None:
  """ONNX export needs `jax2onnx` (and `onnx`, which it brings).

  Raises:
    UserError: either is not installed; the message says how to install them.
  """
  missing = [name for name in ("jax2onnx", "onnx") if importlib.util.find_spec(name) is None]
  if missing:
    raise UserError(f"--format onnx needs {' and '.join(missing)}, which are not installed: "
                    "pip install -e '.[onnx]' (README, Export)")


def check_request(fmt: str, output: str | os.PathLike, *, height: Optional[int] = None,
                  width: Optional[int] = None, prompt_height: Optional[int] = None,
                  prompt_width: Optional[int] = None,
                  platforms: Sequence[str] = DEFAULT_PLATFORMS) -> None:
  """Every check of an export request that needs no model, in the order a user meets them:
  format and sizes, platforms (StableHLO), the ONNX libraries, the output location.

  Raises:
    UserError: the first mistake found.
  """
  check_sizes(fmt, height, width, prompt_height, prompt_width)
  if fmt == "stablehlo":
    check_platforms(platforms)
  else:
    check_onnx_available()
  check_output(output)


def unrolled(config: ConfigLike, params: PyTree) -> tuple[ml_collections.ConfigDict, PyTree]:
  """`config` and `params` with every level's blocks unrolled (`model.scan_blocks` off, the
  stacked parameters split per block): the same function, without `nn.scan`'s loop, which
  jax2onnx cannot convert. Unchanged when the config does not scan."""
  config = load_config(config)
  if not config.model.scan_blocks:
    return config, params
  # bridge.convert is numpy and models only (torch stays unloaded).
  from genlv_jax.bridge.convert import unstack_blocks  # pylint: disable=import-outside-toplevel
  return (load_config(config, ["model.scan_blocks=false"]),
          unflatten_params(unstack_blocks(flatten_params(params))))


def _forward(config: ConfigLike, params: PyTree, target: str
             ) -> tuple[Callable[..., jax.Array], bool]:
  """The portable forward pass for `target` with `params` closed over (so they become constants
  of the exported graph, and the signature is the images only), and whether it takes prompts."""
  config = portable_config(config, target)
  model = build_model(config)

  def forward(*images: jax.Array) -> jax.Array:
    return apply_model(model, params, *images)

  return forward, _takes_prompt(config)


def check_prompt_size(config: ConfigLike, prompt_height: Optional[int]) -> None:
  """A prompt size is given only for a model that takes prompts.

  Raises:
    UserError: a prompt size for X-Restormer.
  """
  if prompt_height is not None and not _takes_prompt(load_config(config)):
    raise UserError("this model takes no prompt (X-Restormer): leave out --prompt-height and "
                    "--prompt-width")


def stablehlo_input_specs(config: ConfigLike, height: Optional[int] = None,
                          width: Optional[int] = None, prompt_height: Optional[int] = None,
                          prompt_width: Optional[int] = None
                          ) -> tuple[jax.ShapeDtypeStruct, ...]:
  """The arguments a StableHLO export of `config`'s model is traced with: (input,) or (input,
  prompt_source, prompt_target), float32 NHWC, with a symbolic batch `b` and symbolic sizes
  (module docstring) wherever no fixed size is given."""
  config = load_config(config)
  check_sizes("stablehlo", height, width, prompt_height, prompt_width)
  check_prompt_size(config, prompt_height)
  takes_prompt = _takes_prompt(config)
  multiple = build_model(config).pad_multiple
  # One call, so that every dimension lives in one symbolic scope (b is shared by all three).
  dims = dict(zip(("b", "h", "w", "ph", "pw"), jax.export.symbolic_shape(
      f"b, {multiple}*h, {multiple}*w, {PROMPT_PAD_MULTIPLE}*ph, {PROMPT_PAD_MULTIPLE}*pw")))
  image = (dims["b"], height if height is not None else dims["h"],
           width if width is not None else dims["w"], 3)
  specs = [jax.ShapeDtypeStruct(image, jnp.float32)]
  if takes_prompt:
    prompt = (dims["b"], prompt_height if prompt_height is not None else dims["ph"],
              prompt_width if prompt_width is not None else dims["pw"], 3)
    specs += [jax.ShapeDtypeStruct(prompt, jnp.float32)] * 2
  return tuple(specs)


def export_stablehlo(config: ConfigLike, params: PyTree,
                     output: Optional[str | os.PathLike] = None, *,
                     height: Optional[int] = None, width: Optional[int] = None,
                     prompt_height: Optional[int] = None, prompt_width: Optional[int] = None,
                     platforms: Sequence[str] = DEFAULT_PLATFORMS) -> jax.export.Exported:
  """Exports the forward pass of `config`'s model with `params` through `jax.export`.

  Args:
    config: the model's config (a path such as "configs/base.py", or a ConfigDict); its `ops`
      are made portable (`portable_config`), tuned for the first of `platforms`.
    params: the parameter tree (`genlv_jax.load_model(...).params`).
    output: where to write `Exported.serialize()`; None writes nothing.
    height, width: a fixed input size (multiples of 64); None: symbolic (multiples of the
      model's pad multiple, 32 for GenLV, 64 for X-Restormer).
    prompt_height, prompt_width: a fixed prompt size (multiples of 8); None: symbolic.
    platforms: what the module is lowered for (any of "cpu", "cuda", "rocm", "tpu"); the
      first decides the formulations (`PORTABLE_OPS`: "cpu", else "accelerator").

  Returns:
    The `jax.export.Exported`: `.call(input, prompt_source, prompt_target)` runs it,
    `.mlir_module()` is its StableHLO text, `.serialize()` the bytes written to `output`.

  Raises:
    UserError: a size or platform that cannot be exported, or an output that cannot be written.
  """
  platforms = check_platforms(platforms)
  if output is not None:
    check_output(output)
  specs = stablehlo_input_specs(config, height, width, prompt_height, prompt_width)
  forward, _ = _forward(config, params, stablehlo_target(platforms))
  exported = jax.export.export(jax.jit(forward), platforms=platforms)(*specs)
  if output is not None:
    with open(output, "wb") as f:
      f.write(exported.serialize())
  return exported


class StableHLOModel:
  """An exported forward pass read back from its file: call it like the model.

      model = load_stablehlo("genlv.stablehlo")
      out = model(images, prompt_source, prompt_target)      # a jax.Array, NHWC float32

  Arguments are cast to float32; they must fit the exported shapes (`input_shapes`), else jax
  raises. Each new shape compiles once.
  """

  def __init__(self, exported: jax.export.Exported):
    self.exported = exported
    self._call = jax.jit(exported.call)

  @property
  def input_names(self) -> tuple[str, ...]:
    """("input", "prompt_source", "prompt_target"), or ("input",) for a model without prompts."""
    return INPUT_NAMES[:len(self.exported.in_avals)]

  @property
  def input_shapes(self) -> tuple[tuple, ...]:
    """Each argument's shape, symbolic dimensions as expressions (`32*h`)."""
    return tuple(aval.shape for aval in self.exported.in_avals)

  def __call__(self, *arrays: Any) -> jax.Array:
    if len(arrays) != len(self.exported.in_avals):
      raise TypeError(f"this module takes {len(self.exported.in_avals)} argument(s) "
                      f"({', '.join(self.input_names)}), got {len(arrays)}")
    return self._call(*(jnp.asarray(a, jnp.float32) for a in arrays))


def load_stablehlo(path: str | os.PathLike) -> StableHLOModel:
  """Reads a module written by `export_stablehlo` (or `python -m genlv_jax.export --format
  stablehlo`). Needs jax only: not this package's models, nor its compiled kernels.

  Raises:
    PathNotFoundError: nothing at `path`.
    UserError: the file is not a serialised `jax.export` module.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise PathNotFoundError(f"StableHLO module not found: {path}")
  with open(path, "rb") as f:
    data = f.read()
  try:
    exported = jax.export.deserialize(bytearray(data))
  except Exception as e:  # flatbuffers' errors for foreign bytes are bare; the file is the cause
    raise UserError(f"{path} is not a serialised jax.export module "
                    f"({type(e).__name__}: {e})") from e
  return StableHLOModel(exported)


@contextlib.contextmanager
def _quiet_jax2onnx() -> Iterator[None]:
  """jax2onnx logs, at WARNING and with tracebacks, every plugin it cannot import for this jax
  (dm_pix's, unused here) and every intermediate value whose type onnx_ir leaves unset; neither
  concerns the exported graph, which onnx's checker validates."""
  loggers = [logging.getLogger(name) for name in ("jax2onnx", "onnx_ir")]
  levels = [logger.level for logger in loggers]
  for logger in loggers:
    logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    for logger, level in zip(loggers, levels):
      logger.setLevel(level)


def export_onnx(config: ConfigLike, params: PyTree, output: Optional[str | os.PathLike] = None,
                *, height: Optional[int] = None, width: Optional[int] = None,
                prompt_height: Optional[int] = None, prompt_width: Optional[int] = None,
                opset: int = 23) -> Any:
  """Exports the forward pass of `config`'s model with `params` to ONNX through `jax2onnx`.

  Args:
    config: the model's config (path or ConfigDict); its `ops` are made portable
      (`PORTABLE_OPS["onnx"]`) and its blocks unrolled (`unrolled`).
    params: the parameter tree.
    output: where to write the `.onnx` file; None writes nothing.
    height, width: the input size, multiples of 64 (default 256 x 256).
    prompt_height, prompt_width: the prompt size, multiples of 8 (default: the input's).
    opset: the ONNX opset (jax2onnx's default, 23; onnxruntime runs it from 1.22).

  Returns:
    The `onnx.ModelProto`: inputs `input`, `prompt_source`, `prompt_target` (just `input` for
    X-Restormer), output `output`, all (B, H, W, 3) float32 with a symbolic batch B.

  Raises:
    UserError: a size that cannot be exported, jax2onnx missing, or an output that cannot be
      written.
  """
  check_sizes("onnx", height, width, prompt_height, prompt_width)
  check_onnx_available()
  if output is not None:
    check_output(output)
  if height is None:
    height = width = DEFAULT_ONNX_SIZE
  check_prompt_size(config, prompt_height)
  forward, takes_prompt = _forward(*unrolled(config, params), "onnx")
  if prompt_height is None:
    prompt_height, prompt_width = height, width
  shapes = [("B", height, width, 3)]
  if takes_prompt:
    shapes += [("B", prompt_height, prompt_width, 3)] * 2
  with _quiet_jax2onnx():
    from jax2onnx import to_onnx  # pylint: disable=import-outside-toplevel
    proto = to_onnx(forward, inputs=shapes, model_name="genlv", opset=opset,
                    input_names=list(INPUT_NAMES[:len(shapes)]), output_names=[OUTPUT_NAME])
  if output is not None:
    with open(output, "wb") as f:
      f.write(proto.SerializeToString())
  return proto


def describe_shapes(shapes: Sequence[Sequence[Any]]) -> str:
  """`input (b, 32*h, 32*w, 3), prompts (b, 8*ph, 8*pw, 3)`: an export's signature, for logs."""
  text = [", ".join(str(d) for d in shape) for shape in shapes]
  return f"input ({text[0]})" + (f", prompts ({text[1]})" if len(text) > 1 else "")


def onnx_input_shapes(proto: Any) -> list[tuple]:
  """The input shapes of an ONNX model, a symbolic dimension by its name."""
  return [tuple(d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim)
          for value in proto.graph.input]
