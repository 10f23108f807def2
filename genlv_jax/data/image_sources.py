"""Random-access sources of clean RGB images (host code; no jax).

`parse_source(spec)` understands
  - `builtin`: works offline — the colour sample photographs bundled with scikit-image and
    scikit-learn, plus deterministic procedural images (gradients, checkerboards, gratings,
    smooth noise, shapes, cells), so that demos and tests need no download;
  - `folder:PATH`: every file under PATH (recursively) that Pillow can read;
  - `tfds:NAME`: a tfds dataset in ArrayRecord format, read with random access through
    `tfds.data_source` (`data_dir` local or gs://; prepare a folder with
    `data/prepare_folder.py`). NAME may carry a config and version (`div2k/bicubic_x4:2.0.0`).

Every source has `__len__`, `__getitem__(i) -> HxWx3 float32 in [0, 1]` and
`read_rgb(i) -> HxWx3 uint8 or float32` (the image before conversion to float, so that the
input pipeline crops first and converts only the crop). Grayscale, RGBA, palette, CMYK and
16-bit images are converted to RGB (alpha composited over white), EXIF orientation is applied,
and unreadable items are skipped and counted (`skipped`, `num_skipped`), with one warning naming
each — a corrupt image never stops a run. A source without a single readable image
raises `NoImagesError` (a `ValueError` with a one-line message). Paired (input, target) folders
for the `paired_dataset` tasks live in `genlv_jax.data.paired_sources`.
"""

from __future__ import annotations

import importlib.util
import io
import os
from typing import Optional, Sequence

import cv2
import numpy as np
from absl import logging
from PIL import Image, ImageOps

from genlv_jax.errors import UserError

_PROCEDURAL_KINDS = ("linear_gradient", "radial_gradient", "checkerboard", "grating",
                     "smooth_noise", "shapes", "cells")
NUM_PROCEDURAL = 28


class ImageSourceError(UserError):
  """A source that cannot be used as configured (unknown spec, missing folder or dataset)."""


class NoImagesError(ImageSourceError):
  """A source in which not a single image can be read."""


def pil_to_rgb(im: Image.Image) -> np.ndarray:
  """Converts any Pillow image to HxWx3 RGB: uint8 for 8-bit modes, float32 in [0, 1] for
  16-bit (I;16*, I: scaled by 1/65535) and float (F: clipped) images. Alpha and palette
  transparency are composited over white."""
  mode = im.mode
  if mode.startswith("I;16") or mode == "I":
    arr = np.asarray(im).astype(np.float32) / 65535.0
    return np.repeat(np.clip(arr, 0, 1)[:, :, None], 3, axis=2)
  if mode == "F":
    return np.repeat(np.clip(np.asarray(im, np.float32), 0, 1)[:, :, None], 3, axis=2)
  if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info):
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    im = Image.alpha_composite(background, rgba)
  return np.asarray(im.convert("RGB"))


def to_float(rgb: np.ndarray) -> np.ndarray:
  """uint8 → float32 /255; float arrays are returned as contiguous float32 (not copied when
  they already are)."""
  if rgb.dtype == np.uint8:
    return rgb.astype(np.float32) * np.float32(1 / 255.0)
  return np.ascontiguousarray(rgb, dtype=np.float32)


def array_to_rgb_float(arr: np.ndarray) -> np.ndarray:
  """Converts an HxW / HxWx{1,3,4} uint8, uint16, bool or float array to HxWx3 float32."""
  if arr.dtype == np.bool_:
    arr = arr.astype(np.float32)
  elif arr.dtype == np.uint16:
    arr = arr.astype(np.float32) / 65535.0
  elif np.issubdtype(arr.dtype, np.integer):
    arr = arr.astype(np.float32) / 255.0
  arr = np.clip(arr.astype(np.float32), 0.0, 1.0)
  if arr.ndim == 2:
    arr = arr[:, :, None]
  if arr.shape[2] == 4:  # composite over white
    alpha = arr[:, :, 3:4]
    arr = arr[:, :, :3] * alpha + (1.0 - alpha)
  if arr.shape[2] == 1:
    arr = np.repeat(arr, 3, axis=2)
  return np.ascontiguousarray(arr[:, :, :3])


# OpenCV >= 4.10 decodes straight to RGB (a pass over the image less than BGR + cvtColor).
_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)


