"""Checkpoints: what a path names, and reading and writing parameter trees with orbax.

Four kinds of path name weights, and `resolve_checkpoint` tells them apart in one place for
every command and `genlv_jax.load_model`:
  - an orbax params directory (`save_params`: what `convert` and `finetune` write);
  - a training workdir (`WORKDIR/checkpoints/<step>/`, `TrainCheckpointer`): its latest step,
    the EMA params when the run kept an EMA (what its evaluations measured), else the params;
  - a fine-tuning workdir: its `best/` params directory;
  - a PyTorch `.pth` / `.pt` / `.safetensors` file (converted by `genlv_jax.bridge`, which needs
    the `bridge` extra).
Restoring is strict: a tree that does not fit the config lists every missing, unexpected and
wrongly shaped key (`CheckpointMismatchError`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping, Optional

import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath

from genlv_jax.errors import PathNotFoundError, UserError
from genlv_jax.models.build import build_model
from genlv_jax.models.params import (CheckpointMismatchError, abstract_params,
                                     check_params_match)

PyTree = Any


def check_params_destination(path: str | os.PathLike, named: str = "") -> None:
  """Refuses a `save_params` destination that is a folder of other files: orbax's overwrite
  would delete them. `named` prefixes the message (an option name)."""
  if os.path.isdir(path) and os.listdir(path) and not is_params_checkpoint(path):
    raise UserError(f"{named}{' ' if named else ''}{path} is a folder of other files, not a "
                    "params checkpoint: writing there would delete them; give a new or empty "
                    "folder")


def save_params(path: str | os.PathLike, params: PyTree) -> None:
  """Writes a parameter tree as an orbax checkpoint directory, replacing an earlier params
  checkpoint there; any other non-empty folder is refused (`check_params_destination`)."""
  check_params_destination(path)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.abspath(path), {"params": params}, force=True)
  checkpointer.wait_until_finished()


def is_params_checkpoint(path: str | os.PathLike) -> bool:
  """True for a directory written by `save_params` (an orbax checkpoint with a `params` item)."""
  return (epath.Path(path) / "_CHECKPOINT_METADATA").exists()


def restore_params(path: str | os.PathLike, abstract: PyTree) -> PyTree:
  """Restores a `save_params` directory onto the structure of `abstract`, strictly."""
  checkpointer = ocp.StandardCheckpointer()
  path = os.path.abspath(path)
  metadata = checkpointer.metadata(path)
  tree = getattr(metadata, "item_metadata", metadata)
  tree = getattr(tree, "tree", tree)
  if not isinstance(tree, Mapping) or "params" not in tree:
    raise CheckpointMismatchError(f"{path} is not a GenLV params checkpoint", ["no 'params' item"])
  check_params_match(abstract, dict(tree["params"]), f"checkpoint {path}")
  # An explicit placement: without one orbax guesses it (and warns on every restore).
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
                        abstract)
  return checkpointer.restore(path, {"params": target})["params"]


class TrainCheckpointer:
  """Training checkpoints in `WORKDIR/checkpoints/<step>/`: the whole TrainState (`state`) and
  the input pipeline's position (`data`, JSON).

  Saves are asynchronous (training continues while the arrays are written) and atomic: orbax
  writes into a temporary directory and renames it when complete, so a kill during a save
  leaves the previous checkpoint as the latest usable one. `keep` checkpoints are kept.
  Restoring onto abstract arrays that carry shardings lays the state out on the current mesh,
  whatever mesh wrote it.
  """

  def __init__(self, workdir: str, every: int, keep: int, async_save: bool = True):
    workdir = os.fspath(workdir)
    if "://" not in workdir:
      workdir = os.path.abspath(workdir)  # orbax wants absolute local paths
    self.directory = epath.Path(workdir) / "checkpoints"
    self.every = max(int(every), 1)
    # We decide when to save (orbax would also save the very first step it is offered).
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, save_interval_steps=1, enable_async_checkpointing=async_save,
        create=True)
    self.manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "data": ocp.JsonCheckpointHandler()})

  def __enter__(self) -> "TrainCheckpointer":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state: PyTree, data_state: Mapping[str, Any],
           force: bool = False) -> bool:
    """Saves when `step` is on the interval (or `force`); returns whether a save started."""
    if not force and step % self.every:
      return False
    if step in self.manager.all_steps():
      return False
    return self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(dict(data_state))), force=force)

  def restore(self, step: int, abstract_state: PyTree) -> tuple[PyTree, dict]:
    """(state, data_state) of `step`, laid out as `abstract_state`'s shardings say."""
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored["state"], dict(restored["data"])

  def restore_params(self, abstract: PyTree, step: Optional[int] = None,
                     prefer_ema: bool = True) -> PyTree:
    """The params of a training checkpoint (latest step by default), strictly checked: its EMA
    params when `prefer_ema` and the run kept an EMA (the weights its evaluations measured)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise PathNotFoundError(f"no checkpoint in {self.directory}")
    metadata = self.manager.item_metadata(step)["state"]
    tree = getattr(metadata, "tree", metadata)
    key = "ema_params" if prefer_ema and tree.get("ema_params") else "params"
    check_params_match(abstract, dict(tree[key]), f"checkpoint {self.directory}/{step}")
    # An explicit placement: without one orbax reads it from the checkpoint (and warns).
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
                          abstract)
    item = {key: target}
    # Only that subtree is read: optimizer moments stay on disk.
    restored = ocp.PyTreeCheckpointer().restore(
        self.directory / str(step) / "state",
        args=ocp.args.PyTreeRestore(item=item, partial_restore=True,
                                    restore_args=ocp.checkpoint_utils.construct_restore_args(item)))
    return restored[key]

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def is_training_workdir(path: str | os.PathLike) -> bool:
  """True for a directory holding `checkpoints/<step>/` written by the trainer."""
  directory = epath.Path(path) / "checkpoints"
  return directory.is_dir() and any(p.name.isdigit() for p in directory.iterdir())


TORCH_SUFFIXES = (".pth", ".pt", ".safetensors")
CONFIG_FILE = "config.json"  # the config a training workdir recorded (written by the trainer)
FINETUNE_BEST = "best"  # the params directory a fine-tuning workdir keeps its best weights in


def _tuples(value):
  """JSON lists back to tuples: config sequences are tuples (`model.num_blocks`, …)."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def read_workdir_config(workdir: str | os.PathLike) -> ml_collections.ConfigDict | None:
  """The config a training workdir recorded (`WORKDIR/config.json`: the one its latest run
  started or resumed with), or None when it has none (a workdir of an older version).

  Sequences come back as tuples, as the config files write them.

  Raises:
    UserError: the file exists but is not a JSON object.
  """
  path = epath.Path(workdir) / CONFIG_FILE
  if not path.exists():
    return None
  try:
    tree = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise UserError(f"{path} is not valid JSON ({e})") from e
  if not isinstance(tree, dict):
    raise UserError(f"{path} does not hold a config (a JSON object)")
  return ml_collections.ConfigDict(_tuples(tree))


