"""Parameter checkpoints with orbax, and the strict comparison of a parameter tree to a model's.

Training checkpoints (params, optimizer state, EMA, step, RNG, data iterator) are managed by the
trainer on top of these helpers; `save_params` / `restore_params` handle a bare parameter tree,
which is what `convert` writes and `load_model` reads.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp

PyTree = Any


class CheckpointMismatchError(ValueError):
  """A checkpoint whose keys or shapes do not match the model; `problems` lists every one."""

  def __init__(self, summary: str, problems: list[str]):
    super().__init__(summary + "\n" + "\n".join("  " + p for p in problems))
    self.summary = summary
    self.problems = problems


def flatten_params(tree: Mapping[str, Any], sep: str = "/") -> dict[str, Any]:
  """{'a': {'b': x}} -> {'a/b': x}."""
  flat = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    flat[sep.join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)] = leaf
  return flat


def unflatten_params(flat: Mapping[str, Any], sep: str = "/") -> dict[str, Any]:
  """{'a/b': x} -> {'a': {'b': x}}."""
  tree: dict[str, Any] = {}
  for key, value in flat.items():
    node = tree
    *parents, leaf = key.split(sep)
    for name in parents:
      node = node.setdefault(name, {})
    node[leaf] = value
  return tree


def compare_param_trees(expected: PyTree, actual: PyTree) -> list[str]:
  """Every missing, unexpected and wrongly shaped key of `actual` against `expected` (shapes)."""
  want, got = flatten_params(expected), flatten_params(actual)
  problems = [f"missing: {k} {tuple(np.shape(want[k]))}" for k in sorted(want.keys() - got.keys())]
  problems += [f"unexpected: {k} {tuple(np.shape(got[k]))}" for k in sorted(got.keys() - want.keys())]
  for k in sorted(want.keys() & got.keys()):
    if tuple(np.shape(want[k])) != tuple(np.shape(got[k])):
      problems.append(f"shape mismatch: {k} expected {tuple(np.shape(want[k]))}, "
                      f"got {tuple(np.shape(got[k]))}")
  return problems


def check_params_match(expected: PyTree, actual: PyTree, what: str) -> None:
  """Raises CheckpointMismatchError listing every problem when `actual` does not fit `expected`."""
  problems = compare_param_trees(expected, actual)
  if problems:
    raise CheckpointMismatchError(
        f"{what} does not match the config: {len(problems)} problem(s) "
        f"(missing/unexpected/shape-mismatched keys listed below)", problems)


def save_params(path: str | os.PathLike, params: PyTree) -> None:
  """Writes a parameter tree as an orbax checkpoint directory (overwrites)."""
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.abspath(path), {"params": params}, force=True)
  checkpointer.wait_until_finished()


def is_params_checkpoint(path: str | os.PathLike) -> bool:
  """True for a directory written by `save_params` (an orbax checkpoint with a `params` item)."""
  return os.path.isdir(path) and os.path.exists(os.path.join(path, "_CHECKPOINT_METADATA"))


def restore_params(path: str | os.PathLike, abstract_params: PyTree) -> PyTree:
  """Restores a `save_params` directory onto the structure of `abstract_params`, strictly."""
  checkpointer = ocp.StandardCheckpointer()
  path = os.path.abspath(path)
  metadata = checkpointer.metadata(path)
  tree = getattr(metadata, "item_metadata", metadata)
  tree = getattr(tree, "tree", tree)
  if not isinstance(tree, Mapping) or "params" not in tree:
    raise CheckpointMismatchError(f"{path} is not a GenLV params checkpoint", ["no 'params' item"])
  check_params_match(abstract_params, dict(tree["params"]), f"checkpoint {path}")
  # An explicit placement: without one orbax guesses it (and warns on every restore).
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
                        abstract_params)
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
    from etils import epath  # gs:// paths work as local ones
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

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state: PyTree, data_state: Mapping[str, Any], force: bool = False) -> bool:
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

  def restore_params(self, abstract_params: PyTree, step: int | None = None) -> PyTree:
    """Only the params of a training checkpoint (latest step by default), strictly checked."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    metadata = self.manager.item_metadata(step)["state"]
    tree = getattr(metadata, "tree", metadata)
    check_params_match(abstract_params, dict(tree["params"]), f"checkpoint {self.directory}/{step}")
    target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype), abstract_params)
    item = {"params": target}
    # Only the params subtree is read: optimizer moments and EMA stay on disk.
    restored = ocp.PyTreeCheckpointer().restore(
        self.directory / str(step) / "state",
        args=ocp.args.PyTreeRestore(item=item, partial_restore=True,
                                    restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(), item)))
    return restored["params"]

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def is_training_workdir(path: str | os.PathLike) -> bool:
  """True for a directory holding `checkpoints/<step>/` written by the trainer."""
  directory = os.path.join(path, "checkpoints")
  return os.path.isdir(directory) and any(name.isdigit() for name in os.listdir(directory))