def _cv2_rgb(data: bytes) -> Optional[np.ndarray]:
  buf = np.frombuffer(data, np.uint8)
  if _IMREAD_RGB is not None:
    return cv2.imdecode(buf, _IMREAD_RGB)
  bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
  return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _fast_decode(data: bytes) -> Optional[np.ndarray]:
  """RGB uint8 via OpenCV (libjpeg-turbo / libpng, 1.3–2× faster than Pillow here) for the
  files whose conversion is plain, or None to let Pillow decode them:
    - JPEG with its end-of-image marker (OpenCV would return a truncated file half grey;
      Pillow raises); IMREAD_COLOR applies the EXIF orientation as `exif_transpose` does and
      turns gray and CMYK into RGB;
    - 8-bit gray or RGB PNG ending with IEND, without transparency key or EXIF chunk.
  Alpha, palette, 16-bit and everything else go to Pillow (`pil_to_rgb`)."""
  if data[:3] == b"\xff\xd8\xff":
    return _cv2_rgb(data) if b"\xff\xd9" in data[-64:] else None
  if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 33 and data[12:16] == b"IHDR":
    depth, color_type = data[24], data[25]
    header = data[:max(data.find(b"IDAT"), 0)]
    if (depth == 8 and color_type in (0, 2) and b"IEND" in data[-16:]
        and b"tRNS" not in header and b"eXIf" not in header):
      return _cv2_rgb(data)
  return None


def decode_rgb(path_or_file) -> np.ndarray:
  """Reads one image (a path or a binary file object; EXIF orientation applied) as
  HxWx3 RGB, uint8 or float32 (see `pil_to_rgb`)."""
  if isinstance(path_or_file, (str, os.PathLike)):
    with open(path_or_file, "rb") as f:
      data = f.read()
  else:
    data = path_or_file.read()
  rgb = _fast_decode(data)
  if rgb is not None:
    return rgb
  with Image.open(io.BytesIO(data)) as im:
    im.load()
    im = ImageOps.exif_transpose(im) or im
    return pil_to_rgb(im)


def load_image(path: str) -> np.ndarray:
  """Reads one image file (EXIF orientation applied) as HxWx3 float32 RGB in [0, 1]."""
  return np.ascontiguousarray(to_float(decode_rgb(path)))


# ---- builtin -------------------------------------------------------------------------------

# Colour photographs shipped inside the scikit-image and scikit-learn wheels (read from the
# installed package; nothing is downloaded). Missing files are skipped with a warning.
_BUNDLED_PHOTOS = (
    ("skimage", "data", "astronaut.png"), ("skimage", "data", "coffee.png"),
    ("skimage", "data", "chelsea.png"), ("skimage", "data", "rocket.jpg"),
    ("skimage", "data", "hubble_deep_field.jpg"), ("skimage", "data", "ihc.png"),
    ("skimage", "data", "retina.jpg"), ("skimage", "data", "motorcycle_left.png"),
    ("skimage", "data", "color.png"), ("skimage", "data", "logo.png"),
    ("sklearn", "datasets/images", "china.jpg"), ("sklearn", "datasets/images", "flower.jpg"),
)
# Photos are downscaled (area) to this shorter side: enough for 256 px crops, and it bounds the
# memory every data-loader worker spends on the cache.
_MAX_PHOTO_SIDE = 512


def _package_dir(package: str) -> Optional[str]:
  spec = importlib.util.find_spec(package)
  return os.path.dirname(spec.origin) if spec and spec.origin else None


def bundled_photo_paths() -> list[tuple[str, str]]:
  """(name, path) of the bundled colour photos present in this installation."""
  found = []
  for package, subdir, filename in _BUNDLED_PHOTOS:
    root = _package_dir(package)
    path = os.path.join(root, subdir, filename) if root else ""
    if path and os.path.isfile(path):
      found.append((f"{package}:{os.path.splitext(filename)[0]}", path))
    else:
      logging.warning("builtin image %s:%s not installed; skipped", package, filename)
  return found


def _shrink(image: np.ndarray, max_side: int) -> np.ndarray:
  h, w, _ = image.shape
  scale = max_side / min(h, w)
  if scale >= 1.0:
    return image
  size = (max(1, round(w * scale)), max(1, round(h * scale)))
  return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _random_colors(rng: np.random.Generator, n: int) -> np.ndarray:
  """n saturated-ish colours (random hue, mid-high value) as float32 RGB rows."""
  hsv = np.stack([rng.uniform(0, 180, n), rng.uniform(80, 255, n), rng.uniform(90, 255, n)], 1)
  return cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0].astype(np.float32) / 255


