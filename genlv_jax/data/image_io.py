"""Reading and writing single image files for `infer`, `evaluate` and `finetune` (host code).

    image = read_image("photo.jpg")        # HxWx3 float32 RGB in [0, 1]
    write_image("out/photo.png", image)    # format by extension: 8-bit PNG/JPEG/…, float32 .npy

Reading reuses the decoders of `image_sources` (EXIF orientation applied; grayscale, RGBA and
palette images composited/converted to RGB; 16-bit images scaled by 1/65535), and also takes
`.npy` arrays (HxW, HxWx1/3/4; bool, uint8, uint16, other integers within 0–255, or float in
[0, 1]). A missing file raises `FileNotFoundError`, an undecodable one `ImageReadError`; both
are one-line user errors for `genlv_jax.cli`.

Non-finite pixels (NaN, ±infinity: only a `.npy` or float TIFF can hold them) would spread
through the network's convolutions and attention and turn the whole output into NaN, which an
8-bit file stores as black. `read_image` therefore refuses them by default
(`NonFiniteImageError`, naming the file and the count); `nonfinite="replace"` fills each
non-finite pixel with the nearest pixel whose channels are all finite (Euclidean distance:
a hole becomes a smear of its border, not a black patch) and logs a warning with the count.
`write_image` refuses to write non-finite pixels in any format (`ImageWriteError`).
A float `.npy` whose values lie far outside [0, 1] (0–255 data saved as float) is refused
rather than clipped to white.
"""

from __future__ import annotations

import os
import tempfile

import cv2
import numpy as np
from absl import logging
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
  """An output path that cannot be written (unknown format, a directory in the way, …), or an
  image that must not be written (non-finite pixels)."""


class NonFiniteImageError(ImageReadError):
  """An image file holding NaN or infinite values (refused unless asked to replace them)."""


# `read_image(nonfinite=…)`: refuse the file, or replace each non-finite pixel by its nearest
# finite neighbour.
NONFINITE_POLICIES = ("refuse", "replace")
# A float .npy is taken as [0, 1] data and clipped; values beyond this range are not "[0, 1]
# with a little overshoot" (as an unclipped model output has) but another scale (0–255).
_FLOAT_RANGE = (-0.5, 1.5)


def count_nonfinite(image: np.ndarray) -> int:
  """The number of NaN or ±infinite values in `image` (0 for integer arrays)."""
  image = np.asarray(image)
  if not np.issubdtype(image.dtype, np.inexact):
    return 0
  return int(image.size - np.count_nonzero(np.isfinite(image)))


def replace_nonfinite(image: np.ndarray) -> np.ndarray:
  """A copy of an HxW or HxWxC float image in which every pixel with a non-finite channel takes
  the values of the nearest pixel whose channels are all finite (Euclidean distance; ties as
  `scipy.ndimage.distance_transform_edt` breaks them).

  Raises:
    UserError: no pixel is finite (there is nothing to fill from).
  """
  from scipy import ndimage  # pylint: disable=import-outside-toplevel  (only this needs it)
  image = np.asarray(image)
  finite = np.isfinite(image) if image.ndim == 2 else np.all(np.isfinite(image), axis=-1)
  if finite.all():
    return image
  if not finite.any():
    raise UserError("every pixel is non-finite (NaN or infinity): nothing to replace them with")
  _, (rows, cols) = ndimage.distance_transform_edt(~finite, return_indices=True)
  return image[rows, cols]


def _nonfinite_message(path: str, array: np.ndarray) -> str:
  """"N non-finite value(s) … in M pixel(s) of PATH" for an HxW or HxWxC array."""
  bad = ~np.isfinite(array)
  pixels = int(np.count_nonzero(bad if bad.ndim == 2 else np.any(bad, axis=-1)))
  return (f"{int(np.count_nonzero(bad))} non-finite value(s) (NaN or infinity) in {pixels} "
          f"pixel(s) of {path}")


