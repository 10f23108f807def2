"""The prepared-pair records, their ArrayRecord shards, and the readers the data pipeline and the
evaluation use (host code; no Beam, no jax).

Record format (version 1). One record is one (input, target) pair:

    b"GLVR" | version: 1 byte (1) | header length: uint32 little-endian | header | images

`header` is UTF-8 JSON (keys sorted, no spaces, so that equal records are equal bytes):

    task      the catalogue name of the task (`rtv`, `dehazing`, …)
    key       the source item it was made from (a file path relative to the source root,
              `builtin/<name>`, `tfds/<split>/<index>`); unique within a task and role
    role      `train` (paired, targets, heavy) | `test` | `prompt` (testset)
    severity  the severity in [0, 1] a procedural pair was synthesised at, else null
    level     its index among the discrete severity levels, else null
    group     testset: the prompt group a test pair is evaluated with, or a prompt pair shows
    prompt    testset prompt pairs: the prompt image's number k (0, 1, …), else null
    images    [["input", n_bytes], ["target", n_bytes]]: the images that follow, in order

`images`: each a PNG file (RGB, 8 bits per channel; 16 with `--bit-depth 16`), concatenated in
the order of `images`. Shards are `<output>/<task>/<split>-SSSSS-of-NNNNN.array_record` (records
in item order; ArrayRecord, one record per chunk for random access), each with a JSON sidecar
`….array_record.json` listing its record count and the inputs it skipped. grain reads a shard
as it is: `grain.python.ArrayRecordDataSource(paths)` gives the raw records, `decode_record`
turns one into arrays. `read_shards(dir)` does both and offers the `read_pair` interface of
`paired_sources.PairedFolderSource`, so that the pipeline can train on prepared pairs.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import struct
import tempfile
from typing import Any, Iterable, Optional, Sequence

import cv2
import numpy as np
from absl import logging
from array_record.python.array_record_module import ArrayRecordWriter

from genlv_jax.data.image_sources import NoImagesError
from genlv_jax.data.paired_sources import UnusablePairError
from genlv_jax.errors import PathNotFoundError, UserError

MAGIC = b"GLVR"
VERSION = 1
SHARD_SUFFIX = ".array_record"
SIDECAR_SUFFIX = ".json"
# One record per chunk: random access reads one PNG pair, not a group of them. PNG payloads
# do not compress further.
WRITER_OPTIONS = "group_size:1,uncompressed"
_SHARD_NAME = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<count>\d{5})"
                         + re.escape(SHARD_SUFFIX) + "$")
ROLES = ("train", "test", "prompt")


class CorruptRecordError(UserError):
  """A record that is not in the format above (another file, or a damaged shard)."""


def shard_name(split: str, index: int, count: int) -> str:
  """`train-00003-of-00012.array_record`."""
  return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def encode_png(image: np.ndarray, bit_depth: int = 8) -> bytes:
  """An HxWx3 image (uint8, or float in [0, 1], clipped) as PNG bytes of `bit_depth` bits."""
  image = np.asarray(image)
  if bit_depth == 16:
    scaled = np.clip(image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0), 0, 1)
    pixels = np.round(scaled * 65535.0).astype(np.uint16)
  elif image.dtype == np.uint8:
    pixels = image
  else:  # rounded, not truncated: 0.999 is 255 (image_io.to_uint8)
    pixels = (np.clip(image.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
  if pixels.ndim == 2:
    pixels = np.repeat(pixels[:, :, None], 3, axis=2)
  ok, data = cv2.imencode(".png", np.ascontiguousarray(pixels[:, :, ::-1]),
                          [cv2.IMWRITE_PNG_COMPRESSION, 3])
  if not ok:
    raise ValueError(f"cannot encode a {pixels.shape} {pixels.dtype} image as PNG")
  return data.tobytes()


def encode_record(task: str, key: str, images: Sequence[tuple[str, bytes]], *, role: str = "train",
                  severity: Optional[float] = None, level: Optional[int] = None,
                  group: Optional[str] = None, prompt: Optional[int] = None) -> bytes:
  """One record (see the module docstring) from already encoded images."""
  if role not in ROLES:
    raise ValueError(f"role must be one of {ROLES}, got {role!r}")
  header = {"task": task, "key": key, "role": role,
            "severity": None if severity is None else float(severity),
            "level": None if level is None else int(level), "group": group,
            "prompt": None if prompt is None else int(prompt),
            "images": [[name, len(data)] for name, data in images]}
  text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
  return b"".join([MAGIC, bytes([VERSION]), struct.pack("<I", len(text)), text,
                   *(data for _, data in images)])


def record_header(record: bytes) -> tuple[dict, int]:
  """(header, offset of the first image) of a record; CorruptRecordError when it is not one."""
  if len(record) < 9 or record[:4] != MAGIC:
    raise CorruptRecordError("not a GenLV prepared-pair record (bad magic)")
  if record[4] != VERSION:
    raise CorruptRecordError(f"record format version {record[4]}; this reader knows {VERSION}")
  (length,) = struct.unpack("<I", record[5:9])
  try:
    header = json.loads(record[9:9 + length])
  except ValueError as e:
    raise CorruptRecordError(f"record header is not JSON: {e}") from None
  return header, 9 + length


def decode_record(record: bytes, decode_images: bool = True) -> dict[str, Any]:
  """A record as a dict: the header fields, and each image as HxWx3 float32 in [0, 1] (or its
  PNG bytes when `decode_images` is False). Usable as a grain `map` after
  `ArrayRecordDataSource`."""
  header, offset = record_header(bytes(record))
  out = {k: v for k, v in header.items() if k != "images"}
  for name, size in header["images"]:
    data = bytes(record[offset:offset + size])
    if len(data) != size:
      raise CorruptRecordError(f"record of {header.get('key')!r} is truncated")
    offset += size
    out[name] = decode_png(data) if decode_images else data
  return out


def decode_png(data: bytes) -> np.ndarray:
  """A record's PNG (8 or 16 bits, RGB) as HxWx3 float32 in [0, 1]. OpenCV, not Pillow: Pillow
  reads 16-bit RGB PNGs as 8-bit."""
  pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
  if pixels is None or pixels.ndim != 3 or pixels.shape[2] != 3:
    raise CorruptRecordError("a record image is not an RGB PNG")
  scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
  return np.ascontiguousarray(pixels[:, :, ::-1], dtype=np.float32) * np.float32(1.0 / scale)


# ---- writing ---------------------------------------------------------------------------------

def _atomic_local(path: str, write) -> None:
  """Calls `write(temp_path)` on a temporary file beside `path`, then renames it into place, so
  that `path` is either absent or complete (a rerun trusts every shard it finds)."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, temp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".tmp-")
  os.close(fd)
  try:
    write(temp)
    os.replace(temp, path)
  except BaseException:
    if os.path.exists(temp):
      os.remove(temp)
    raise


