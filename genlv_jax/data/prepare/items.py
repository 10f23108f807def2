"""The items of a clean-image source for the preparation job: listed once by the launcher,
read one by one by the workers (host code; no Beam unless the folder is remote).

Specs are the repository's (`image_sources.parse_source`): `builtin`, `folder:PATH`,
`tfds:NAME`. A folder is listed by file extension without opening its files (`FolderSource`
opens every header when it is made: too slow for a million images, and local only); PATH may be
a bucket (`folder:gs://…`). Items are named by stable keys (a folder's relative paths, the
builtin images' names, `<split>/<index>` of a tfds split), which seed the per-item random draws.
Reads are strict: an unreadable item raises `UnreadableItemError`, never yields another image.
"""

from __future__ import annotations

import io
import os
import re
from typing import Optional

import numpy as np

from genlv_jax.data import image_io, image_sources
from genlv_jax.data.prepare import files
from genlv_jax.errors import UserError


class UnreadableItemError(Exception):
  """An item that exists but cannot be decoded (counted and listed as skipped)."""


class SourceItems:
  """One clean-image source: `keys()` on the launcher, `read(key)` on the workers (picklable;
  the underlying source is opened lazily in each process)."""

  def __init__(self, spec: str, data_dir: str = "", split: str = "train", image_key: str = ""):
    self.spec = spec.strip()
    self.data_dir, self.split, self.image_key = data_dir, split, image_key
    self._source = None
    self._index: Optional[dict[str, int]] = None
    self._keys: Optional[list[str]] = None
    if self.spec.startswith("folder:"):
      self.kind, self.root = "folder", self.spec[len("folder:"):].strip()
      if not self.root:
        raise image_sources.ImageSourceError("folder: needs a path (folder:PATH)")
      if not files.is_remote(self.root):
        self.root = os.path.expanduser(self.root)
    elif self.spec == "builtin" or self.spec.startswith("tfds:"):
      self.kind, self.root = self.spec.split(":", 1)[0], ""
    else:  # the repository's message for an unknown spec
      image_sources.parse_source(self.spec)

  def __getstate__(self) -> dict:
    state = dict(self.__dict__)
    state["_source"] = state["_index"] = state["_keys"] = None
    return state

  def _open(self):
    if self._source is None:
      self._source = image_sources.parse_source(self.spec, data_dir=self.data_dir,
                                                split=self.split, image_key=self.image_key)
    return self._source

  def keys(self) -> list[str]:
    """The keys of every item, in the source's order (sorted paths for a folder); listed once
    per process."""
    if self._keys is None:
      if self.kind == "folder":
        self._keys = files.list_images(self.root)
        if not self._keys:
          raise image_sources.NoImagesError(f"no image files under {self.root}")
      elif self.kind == "builtin":
        self._keys = list(self._open().names)
      else:
        self._keys = [f"{self.split}/{i:08d}" for i in range(len(self._open()))]
    return list(self._keys)

  def read(self, key: str) -> np.ndarray:
    """Item `key` as HxWx3 RGB (uint8, or float32 in [0, 1]).

    Raises:
      UnreadableItemError: the item cannot be decoded.
    """
    if self.kind == "folder":
      path = files.join(self.root, key)
      try:
        return image_sources.decode_rgb(io.BytesIO(files.read_bytes(path)))
      except Exception as e:  # pylint: disable=broad-except  (every decoder failure)
        raise UnreadableItemError(_reason(e)) from e
    source = self._open()
    if self.kind == "builtin":
      if self._index is None:
        self._index = {name: i for i, name in enumerate(source.names)}
      return source.read_rgb(self._index[key])
    index = int(key.rsplit("/", 1)[1])
    before = len(source.skipped)
    image = source.read_rgb(index)
    # TfdsSource passes over an unreadable record to the next one; here that is a skip.
    label = f"tfds:{source.name}[{source.split}][{index}]"
    if label in source.skipped[before:]:
      raise UnreadableItemError(f"unreadable tfds record {label}")
    return image


def _reason(error: BaseException) -> str:
  """One line saying why, without object reprs (`<_io.BytesIO object at 0x…>`): the same
  input gives the same sidecar bytes in every run."""
  text = str(error).splitlines()[0] if str(error) else type(error).__name__
  return f"{type(error).__name__}: {re.sub(r'<[^<>]* at 0x[0-9a-fA-F]+>', 'the file', text)}"


def as_float(image: np.ndarray, resize: int = 0) -> np.ndarray:
  """HxWx3 float32 in [0, 1], resized to resize×resize as the authors resize (INTER_AREA when
  larger, INTER_CUBIC when smaller; `image_io.resize_square`) when `resize` > 0, then clipped."""
  image = image_sources.to_float(image)
  if resize:
    image = np.clip(image_io.resize_square(image, resize), 0.0, 1.0)
  return np.ascontiguousarray(image, dtype=np.float32)


def check_spec(spec: str) -> None:
  """Raises UserError for a spec that is none of builtin, folder:PATH, tfds:NAME."""
  if not (spec == "builtin" or spec.startswith("folder:") or spec.startswith("tfds:")):
    raise UserError(f"unknown image source {spec!r}: expected 'builtin', 'folder:PATH' or "
                    "'tfds:NAME'")