def _refuse_nonfinite(path: str, array: np.ndarray) -> NonFiniteImageError:
  return NonFiniteImageError(f"cannot use image {path}: "
                             + _nonfinite_message(path, array).replace(f" of {path}", ""))


def _check_array(path: str, array: np.ndarray, nonfinite: str) -> np.ndarray:
  """A decoded `.npy` array before its conversion to [0, 1] RGB (which would clip infinity to
  0 or 1 and keep NaN): non-finite values refused or replaced, the value range checked."""
  if array.dtype.kind == "c" or not (array.dtype == np.bool_ or
                                     np.issubdtype(array.dtype, np.number)):
    raise ImageReadError(f"cannot read image {path}: arrays of dtype {array.dtype} are not "
                         "images; use uint8, uint16 or float in [0, 1]")
  if count_nonfinite(array):
    if nonfinite != "replace":
      raise _refuse_nonfinite(path, array)
    logging.warning("replaced %s with the nearest finite pixel", _nonfinite_message(path, array))
    array = replace_nonfinite(array)
  if array.size and array.dtype != np.bool_ and array.dtype != np.uint16:
    low, high = float(array.min()), float(array.max())
    if np.issubdtype(array.dtype, np.integer) and (low < 0 or high > 255):
      raise ImageReadError(f"cannot read image {path}: integer values range from {low:g} to "
                           f"{high:g}; use uint8 (0–255), uint16 (0–65535) or float in [0, 1]")
    if np.issubdtype(array.dtype, np.floating) and not (
        _FLOAT_RANGE[0] <= low and high <= _FLOAT_RANGE[1]):
      raise ImageReadError(f"cannot read image {path}: float values range from {low:.4g} to "
                           f"{high:.4g}, expected [0, 1] (save 0–255 data as uint8, or divide "
                           "by 255)")
  return array


def readable_extensions() -> frozenset[str]:
  """Lower-case file extensions `read_image` understands (Pillow's, plus `.npy`)."""
  return frozenset(ext.lower() for ext in Image.registered_extensions()) | {".npy"}


def read_image(path: str | os.PathLike, nonfinite: str = "refuse") -> np.ndarray:
  """Reads an image file as HxWx3 float32 RGB in [0, 1] (see the module docstring).

  `nonfinite`: "refuse" (default) raises `NonFiniteImageError` for a file holding NaN or
  infinite values; "replace" fills each such pixel from its nearest finite pixel and logs a
  warning naming the file and the count.

  Raises:
    FileNotFoundError: `path` does not exist (or is a directory).
    ImageReadError: the file exists but is not a decodable image (or, `NonFiniteImageError`,
      holds non-finite values and `nonfinite` is "refuse").
  """
  if nonfinite not in NONFINITE_POLICIES:
    raise UserError(f"nonfinite must be one of {', '.join(NONFINITE_POLICIES)}, got "
                    f"{nonfinite!r}")
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
      image = array_to_rgb_float(_check_array(path, array, nonfinite))
    else:
      image = np.ascontiguousarray(to_float(decode_rgb(path)))
  except (PermissionError, ImageReadError):
    raise
  except Exception as e:  # pylint: disable=broad-except  (every decoder failure is "unreadable")
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise ImageReadError(f"cannot read image {path}: {reason}") from e
  if image.shape[0] == 0 or image.shape[1] == 0:
    raise ImageReadError(f"cannot read image {path}: it is empty ({image.shape[:2]})")
  if count_nonfinite(image):  # a float TIFF (Pillow keeps NaN through its clipping)
    if nonfinite != "replace":
      raise _refuse_nonfinite(path, image)
    logging.warning("replaced %s with the nearest finite pixel", _nonfinite_message(path, image))
    image = np.ascontiguousarray(replace_nonfinite(image))
  return image


