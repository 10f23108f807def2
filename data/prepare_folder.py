"""Turns a folder of images into a tfds dataset in ArrayRecord format (random access for grain).

    python data/prepare_folder.py --input ~/DIV2K_train_HR --name div2k_hr --data-dir ~/tfds \
        [--split train] [--val-fraction 0.02] [--version 1.0.0]

then train with `--config.data.source=tfds:div2k_hr --config.data.data_dir=~/tfds` (a gs://
data_dir works too). The dataset has the features `image` (encoded image, H×W×3 uint8) and
`filename` (path relative to --input); it is read back with
`tfds.data_source(NAME, data_dir=OUT)`, no builder code needed.

Files are taken recursively, as the `folder:` source takes them. 8-bit RGB JPEG and PNG files
are stored byte for byte; everything else Pillow reads (grayscale, RGBA, palette, 16-bit,
EXIF-rotated, WebP, TIFF, …) is converted to 8-bit RGB and stored as PNG. Unreadable files are
skipped, counted and named in a warning. With --val-fraction f, a file goes to the
`validation` split when the CRC32 of its relative path falls in the lowest fraction f — stable
when files are added. A user mistake prints one line and exits with status 2. Prints one JSON
line: the name, data_dir, the number of examples per split, and the files skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zlib
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np
from absl import logging
from PIL import Image

if __package__ in (None, ""):  # run as a script: make the repository importable
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genlv_jax.data import image_sources  # pylint: disable=wrong-import-position

EXIT_USAGE = 2
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class UsageError(Exception):
  """A mistake of the user's: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):

  def error(self, message: str):  # type: ignore[override]
    raise UsageError(message)


def split_of(relpath: str, split: str, val_fraction: float) -> str:
  """`validation` for a stable pseudo-random fraction of the files, else `split`."""
  if val_fraction > 0 and zlib.crc32(relpath.encode()) / 2**32 < val_fraction:
    return "validation"
  return split


def encoded_rgb(path: str) -> bytes:
  """The file's bytes when it is an 8-bit RGB JPEG/PNG without EXIF rotation, else the image
  converted to 8-bit RGB and encoded as PNG. Raises on an unreadable file."""
  with Image.open(path) as im:
    plain = (im.format in ("JPEG", "PNG") and im.mode == "RGB"
             and im.getexif().get(0x0112, 1) == 1)
  rgb = image_sources.decode_rgb(path)  # decodes fully: catches truncated files too
  if plain:
    with open(path, "rb") as f:
      return f.read()
  if rgb.dtype != np.uint8:
    rgb = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
  ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
  if not ok:
    raise ValueError("PNG encoding failed")
  return buf.tobytes()


class _Examples:
  """The (key, example) pairs of one split; iterable more than once, as tfds may need."""

  def __init__(self, root: str, paths: Sequence[str], skipped: list[str]):
    self._root, self._paths, self._skipped = root, paths, skipped

  def __iter__(self) -> Iterator[tuple[str, dict]]:
    for path in self._paths:
      rel = os.path.relpath(path, self._root)
      try:
        data = encoded_rgb(path)
      except Exception as e:  # pylint: disable=broad-except
        if path not in self._skipped:
          self._skipped.append(path)
          logging.warning("skipping unreadable image %s: %s", path, e)
        continue
      yield rel, {"image": data, "filename": rel}


def prepare(input_dir: str, name: str, data_dir: str, split: str = "train",
            val_fraction: float = 0.0, version: str = "1.0.0") -> dict:
  """Writes the dataset; returns {"name", "data_dir", "splits": {split: n}, "skipped": [...]}.

  Raises:
    UsageError: bad name, existing dataset, or a folder without readable images.
  """
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  if not _NAME.match(name):
    raise UsageError(f"--name {name!r} must be snake_case (a-z, 0-9, _), starting with a letter")
  if name in tfds.list_builders(with_community_datasets=False):
    raise UsageError(f"--name {name!r} is a dataset registered in tfds; choose another name")
  if not 0.0 <= val_fraction < 1.0:
    raise UsageError(f"--val-fraction must be in [0, 1), got {val_fraction}")
  try:
    folder = image_sources.FolderSource(input_dir)
  except ValueError as e:
    raise UsageError(str(e)) from None
  skipped = list(folder.skipped)
  by_split: dict[str, list[str]] = {}
  for path in folder.paths:
    by_split.setdefault(split_of(os.path.relpath(path, input_dir), split, val_fraction),
                        []).append(path)

  class FolderImages(tfds.dataset_builders.AdhocBuilder, skip_registration=True):
    # tfds derives a `code_path` (for checksum files) from the builder's module, which on
    # Python >= 3.9 needs the optional `importlib_resources`; a folder has no checksums.
    code_path = None

  features = tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8),
      "filename": tfds.features.Text(),
  })
  builder = FolderImages(
      name=name, version=version, features=features, data_dir=data_dir,
      description=f"Images of the folder {os.path.abspath(input_dir)} "
                  "(genlv-jax data/prepare_folder.py).",
      split_datasets={s: _Examples(input_dir, p, skipped) for s, p in by_split.items()},
      file_format="array_record")
  if builder.is_prepared():
    raise UsageError(f"dataset {name} {version} already exists in {data_dir}; remove it or "
                     "pass another --version")
  tfds.disable_progress_bar()
  builder.download_and_prepare(file_format="array_record")
  splits = {s: int(info.num_examples) for s, info in builder.info.splits.items()}
  if not any(splits.values()):
    raise UsageError(f"no readable images under {input_dir}")
  return {"name": name, "data_dir": str(data_dir), "splits": splits, "skipped": skipped}


def build_parser() -> argparse.ArgumentParser:
  parser = _Parser(prog="python data/prepare_folder.py", description=__doc__.split("\n")[0])
  parser.add_argument("--input", required=True, help="folder of images (recursive)")
  parser.add_argument("--name", required=True, help="dataset name (snake_case)")
  parser.add_argument("--data-dir", required=True, help="tfds data_dir to write to (or gs://)")
  parser.add_argument("--split", default="train", help="split of the images (default train)")
  parser.add_argument("--val-fraction", type=float, default=0.0,
                      help="fraction of files put in a `validation` split (default 0)")
  parser.add_argument("--version", default="1.0.0", help="dataset version (default 1.0.0)")
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the command; returns the exit status."""
  try:
    args = build_parser().parse_args(argv)
    data_dir = args.data_dir if "://" in args.data_dir else os.path.expanduser(args.data_dir)
    summary = prepare(os.path.expanduser(args.input), args.name, data_dir, args.split,
                      args.val_fraction, args.version)
  except UsageError as e:
    print(f"error: {e}", file=sys.stderr)
    return EXIT_USAGE
  print(json.dumps(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