def procedural_image(index: int, size: int = 256) -> np.ndarray:
  """Deterministic synthetic RGB image number `index` (kind = index mod 7, seed = index)."""
  rng = np.random.default_rng(10_000 + index)
  kind = _PROCEDURAL_KINDS[index % len(_PROCEDURAL_KINDS)]
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
  c = _random_colors(rng, 6)
  if kind == "linear_gradient":
    a = rng.uniform(0, 2 * np.pi)
    t = np.clip((np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) + 0.5, 0, 1)[:, :, None]
    img = (1 - t) * c[0] + t * c[1]
  elif kind == "radial_gradient":
    cy, cx = rng.uniform(0.2, 0.8, 2)
    t = np.clip(np.hypot(yy - cy, xx - cx) / 0.8, 0, 1)[:, :, None]
    img = (1 - t) * c[0] + t * ((1 - t) * c[1] + t * c[2])
  elif kind == "checkerboard":
    cell = rng.uniform(0.05, 0.2)
    a = rng.uniform(-0.5, 0.5)
    u, v = np.cos(a) * xx - np.sin(a) * yy, np.sin(a) * xx + np.cos(a) * yy
    t = ((np.floor(u / cell) + np.floor(v / cell)) % 2)[:, :, None]
    img = (1 - t) * c[0] + t * c[1]
  elif kind == "grating":
    img = np.zeros((size, size, 3), np.float32)
    for k in range(3):
      f, a, p = rng.uniform(3, 25), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
      wave = 0.5 + 0.5 * np.sin(2 * np.pi * f * (np.cos(a) * xx + np.sin(a) * yy) + p)
      img += wave[:, :, None] * c[k] / 3
    img = img / max(float(img.max()), 1e-6)
  elif kind == "smooth_noise":
    img = np.zeros((size, size, 3), np.float32)
    for octave, weight in ((32, 0.6), (8, 0.3), (2, 0.1)):
      field = rng.standard_normal((size, size, 3)).astype(np.float32)
      field = cv2.GaussianBlur(field, (0, 0), size / octave / 2)
      img += weight * field / max(float(field.std()), 1e-6)
    img = 0.5 + 0.18 * img
  elif kind == "shapes":
    t = yy[:, :, None]
    img = np.ascontiguousarray((1 - t) * c[0] * 0.6 + t * c[1] * 0.6)
    for _ in range(12):
      col = tuple(float(v) for v in _random_colors(rng, 1)[0])
      p = (rng.uniform(0, size, 2)).astype(int)
      r = int(rng.uniform(0.03, 0.2) * size)
      choice = rng.integers(3)
      if choice == 0:
        cv2.circle(img, (int(p[0]), int(p[1])), r, col, -1, cv2.LINE_AA)
      elif choice == 1:
        cv2.rectangle(img, (int(p[0]), int(p[1])), (int(p[0]) + r, int(p[1]) + 2 * r),
                      col, -1, cv2.LINE_AA)
      else:
        q = (rng.uniform(0, size, 2)).astype(int)
        cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), col,
                 max(1, r // 6), cv2.LINE_AA)
  else:  # cells: a coloured Voronoi diagram with shaded borders
    seeds = rng.uniform(0, 1, (16, 2)).astype(np.float32)
    dist = np.stack([np.hypot(yy - sy, xx - sx) for sy, sx in seeds])
    order = np.sort(dist, axis=0)
    palette = _random_colors(rng, 16)
    img = palette[np.argmin(dist, axis=0)]
    img = img * np.clip((order[1] - order[0]) * 20, 0.3, 1)[:, :, None]
  return np.clip(img, 0, 1).astype(np.float32)


class BuiltinSource:
  """Offline images: the bundled colour photos (decoded on first use, then cached), then
  `num_procedural` procedural images of `procedural_size` px."""

  def __init__(self, num_procedural: int = NUM_PROCEDURAL, procedural_size: int = 256):
    self._photos = bundled_photo_paths()
    self._cache: dict[int, np.ndarray] = {}
    self.num_procedural = num_procedural
    self.procedural_size = procedural_size

  @property
  def names(self) -> list[str]:
    return [name for name, _ in self._photos] + [
        f"procedural:{_PROCEDURAL_KINDS[k % len(_PROCEDURAL_KINDS)]}_{k}"
        for k in range(self.num_procedural)]

  def __len__(self) -> int:
    return len(self._photos) + self.num_procedural

  skipped: tuple[str, ...] = ()  # bundled files are checked when listed
  num_skipped = 0

  def read_rgb(self, index: int) -> np.ndarray:
    """Image `index` as read-only float32 (decoded or generated once, then cached: the
    procedural images cost milliseconds each, the whole cache ~40 MB)."""
    n = len(self)
    if not -n <= index < n:
      raise IndexError(f"builtin source has {n} images, index {index}")
    index %= n
    if index not in self._cache:
      if index >= len(self._photos):
        image = procedural_image(index - len(self._photos), self.procedural_size)
      else:
        image = _shrink(load_image(self._photos[index][1]), _MAX_PHOTO_SIDE)
      image.flags.writeable = False
      self._cache[index] = image
    return self._cache[index]

  def __getitem__(self, index: int) -> np.ndarray:
    return self.read_rgb(index).copy()


# ---- folder --------------------------------------------------------------------------------

class FolderSource:
  """Every Pillow-readable file under `root`, recursively, in sorted order.

  Files whose header Pillow cannot parse are skipped when the folder is listed; files that
  fail later, while decoding, are skipped when read (the next readable image is returned in
  their place). Both are counted in `num_skipped` and named once in a warning.
  """

  def __init__(self, root: str):
    if not os.path.isdir(root):
      raise ImageSourceError(f"image folder not found: {root}")
    self.root = root
    self.skipped: list[str] = []
    self._paths: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
      dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
      for name in sorted(filenames):
        if name.startswith("."):
          continue
        path = os.path.join(dirpath, name)
        try:
          with Image.open(path):
            pass
          self._paths.append(path)
        except Exception as e:  # pylint: disable=broad-except
          self._skip(path, e)
    if not self._paths:
      raise NoImagesError(f"no readable images under {root}")

  def _skip(self, path: str, error: Exception) -> None:
    if path not in self.skipped:
      self.skipped.append(path)
      logging.warning("skipping unreadable image %s: %s", path, error)

  @property
  def num_skipped(self) -> int:
    return len(self.skipped)

  @property
  def paths(self) -> Sequence[str]:
    return tuple(self._paths)

  def __len__(self) -> int:
    return len(self._paths)

  def read_rgb(self, index: int) -> np.ndarray:
    """Image `index` as uint8 or float32 RGB; an unreadable file is skipped (counted, named
    once in a warning) and the next readable image is returned in its place."""
    n = len(self._paths)
    if not -n <= index < n:
      raise IndexError(f"folder source has {n} images, index {index}")
    for k in range(n):
      path = self._paths[(index + k) % n]
      if path in self.skipped:
        continue
      try:
        return decode_rgb(path)
      except Exception as e:  # pylint: disable=broad-except
        self._skip(path, e)
    raise NoImagesError(f"no readable images under {self.root}")

  def __getitem__(self, index: int) -> np.ndarray:
    return np.ascontiguousarray(to_float(self.read_rgb(index)))


def parse_source(spec: str, data_dir: str = "", split: str = "train", image_key: str = ""):
  """Builds an image source from its spec: `builtin`, `folder:PATH` or `tfds:NAME`.

  `data_dir`, `split` and `image_key` apply to `tfds:NAME` only.

  Raises:
    ImageSourceError (a ValueError): for an unknown spec, a missing folder or dataset;
      NoImagesError (a subclass) for a source without a readable image.
  """
  spec = spec.strip()
  if spec == "builtin":
    return BuiltinSource()
  if spec.startswith("folder:"):
    return FolderSource(os.path.expanduser(spec[len("folder:"):]))
  if spec.startswith("tfds:") and spec[len("tfds:"):].strip():
    from genlv_jax.data.tfds_source import TfdsSource  # pylint: disable=import-outside-toplevel
    return TfdsSource(spec[len("tfds:"):].strip(), split=split, data_dir=data_dir,
                      image_key=image_key)
  raise ImageSourceError(f"unknown image source {spec!r}: expected 'builtin', 'folder:PATH' "
                         "or 'tfds:NAME'")
