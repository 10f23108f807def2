"""Files of the preparation job, local or on any file system Beam knows (`gs://`, `s3://`, …).

Local paths use the os module; a path with a scheme goes through Beam's `FileSystems`
(imported only then), so that the same job reads and writes a bucket on Dataflow. Every file a
rerun trusts is written atomically: to a temporary name, then renamed.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import uuid
from typing import Callable

from genlv_jax.data import image_io
from genlv_jax.data.prepare import shards
from genlv_jax.errors import PathNotFoundError


def is_remote(path: str) -> bool:
  return "://" in path


def _filesystems():
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
  return FileSystems


def join(root: str, *parts: str) -> str:
  if is_remote(root):
    return posixpath.join(root.rstrip("/"), *parts)
  return os.path.join(root, *parts)


def exists(path: str) -> bool:
  if is_remote(path):
    return _filesystems().exists(path)
  return os.path.exists(path)


def is_dir(path: str) -> bool:
  """Whether `path` is a folder (remote: whether any object lies under it)."""
  if is_remote(path):
    matched = _filesystems().match([path.rstrip("/") + "/*"], limits=[1])
    return bool(matched and matched[0].metadata_list)
  return os.path.isdir(path)


def read_bytes(path: str) -> bytes:
  if is_remote(path):
    with _filesystems().open(path) as f:
      return f.read()
  with open(path, "rb") as f:
    return f.read()


def write_bytes_atomically(path: str, data: bytes) -> None:
  if not is_remote(path):
    shards.write_bytes_atomically(path, data)
    return
  fs = _filesystems()
  temp = f"{path}.tmp-{uuid.uuid4().hex}"
  with fs.create(temp) as f:
    f.write(data)
  fs.rename([temp], [path])


def write_file_atomically(path: str, write: Callable[[str], object]) -> None:
  """`write(local_path)` makes the file; it then appears at `path` whole or not at all."""
  if not is_remote(path):
    write(path)  # the writers of `shards` are atomic already
    return
  with tempfile.TemporaryDirectory() as directory:
    local = os.path.join(directory, posixpath.basename(path))
    write(local)
    with open(local, "rb") as f:
      write_bytes_atomically(path, f.read())


def names_in(folder: str) -> set[str]:
  """The names of the files directly in `folder` (one listing call, also on a bucket)."""
  if not is_remote(folder):
    return set(os.listdir(folder)) if os.path.isdir(folder) else set()
  matched = _filesystems().match([folder.rstrip("/") + "/*"])
  return {posixpath.basename(m.path) for m in (matched[0].metadata_list if matched else [])}


def list_images(root: str) -> list[str]:
  """Paths relative to `root` (with `/`) of the image files under it, recursive and sorted;
  hidden files and folders left out. Whether each decodes is found out when it is read."""
  if not is_remote(root):
    return [p.replace(os.sep, "/") for p in image_io.list_images(root)]
  extensions = image_io.readable_extensions()
  base = root.rstrip("/") + "/"
  matched = _filesystems().match([base + "**"])
  found = []
  for metadata in (matched[0].metadata_list if matched else []):
    relative = metadata.path[len(base):] if metadata.path.startswith(base) else None
    if (relative and not any(part.startswith(".") for part in relative.split("/"))
        and posixpath.splitext(relative)[1].lower() in extensions):
      found.append(relative)
  if not found and not is_dir(root):
    raise PathNotFoundError(f"image folder not found: {root}")
  return sorted(found)