@dataclasses.dataclass(frozen=True)
class CheckpointRef:
  """What a checkpoint path names: `kind` is "torch", "params" or "training"; `path` the file or
  directory to read (absolute when local: orbax refuses relative paths)."""
  kind: str
  path: str


def resolve_checkpoint(path: str | os.PathLike) -> CheckpointRef:
  """Decides what `path` is (module docstring); a fine-tuning workdir resolves to its `best/`.

  Raises:
    PathNotFoundError: nothing at `path`.
    UserError: `path` exists but holds no checkpoint of a kind we read.
  """
  path = os.fspath(path)
  remote = "://" in path
  if not remote:
    if not os.path.exists(path):
      raise PathNotFoundError(f"checkpoint not found: {path}")
    path = os.path.abspath(path)
  if path.endswith(TORCH_SUFFIXES):
    return CheckpointRef("torch", path)
  if is_params_checkpoint(path):
    return CheckpointRef("params", path)
  if is_training_workdir(path):
    return CheckpointRef("training", path)
  best = os.path.join(path, FINETUNE_BEST)
  if is_params_checkpoint(best):
    return CheckpointRef("params", best)
  if remote and not epath.Path(path).exists():
    raise PathNotFoundError(f"checkpoint not found: {path}")
  raise UserError(f"{path} is neither an orbax params checkpoint, a training workdir, a "
                  "fine-tuning workdir nor a .pth/.pt/.safetensors file")


def load_params(model, config, checkpoint: str | os.PathLike | CheckpointRef) -> PyTree:
  """The params of `checkpoint` (any kind `resolve_checkpoint` knows) for `model` of `config`,
  strictly checked against the model."""
  ref = checkpoint if isinstance(checkpoint, CheckpointRef) else resolve_checkpoint(checkpoint)
  if ref.kind == "torch":
    from genlv_jax.bridge import load_torch_checkpoint  # torch is an extra: import on use
    return load_torch_checkpoint(ref.path, config)
  abstract = abstract_params(model, config)
  if ref.kind == "params":
    return restore_params(ref.path, abstract)
  with TrainCheckpointer(ref.path, every=1, keep=1) as checkpointer:
    return checkpointer.restore_params(abstract)


def torch_to_params_dir(config, input_path: str, output_dir: str,
                        param_key: Optional[str] = None) -> None:
  """Converts a PyTorch checkpoint file to an orbax params directory for `config`."""
  from genlv_jax.bridge import load_torch_checkpoint  # torch is an extra: import on use
  save_params(output_dir, load_torch_checkpoint(input_path, config, param_key=param_key))


def params_dir_to_torch(config, checkpoint: str | os.PathLike | CheckpointRef,
                        output_path: str) -> None:
  """Converts the params of an orbax checkpoint (a params folder, or a training or fine-tuning
  workdir) of `config` to a `.pth` or `.safetensors` file: the layout the authors' inference.py
  loads for GenLV (`{"model": state_dict}`), BasicSR's for X-Restormer (`{"params": …}`)."""
  from genlv_jax.bridge import flax_to_torch, write_torch_file  # the torch extra
  if not output_path.endswith(TORCH_SUFFIXES):
    raise UserError(f"{output_path}: output must end in .pth, .pt or .safetensors")
  params = load_params(build_model(config), config, checkpoint)
  write_torch_file(output_path, flax_to_torch(params, config),
                   wrapper="model" if config.model.use_prompt else "params")