def write_bytes_atomically(path: str, data: bytes) -> None:
  """Writes `data` to a local `path` atomically (temporary file + rename)."""
  def write(temp):
    with open(temp, "wb") as f:
      f.write(data)
  _atomic_local(path, write)


def write_array_record(path: str, records: Iterable[bytes]) -> int:
  """Writes the records to an ArrayRecord file at a local `path` atomically; returns the count."""
  count = [0]

  def write(temp):
    writer = ArrayRecordWriter(temp, WRITER_OPTIONS)
    try:
      for record in records:
        writer.write(record)
        count[0] += 1
    finally:
      writer.close()
  _atomic_local(path, write)
  return count[0]


# ---- reading ---------------------------------------------------------------------------------

def shard_paths(path: str, split: Optional[str] = None) -> list[str]:
  """The shard files under `path` (a task folder, or a folder of task folders), sorted; only
  complete ones (temporary files of an unfinished run are ignored)."""
  if os.path.isfile(path) and path.endswith(SHARD_SUFFIX):
    return [path]
  if not os.path.isdir(path):
    raise PathNotFoundError(f"prepared shards not found: {path}")
  found = []
  for candidate in sorted(glob.glob(os.path.join(path, "**", "*" + SHARD_SUFFIX), recursive=True)):
    match = _SHARD_NAME.match(os.path.basename(candidate))
    if match and (split is None or match["split"] == split):
      found.append(candidate)
  return found