def to_uint8(image: np.ndarray) -> np.ndarray:
  """[0, 1] float → uint8, clipped and rounded (not truncated: 0.999 is 255)."""
  return (np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray, jpeg_quality: int = 95) -> None:
  """Writes an HxWx3 (or HxW) float image in [0, 1]; the format follows the extension.

  `.npy` keeps float32 values as they are (unclipped: what the model produced); the others
  (`.png .jpg .jpeg .bmp .webp .tif .tiff`) are 8-bit RGB. Missing parent folders are made.
  An image with NaN or infinite values is not written in any format (8-bit would store NaN as
  black without a word).

  Raises:
    ImageWriteError: unknown extension, non-finite pixels, or the file cannot be written.
  """
  path = os.fspath(path)
  ext = os.path.splitext(path)[1].lower()
  if ext not in WRITABLE_EXTENSIONS:
    raise ImageWriteError(f"cannot write {path}: unknown output format {ext or '(none)'!r}; "
                          f"use one of {', '.join(WRITABLE_EXTENSIONS)}")
  image = np.asarray(image, np.float32)
  bad = count_nonfinite(image)
  if bad:
    raise ImageWriteError(f"cannot write {path}: the image has {bad} non-finite value(s) (NaN "
                          "or infinity); nothing was written")
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if ext == ".npy":
      np.save(path, image)
      return
    kwargs = {"quality": int(jpeg_quality)} if _EIGHT_BIT_FORMATS[ext] in ("JPEG", "WEBP") else {}
    Image.fromarray(to_uint8(image)).save(path, format=_EIGHT_BIT_FORMATS[ext], **kwargs)
  except OSError as e:
    raise ImageWriteError(f"cannot write {path}: {e.strerror or e}") from e


def prepare_output_file(path: str | os.PathLike, what: str = "output") -> str:
  """Makes sure a file can be written at `path` before any work: creates its parent folders,
  refuses a folder in its place, and creates (then removes) a probe file beside it, which also
  catches read-only file systems and permissions that `os.access` misjudges (root). Returns
  the path.

  Raises:
    ImageWriteError: the location cannot be written; the message names `what` and why.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    raise ImageWriteError(f"{what} {path} is a folder; give a file name")
  prepare_output_dir(os.path.dirname(os.path.abspath(path)), what, path)
  if os.path.exists(path) and not os.access(path, os.W_OK):
    raise ImageWriteError(f"cannot write {what} {path}: the existing file is read-only")
  return path


def prepare_output_dir(path: str | os.PathLike, what: str = "output",
                       named: str | os.PathLike | None = None) -> str:
  """Creates the folder `path` (and its parents) if needed and checks that files can be made
  in it (a probe file); `named` is the path the user gave, for the message. Returns `path`.

  Raises:
    ImageWriteError: a file is in the way, or the folder cannot be created or written.
  """
  path = os.fspath(path)
  named = os.fspath(named) if named is not None else path
  existing = os.path.abspath(path)  # the deepest part of the path that exists
  while not os.path.exists(existing) and os.path.dirname(existing) != existing:
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    shown = path if existing == os.path.abspath(path) else existing
    raise ImageWriteError(f"cannot write {what} {named}: {shown} is a file, not a folder")
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    where = f" ({e.filename})" if e.filename and e.filename != named else ""
    raise ImageWriteError(f"cannot create the folder of {what} {named}: "
                          f"{e.strerror or e}{where}") from None
  try:
    with tempfile.NamedTemporaryFile(dir=path, prefix=".genlv-write-check-"):
      pass
  except OSError as e:
    raise ImageWriteError(f"cannot write {what} {named}: folder {path} is not writable "
                          f"({e.strerror or e})") from None
  return path


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


def center_square(image: np.ndarray, size: int) -> np.ndarray:
  """The largest central square of `image`, resized to size×size (`resize_square`'s
  interpolation) and clipped to [0, 1]: a clean exemplar or sample made from any photo."""
  side = min(image.shape[:2])
  return np.clip(resize_square(center_crop_to(image, side), size), 0.0, 1.0)


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


