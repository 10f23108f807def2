"""Metric writers: clu's TensorBoard + console writer, plus `WORKDIR/metrics.jsonl`.

Each line of metrics.jsonl is one JSON object with `step` and the metric names
(`train/loss`, `train/lr`, `eval/<task>/psnr`, …), appended as the run goes and kept across
resumes, so that a plot needs nothing but `json.loads` per line. A resumed run trains the steps
after its checkpoint again: it first drops their rows (`drop_rows_after`), so that each logged
step has its rows once.

`clu.metric_writers` (and `clu.periodic_actions`, which imports it) load TensorFlow for the
TensorBoard summaries. TensorFlow takes seconds to import, so it is imported only when a writer
is made (`create_writer`, `periodic_actions`): importing this module, the trainer or an entry
point loads no TensorFlow.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np
from etils import epath

METRICS_FILE = "metrics.jsonl"


def _import_clu(module: str):
  """`clu.<module>`, imported with TensorFlow's C++ start-up lines silenced.

  On import TensorFlow prints "oneDNN custom operations are on …" (twice) and "This TensorFlow
  binary is optimized to use available CPU instructions …": noise here, where TensorFlow only
  writes summaries. Its shared libraries read these variables when they load, hence before the
  import; `setdefault` keeps a user's own values. The oneDNN line goes only with
  `TF_ENABLE_ONEDNN_OPTS=0` (TensorFlow's own CPU kernels; XLA does not read it), the other
  with `TF_CPP_MIN_LOG_LEVEL=1` (warnings and errors still show).
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  import importlib  # pylint: disable=import-outside-toplevel
  return importlib.import_module(f"clu.{module}")


def periodic_actions():
  """`clu.periodic_actions` (the profiling hook), imported quietly on first use."""
  return _import_clu("periodic_actions")


class JsonlWriter:
  """Appends scalars to a JSON-lines file (one object per step and call).

  It has the methods of clu's `MetricWriter` interface (which `MultiWriter` calls) without
  subclassing it, so that it can be imported without TensorFlow. Only scalars go to the file;
  images, texts, … go to TensorBoard.
  """

  def __init__(self, path: str | os.PathLike):
    self._path = epath.Path(path)
    self._path.parent.mkdir(parents=True, exist_ok=True)
    self._file = self._path.open("a")

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    record = {"step": int(step)}
    record.update({k: float(np.asarray(v)) for k, v in scalars.items()})
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()

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


def create_writer(workdir: str, is_primary: bool):
  """A clu `MetricWriter`: TensorBoard event files, the console and metrics.jsonl on the
  primary process; logging elsewhere."""
  metric_writers = _import_clu("metric_writers")
  if not is_primary:
    return metric_writers.create_default_writer(None, just_logging=True)
  default = metric_writers.create_default_writer(workdir, asynchronous=False)
  return metric_writers.MultiWriter([default, JsonlWriter(os.path.join(workdir, METRICS_FILE))])


def drop_rows_after(path: str | os.PathLike, step: int) -> int:
  """Removes from a metrics.jsonl the rows of steps after `step` and any line that is not a row
  (one cut short by a kill mid-write); returns how many lines went.

  The kept rows are written to a temporary file that then replaces the original: a kill at any
  moment leaves the old file or the new one, whole.
  """
  path = epath.Path(path)
  if not path.exists():
    return 0
  text = path.read_text()
  kept, dropped = [], 0
  for line in text.splitlines():
    try:
      record = json.loads(line)
      late = int(record["step"]) > step
    except (ValueError, TypeError, KeyError):  # a torn or foreign line
      late = True
    if late:
      dropped += 1
    else:
      kept.append(line + "\n")
  # A last row without its newline would have the next row appended to it.
  if dropped or (text and not text.endswith("\n")):
    write_text_atomic(path, "".join(kept))
  return dropped


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
  """Writes `text` to a temporary sibling and renames it over `path`: a kill leaves the old file
  or the new one, never half of one (local paths or gs://)."""
  path = epath.Path(path)
  temporary = path.parent / f"{path.name}.tmp"
  temporary.write_text(text)
  temporary.replace(path)
