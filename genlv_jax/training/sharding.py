"""Device mesh and partitioning: logical axis names for every array, one rules table to mesh axes.

Parameters get logical axis names from their role (a conv kernel is
`(conv_height, conv_width, conv_in, conv_out)`, a 1x1 conv / Dense kernel `(embed_in,
embed_out)`, a stacked `nn.scan` level adds a leading `layers` axis); `config.sharding_rules`
maps logical names to mesh axes, so changing the parallelism is a config edit (MaxText's way),
without annotations inside the model. Optimizer state follows its params (AdamW's moments have
the params' paths and shapes). A dimension not divisible by its mesh axis, or a parameter
smaller than `min_shard_size`, stays replicated.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import jax
import numpy as np
from absl import logging
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from genlv_jax.config_defaults import SHARDING_RULES

from genlv_jax.errors import UserError

PyTree = Any
MESH_AXES = ("data", "fsdp")

# The default rules table lives with the other defaults (config.sharding_rules): one place.
DEFAULT_RULES = SHARDING_RULES


class ShardingError(UserError):
  """A mesh or batch that cannot be laid out on the available devices (a user mistake)."""


def mesh_shape(num_devices: int, data: int, fsdp: int) -> tuple[int, int]:
  """Resolves -1 ("all remaining devices") and checks that data * fsdp == num_devices."""
  if data == -1 and fsdp == -1:
    raise ShardingError("only one of mesh.data and mesh.fsdp may be -1")
  if data == -1:
    data = num_devices // max(fsdp, 1)
  if fsdp == -1:
    fsdp = num_devices // max(data, 1)
  if data < 1 or fsdp < 1 or data * fsdp != num_devices:
    raise ShardingError(f"mesh data={data} x fsdp={fsdp} does not use the {num_devices} devices")
  return data, fsdp


def create_mesh(mesh_config: Any, devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A ('data', 'fsdp') mesh over all devices, laid out on the hardware.

  `mesh.data` × `mesh.fsdp` is the mesh within one slice (ICI): `mesh_utils.create_device_mesh`
  orders the devices so that neighbouring mesh coordinates are neighbouring chips of the
  torus, where the collectives of `fsdp` run. With several slices (TPU multislice, joined by the
  data-centre network), `mesh.dcn_data` × `mesh.dcn_fsdp` slices are stacked on the same axes
  by `mesh_utils.create_hybrid_device_mesh`, so that only the axis given DCN sizes crosses the
  slow links (MaxText's and MaxDiffusion's naming). The mesh's `data` axis then has
  `data * dcn_data` devices, `fsdp` `fsdp * dcn_fsdp`.
  """
  devices = list(jax.devices() if devices is None else devices)
  dcn = (int(mesh_config.get("dcn_data", 1)), int(mesh_config.get("dcn_fsdp", 1)))
  slices = dcn[0] * dcn[1]
  if min(dcn) < 1 or len(devices) % slices:
    raise ShardingError(f"mesh.dcn_data={dcn[0]} x mesh.dcn_fsdp={dcn[1]} slices do not divide "
                        f"the {len(devices)} devices")
  ici = mesh_shape(len(devices) // slices, int(mesh_config.data), int(mesh_config.fsdp))
  if slices > 1:
    # TPU multislice devices carry the index of their slice; where all are one slice (GPU
    # hosts joined by the network, CPU processes) each process is one granule of the DCN axes.
    by_process = len({getattr(d, "slice_index", 0) for d in devices}) == 1
    try:
      layout = mesh_utils.create_hybrid_device_mesh(ici, dcn, devices,
                                                    process_is_granule=by_process,
                                                    allow_split_physical_axes=True)
    except ValueError as e:
      raise ShardingError(f"mesh.dcn_data={dcn[0]} x mesh.dcn_fsdp={dcn[1]} needs that many "
                          f"{'processes' if by_process else 'slices'}: {e}") from None
  else:
    layout = mesh_utils.create_device_mesh(ici, devices, allow_split_physical_axes=True)
  return Mesh(layout, MESH_AXES)


def _key_name(key) -> str:
  return str(getattr(key, "key", getattr(key, "name", getattr(key, "idx", key))))


def logical_axes(path: Sequence[str], shape: Sequence[int]) -> tuple[Optional[str], ...]:
  """Logical axis names of a parameter (or of its optimizer moment) from its path and shape."""
  names = list(path)
  stacked = "blocks" in names  # nn.scan levels carry the block index first
  inner = shape[1:] if stacked else shape
  leaf = names[-1] if names else ""
  depthwise = any(n.endswith("dwconv") for n in names)
  if len(inner) == 4:
    axes = (("conv_height", "conv_width", None, "channels") if depthwise
            else ("conv_height", "conv_width", "conv_in", "conv_out"))
  elif len(inner) == 2 and leaf in ("rel_height", "rel_width"):
    axes = ("relpos", "head_dim")
  elif len(inner) == 2:
    axes = ("embed_in", "embed_out")
  elif len(inner) == 1:
    axes = ("channels",)
  else:
    axes = (None,) * len(inner)
  return (("layers",) + axes) if stacked else axes


def spec_for(shape: Sequence[int], axes: Sequence[Optional[str]], mesh: Mesh,
             rules: Sequence[tuple[str, Any]], min_shard_size: int = 0,
             moves: Optional[list[str]] = None) -> P:
  """PartitionSpec from logical axes and rules; small arrays replicate.

  A mesh axis whose rule names a dimension it does not divide (GDFN's 2 * int(2.66 C) channels,
  the 3-channel output conv) moves to the largest other dimension it divides, so that FSDP
  still splits the parameter; if none, that part stays replicated. Each such decision is
  appended to `moves` (when given) as text.
  """
  if math.prod(shape) < min_shard_size:
    return P()
  table = dict(rules)
  spec: list[Any] = [None] * len(shape)
  used: set[str] = set()
  for i, (dim, name) in enumerate(zip(shape, axes)):
    mesh_axes = table.get(name) if name else None
    if mesh_axes is None:
      continue
    mesh_axes = (mesh_axes,) if isinstance(mesh_axes, str) else tuple(mesh_axes)
    mesh_axes = tuple(a for a in mesh_axes if a not in used and mesh.shape[a] > 1)
    if not mesh_axes:
      continue
    size = math.prod(mesh.shape[a] for a in mesh_axes)
    target = i if dim % size == 0 else next(
        (j for j in sorted(range(len(shape)), key=lambda j: -shape[j])
         if spec[j] is None and j != i and shape[j] % size == 0 and shape[j] > 1), None)
    if target != i and moves is not None:
      where = "stays replicated" if target is None else f"moves to dimension {target}"
      moves.append(f"{'/'.join(mesh_axes)} ({size}) does not divide {name}={dim} of shape "
                   f"{tuple(shape)}: {where}")
    if target is None:
      continue
    used.update(mesh_axes)
    spec[target] = mesh_axes[0] if len(mesh_axes) == 1 else mesh_axes
  return P(*spec)


def tree_shardings(abstract: PyTree, mesh: Mesh, rules: Sequence[tuple[str, Any]] = DEFAULT_RULES,
                   min_shard_size: int = 2 ** 14) -> PyTree:
  """NamedShardings for every leaf of a params / optimizer-state / train-state tree; the leaves
  whose sharding axis moved to another dimension (or could not shard) are logged."""
  moved: dict[str, str] = {}

  def leaf_sharding(path, leaf):
    shape = tuple(getattr(leaf, "shape", ()))
    names = [_key_name(k) for k in path]
    notes: list[str] = []
    spec = spec_for(shape, logical_axes(names, shape), mesh, rules, min_shard_size, notes)
    if notes:
      moved["/".join(names)] = "; ".join(notes)
    return NamedSharding(mesh, spec)

  shardings = jax.tree_util.tree_map_with_path(leaf_sharding, abstract)
  if moved:
    first = next(iter(moved.items()))
    logging.info("sharding: %d arrays could not shard along their rule's dimension (e.g. %s: "
                 "%s)", len(moved), *first)
    for name, note in moved.items():
      logging.debug("sharding %s: %s", name, note)
  return shardings


def batch_sharding(mesh: Mesh, rules: Sequence[tuple[str, Any]] = DEFAULT_RULES) -> NamedSharding:
  """Sharding of an NHWC batch: the batch axis over the mesh axes the `batch` rule names."""
  axes = dict(rules).get("batch", ("data", "fsdp"))
  return NamedSharding(mesh, P(axes))


def batch_divisor(mesh: Mesh, rules: Sequence[tuple[str, Any]] = DEFAULT_RULES) -> int:
  """How many ways the global batch is split (it must divide the batch size)."""
  axes = dict(rules).get("batch", ("data", "fsdp"))
  axes = (axes,) if isinstance(axes, str) else tuple(axes or ())
  return math.prod(mesh.shape[a] for a in axes)


def check_batch(global_batch: int, mesh: Mesh, rules=DEFAULT_RULES) -> None:
  """Refuses, before any compile, a global batch the data axes cannot split evenly."""
  divisor = batch_divisor(mesh, rules)
  if global_batch % divisor or global_batch % jax.process_count():
    raise ShardingError(
        f"batch_size {global_batch} is not divisible by the {divisor} batch shards of mesh "
        f"{dict(mesh.shape)} and {jax.process_count()} process(es)")


def host_local_to_global(batch: PyTree, mesh: Mesh, rules=DEFAULT_RULES) -> PyTree:
  """Assembles each process's slice of the global batch into global jax.Arrays."""
  sharding = batch_sharding(mesh, rules)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
