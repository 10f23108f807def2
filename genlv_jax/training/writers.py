"""Metric writers: clu's TensorBoard + console writer, plus `WORKDIR/metrics.jsonl`.

Each line of metrics.jsonl is one JSON object with `step` and the metric names
(`train/loss`, `train/lr`, `eval/<task>/psnr`, …), appended as the run goes and kept across
resumes, so that a plot needs nothing but `json.loads` per line.

`clu.metric_writers` imports TensorFlow (for its TensorBoard `SummaryWriter`; even
`clu.metric_writers.interface` does, through the package's `__init__`). TensorFlow takes seconds
to import and prints C++ start-up lines, so this module imports clu only when a writer is made:
in `create_writer`, or on first use of `JsonlWriter` (built on first access, see `__getattr__`).
Importing `genlv_jax.training.writers` (and so the trainer and the entry points) loads no
TensorFlow.
"""

from __future__ import annotations

import functools
import json
import os
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
from etils import epath

if TYPE_CHECKING:
  from clu import metric_writers as _metric_writers_types

__all__ = ["JsonlWriter", "create_writer"]


def _metric_writers():
  """`clu.metric_writers`, imported with TensorFlow's start-up logging turned off.

  Its first import loads TensorFlow, whose C++ code logs to stderr at load time: twice
  "oneDNN custom operations are on. You may see slightly different numerical results …" and
  once "This TensorFlow binary is optimized to use available CPU instructions …". Only
  TensorBoard summaries go through TensorFlow here, so neither line is of use to a user of this
  project. The environment variables must be set before TensorFlow is loaded (they are read by
  its shared libraries); `setdefault` keeps any value the user set. Both are needed: with
  TensorFlow 2.21 the oneDNN line ignores `TF_CPP_MIN_LOG_LEVEL` (it is logged before TF's log
  settings apply) and is printed unless oneDNN is off; `TF_ENABLE_ONEDNN_OPTS=0` only changes
  TensorFlow's own CPU kernels (never JAX/XLA), and the CPU-feature line needs level >= 1.
  Level 1 still shows TensorFlow's warnings and errors.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  from clu import metric_writers  # pylint: disable=g-import-not-at-top

  return metric_writers


@functools.cache
def _jsonl_writer_class() -> type:
  """Defines `JsonlWriter` (a `clu.metric_writers.MetricWriter`), importing clu on first call."""
  metric_writers = _metric_writers()

  class JsonlWriter(metric_writers.MetricWriter):
    """Appends scalars to a JSON-lines file (one object per step and call)."""

    def __init__(self, path: str | os.PathLike):
      self._path = epath.Path(path)
      self._path.parent.mkdir(parents=True, exist_ok=True)
      self._file = self._path.open("a")

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
      record = {"step": int(step)}
      record.update({k: float(np.asarray(v)) for k, v in scalars.items()})
      self._file.write(json.dumps(record) + "\n")
      self._file.flush()

    # Only scalars go to the JSON file; images, texts, … go to TensorBoard.
    def write_images(self, step, images):
      pass

    def write_videos(self, step, videos):
      pass

    def write_audios(self, step, audios, *, sample_rate):
      pass

    def write_texts(self, step, texts):
      pass

    def write_histograms(self, step, arrays, num_buckets=None):
      pass

    def write_hparams(self, hparams):
      pass

    def write_summaries(self, step, values, metadata=None):
      pass

    def flush(self) -> None:
      self._file.flush()

    def close(self) -> None:
      self._file.close()

  JsonlWriter.__module__ = __name__
  JsonlWriter.__qualname__ = "JsonlWriter"
  return JsonlWriter


def __getattr__(name: str):
  # `from genlv_jax.training.writers import JsonlWriter` works as for a plain class; the class
  # (and clu, TensorFlow) is built on that first access, not when this module is imported.
  if name == "JsonlWriter":
    return _jsonl_writer_class()
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_writer(workdir: str, is_primary: bool) -> _metric_writers_types.MetricWriter:
  """TensorBoard event files + console on the primary process (and metrics.jsonl); logging elsewhere."""
  metric_writers = _metric_writers()
  if not is_primary:
    return metric_writers.create_default_writer(None, just_logging=True)
  default = metric_writers.create_default_writer(workdir, asynchronous=False)
  jsonl = _jsonl_writer_class()(os.path.join(workdir, "metrics.jsonl"))
  return metric_writers.MultiWriter([default, jsonl])