def read_sidecar(shard_path: str) -> dict:
  """The sidecar of a shard: {"records": n, "skipped": [[key, reason], …]}."""
  with open(shard_path + SIDECAR_SUFFIX, encoding="utf-8") as f:
    return json.load(f)


class PreparedPairs:
  """The pairs of prepared shards, random access: a grain data source (`__len__`,
  `__getitem__` → `decode_record` dict) with the `read_pair` / `skipped` interface of
  `paired_sources.PairedFolderSource`.

  The ArrayRecord reader is opened lazily and not pickled: each grain worker opens its own.
  """

  def __init__(self, paths: Sequence[str], task: Optional[str] = None):
    if not paths:
      raise NoImagesError("no prepared shards given")
    self.paths = tuple(paths)
    self.task = task
    self.skipped: list[str] = []
    self._source = None
    if len(self) == 0:
      raise NoImagesError(f"the prepared shards hold no record ({self.paths[0]}, …)")

  def _open(self):
    if self._source is None:
      import grain.python as grain  # pylint: disable=import-outside-toplevel
      self._source = grain.ArrayRecordDataSource(list(self.paths))
    return self._source

  def __getstate__(self) -> dict:
    state = dict(self.__dict__)
    state["_source"] = None
    return state

  def __len__(self) -> int:
    return len(self._open())

  def __getitem__(self, index: int) -> dict[str, Any]:
    return decode_record(self._open()[int(index)])

  @property
  def num_skipped(self) -> int:
    return len(self.skipped)

  def read_pair(self, index: int, substitute: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Pair `index` as (input, target) float32 arrays. A record that cannot be decoded is
    skipped and the next one returned (`substitute`), or raises UnusablePairError."""
    n = len(self)
    if not -n <= index < n:
      raise IndexError(f"prepared pairs hold {n} records, index {index}")
    for k in range(n if substitute else 1):
      i = (index + k) % n
      label = f"{self.paths[0]}[{i}]" if len(self.paths) == 1 else f"prepared record {i}"
      if label in self.skipped:
        continue
      try:
        record = self[i]
        return record["input"], record["target"]
      except Exception as e:  # pylint: disable=broad-except  (a damaged record is skipped)
        if not substitute:
          raise UnusablePairError(label, label, f"unreadable record: {e}") from e
        self.skipped.append(label)
        logging.warning("skipping prepared record %s: %s", label, e)
    raise NoImagesError(f"no readable record in {self.paths[0]}, …")


def read_shards(path: str, task: Optional[str] = None, split: str = "train") -> PreparedPairs:
  """The prepared pairs under `path`: a task folder written by `python -m
  genlv_jax.data.prepare`, or its `--output` folder with `task` naming the subfolder.

  Raises:
    PathNotFoundError: no such folder. NoImagesError: no complete shard in it.
  """
  folder = os.path.join(path, task) if task else path
  paths = shard_paths(folder, split)
  if not paths:
    raise NoImagesError(f"no prepared {split} shards under {folder}")
  return PreparedPairs(paths, task)


@dataclasses.dataclass
class TaskTestSet:
  """The fixed test pairs of one task and its prompt pairs by (group, k)."""
  task: str
  keys: list[str]
  inputs: np.ndarray
  targets: np.ndarray
  groups: list[str]
  prompts: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]

  def prompt_arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompt pair k of each test input (the one of its group), [N, H, W, 3] each."""
    pairs = [self.prompts[(g, k)] for g in self.groups]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def read_testset_task(paths: Sequence[str], task: str) -> TaskTestSet:
  """Decodes the test and prompt records of one task's testset shards."""
  import grain.python as grain  # pylint: disable=import-outside-toplevel
  source = grain.ArrayRecordDataSource(list(paths))
  tests, prompts = [], {}
  for i in range(len(source)):
    record = decode_record(source[i])
    if record["role"] == "test":
      tests.append(record)
    elif record["role"] == "prompt":
      prompts[(record["group"], int(record["prompt"]))] = (record["input"], record["target"])
  if not tests:
    raise NoImagesError(f"the testset of {task} holds no test pair")
  return TaskTestSet(task, [r["key"] for r in tests], np.stack([r["input"] for r in tests]),
                     np.stack([r["target"] for r in tests]), [r["group"] for r in tests],
                     prompts)
