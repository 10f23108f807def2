"""Reading and writing single image files for `infer`, `evaluate` and `finetune` (host code).

    image = read_image("photo.jpg")        # HxWx3 float32 RGB in [0, 1]
    write_image("out/photo.png", image)    # format by extension: 8-bit PNG/JPEG/…, float32 .npy

Reading reuses the decoders of `image_sources` (EXIF orientation applied; grayscale, RGBA and
palette images composited/converted to RGB; 16-bit images scaled by 1/65535), and also takes
`.npy` arrays (HxW, HxWx1/3/4; uint8, uint16 or float in [0, 1]). A missing file raises
`FileNotFoundError`, an undecodable one `ImageReadError`; both are one-line user errors for
`genlv_jax.cli`.
"""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from genlv_jax.data.image_sources import array_to_rgb_float, decode_rgb, to_float
from genlv_jax.errors import PathNotFoundError, UserError

# Formats `write_image` writes with 8 bits per channel (Pillow's format names).
_EIGHT_BIT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP",
                      ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
EIGHT_BIT_EXTENSIONS = tuple(_EIGHT_BIT_FORMATS)
WRITABLE_EXTENSIONS = EIGHT_BIT_EXTENSIONS + (".npy",)


class ImageReadError(UserError):
  """An image file that exists but cannot be decoded."""


class ImageWriteError(UserError):
  """An output path that cannot be written (unknown format, a directory in the way, …)."""


def readable_extensions() -> frozenset[str]:
  """Lower-case file extensions `read_image` understands (Pillow's, plus `.npy`)."""
  return frozenset(ext.lower() for ext in Image.registered_extensions()) | {".npy"}


def read_image(path: str | os.PathLike) -> np.ndarray:
  """Reads an image file as HxWx3 float32 RGB in [0, 1] (see the module docstring).

  Raises:
    FileNotFoundError: `path` does not exist (or is a directory).
    ImageReadError: the file exists but is not a decodable image.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise PathNotFoundError(f"image not found: {path}")
  if os.path.isdir(path):
    raise PathNotFoundError(f"expected an image file, got a directory: {path}")
  try:
    if path.lower().endswith(".npy"):
      array = np.load(path, allow_pickle=False)  # never unpickle what a user points us at
      if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"array of shape {array.shape} is not HxW or HxWx{{1,3,4}}")
      image = array_to_rgb_float(array)
    else:
      image = np.ascontiguousarray(to_float(decode_rgb(path)))
  except PermissionError:
    raise
  except Exception as e:  # pylint: disable=broad-except  (every decoder failure is "unreadable")
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise ImageReadError(f"cannot read image {path}: {reason}") from e
  if image.shape[0] == 0 or image.shape[1] == 0:
    raise ImageReadError(f"cannot read image {path}: it is empty ({image.shape[:2]})")
  return image


def to_uint8(image: np.ndarray) -> np.ndarray:
  """[0, 1] float → uint8, clipped and rounded (not truncated: 0.999 is 255)."""
  return (np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray, jpeg_quality: int = 95) -> None:
  """Writes an HxWx3 (or HxW) float image in [0, 1]; the format follows the extension.

  `.npy` keeps float32 values as they are (unclipped: what the model produced); the others
  (`.png .jpg .jpeg .bmp .webp .tif .tiff`) are 8-bit RGB. Missing parent folders are made.

  Raises:
    ImageWriteError: unknown extension, or the file cannot be written.
  """
  path = os.fspath(path)
  ext = os.path.splitext(path)[1].lower()
  if ext not in WRITABLE_EXTENSIONS:
    raise ImageWriteError(f"cannot write {path}: unknown output format {ext or '(none)'!r}; "
                          f"use one of {', '.join(WRITABLE_EXTENSIONS)}")
  image = np.asarray(image, np.float32)
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if ext == ".npy":
      np.save(path, image)
      return
    kwargs = {"quality": int(jpeg_quality)} if _EIGHT_BIT_FORMATS[ext] in ("JPEG", "WEBP") else {}
    Image.fromarray(to_uint8(image)).save(path, format=_EIGHT_BIT_FORMATS[ext], **kwargs)
  except OSError as e:
    raise ImageWriteError(f"cannot write {path}: {e.strerror or e}") from e


def list_images(root: str | os.PathLike) -> list[str]:
  """Paths relative to `root` of the files with a readable extension under it (recursive,
  sorted, hidden files and folders skipped). Whether they decode is found out when read."""
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise PathNotFoundError(f"image folder not found: {root}")
  extensions = readable_extensions()
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    for name in sorted(filenames):
      if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
        found.append(os.path.relpath(os.path.join(dirpath, name), root))
  return found


def center_crop_to(image: np.ndarray, max_side: int) -> np.ndarray:
  """The central window of at most max_side×max_side (an image within bounds is returned as
  is). A crop, not a resize, so that noise, blur and compression keep their pixel scale."""
  h, w = image.shape[:2]
  ch, cw = min(h, max_side), min(w, max_side)
  y, x = (h - ch) // 2, (w - cw) // 2
  return image[y:y + ch, x:x + cw]


def resize_square_interpolation(height: int, width: int, size: int) -> int:
  """The OpenCV interpolation the authors' `extended_version/inference.py` resizes with:
  bicubic when either side is smaller than the target, area averaging otherwise."""
  return cv2.INTER_CUBIC if height < size or width < size else cv2.INTER_AREA


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
  """An HxWx3 float image resized to size×size as the authors' inference does (their
  `read_img` with 256): `cv2.resize` of the float32 image in [0, 1], interpolation by
  `resize_square_interpolation`, aspect ratio not kept, values not clipped (bicubic may
  overshoot [0, 1] slightly; their model sees that too)."""
  image = np.asarray(image, np.float32)
  interpolation = resize_square_interpolation(image.shape[0], image.shape[1], size)
  out = cv2.resize(image, (size, size), interpolation=interpolation)
  return out[:, :, None] if out.ndim == 2 else out  # cv2 drops a single channel axis


def resize_to_height(image: np.ndarray, height: int) -> np.ndarray:
  """Resizes keeping the aspect ratio (area when shrinking, bicubic when enlarging)."""
  h, w = image.shape[:2]
  width = max(1, round(w * height / h))
  interpolation = cv2.INTER_AREA if height < h else cv2.INTER_CUBIC
  return np.clip(cv2.resize(np.asarray(image, np.float32), (width, height),
                            interpolation=interpolation), 0.0, 1.0)


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], cell_height: int = 192,
                  border: int = 4) -> np.ndarray:
  """Images side by side, one list per row, each scaled to `cell_height`, on white."""
  strips = []
  for row in rows:
    cells = []
    for image in row:
      cell = resize_to_height(np.clip(image, 0.0, 1.0), cell_height)
      cells.append(np.pad(cell, ((border, border), (border, 0), (0, 0)), constant_values=1.0))
    strip = np.concatenate(cells, axis=1)
    strips.append(np.pad(strip, ((0, 0), (0, border), (0, 0)), constant_values=1.0))
  width = max(s.shape[1] for s in strips)
  strips = [np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0)), constant_values=1.0)
            for s in strips]
  return np.concatenate(strips, axis=0)
