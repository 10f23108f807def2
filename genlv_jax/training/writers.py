"""Metric writers: clu's TensorBoard + console writer, plus `WORKDIR/metrics.jsonl`.

Each line of metrics.jsonl is one JSON object with `step` and the metric names
(`train/loss`, `train/lr`, `eval/<task>/psnr`, …), appended as the run goes and kept across
resumes, so that a plot needs nothing but `json.loads` per line.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np
from clu import metric_writers
from etils import epath


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


def create_writer(workdir: str, is_primary: bool) -> metric_writers.MetricWriter:
  """TensorBoard event files + console on the primary process (and metrics.jsonl); logging elsewhere."""
  if not is_primary:
    return metric_writers.create_default_writer(None, just_logging=True)
  default = metric_writers.create_default_writer(workdir, asynchronous=False)
  return metric_writers.MultiWriter([default, JsonlWriter(os.path.join(workdir, "metrics.jsonl"))])
