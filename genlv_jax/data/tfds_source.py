"""`tfds:NAME`: the images of a tfds dataset in ArrayRecord format, read with random access
through `tfds.data_source` (host code; no jax). Built by `image_sources.parse_source`.

tensorflow_datasets is imported only when such a source is opened, so that the builtin and
folder sources (and grain workers that use them) never pay for it.
"""

from __future__ import annotations

import io

import numpy as np
from absl import logging

from genlv_jax.data.image_sources import (ImageSourceError, NoImagesError, array_to_rgb_float,
                                     decode_rgb, to_float)


class TfdsSource:
  """The images of one split of a tfds dataset stored in ArrayRecord format (random access).

  Records are read with the image feature left encoded (`tfds.decode.SkipDecoding`) and
  decoded here (`image_sources.decode_rgb`), so that a corrupt record is skipped and counted
  like a corrupt file instead of failing inside tfds. The tfds handle is opened lazily and is not pickled:
  each grain worker process opens its own.

  Args:
    name: the tfds name, optionally with config and version (`div2k/bicubic_x4:2.0.0`).
    split: a split name or slice (`train`, `validation`, `train[:90%]`).
    data_dir: where the prepared dataset lives (local path or gs://); "" = tfds' default.
    image_key: the image feature; "" picks `image`, else `hr`, else the only Image feature.
  """

  def __init__(self, name: str, split: str = "train", data_dir: str = "", image_key: str = ""):
    self.name, self.split, self.data_dir = name, split, data_dir
    self.skipped: list[str] = []
    self._ds = None
    self.image_key = image_key
    self._open()
    if len(self._ds) == 0:
      raise NoImagesError(f"tfds dataset {name} split {split!r} is empty")

  def _open(self) -> None:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    where = self.data_dir or "the default tfds data_dir"
    try:
      builder = tfds.builder(self.name, data_dir=self.data_dir or None)
      if not builder.is_prepared():
        raise tfds.core.DatasetNotFoundError(builder)
      if not self.image_key:
        self.image_key = _pick_image_key(builder.info.features, self.name)
      decoders = {self.image_key: tfds.decode.SkipDecoding()}
      self._ds = builder.as_data_source(split=self.split, decoders=decoders)
    except ImageSourceError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      # tfds's own messages can hold object reprs; name the fix instead.
      del e
      raise ImageSourceError(
          f"tfds dataset {self.name} (split {self.split!r}) is not prepared in {where}: "
          f"prepare it (data/README.md: `python data/prepare_folder.py --input DIR --name NAME "
          f"--data-dir DIR`, or tfds's own builder) and set --config.data.data_dir, or train on "
          f"the builtin images with --config.data.source=builtin") from None

  def __getstate__(self) -> dict:
    state = dict(self.__dict__)
    state["_ds"] = None
    return state

  @property
  def num_skipped(self) -> int:
    return len(self.skipped)

  def __len__(self) -> int:
    if self._ds is None:
      self._open()
    return len(self._ds)

  def read_rgb(self, index: int) -> np.ndarray:
    """Record `index`'s image as uint8 or float32 RGB; an undecodable record is skipped
    (counted, named once in a warning) and the next readable one returned in its place."""
    n = len(self)
    if not -n <= index < n:
      raise IndexError(f"tfds source {self.name} has {n} images, index {index}")
    for k in range(n):
      i = (index + k) % n
      label = f"tfds:{self.name}[{self.split}][{i}]"
      if label in self.skipped:
        continue
      try:
        value = self._ds[i][self.image_key]
        if isinstance(value, np.ndarray) and value.dtype != object:  # a decoded array
          plain = value.dtype == np.uint8 and value.ndim == 3 and value.shape[2] == 3
          return value if plain else array_to_rgb_float(value)
        return decode_rgb(io.BytesIO(bytes(value)))
      except Exception as e:  # pylint: disable=broad-except
        self.skipped.append(label)
        logging.warning("skipping unreadable image %s: %s", label, e)
    raise NoImagesError(f"no readable images in tfds dataset {self.name} split {self.split!r}")

  def __getitem__(self, index: int) -> np.ndarray:
    return np.ascontiguousarray(to_float(self.read_rgb(index)))


def _pick_image_key(features, name: str) -> str:
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  keys = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
  for preferred in ("image", "hr"):
    if preferred in keys:
      return preferred
  if len(keys) == 1:
    return keys[0]
  raise ImageSourceError(f"tfds dataset {name} has image features {keys}: choose one with "
                         "data.image_key")
