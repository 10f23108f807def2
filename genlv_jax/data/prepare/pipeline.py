"""The Beam pipeline behind `python -m genlv_jax.data.prepare`: one element per missing shard,
spread over the workers, each written whole by one worker (the only module that imports Beam).

    Create(shard specs) | Reshuffle | ParDo(WriteShard)

The launcher lists each task's items once into `<output>/<task>/items.tsv` (the workers read
their slice from there: a million keys would not fit a Dataflow job graph) and records the
settings in `<output>/<task>/prepare.json`; a rerun with other settings is refused, and one with
the same settings creates only the shards that are missing (each shard and its sidecar are
written to a temporary name and renamed, so a shard that exists is complete). The same pipeline
runs on the DirectRunner (the default: every core, `multi_processing`) and, unchanged, on
Dataflow, Flink or Spark with their pipeline options (`--runner`, `--project`, …).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import threading
from typing import Any, Optional, Sequence

import apache_beam as beam
from absl import logging
from apache_beam.metrics.metric import Metrics, MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from genlv_jax.data.prepare import files, shards
from genlv_jax.data.prepare.items import UnreadableItemError
from genlv_jax.errors import UserError

NAMESPACE = "genlv_prepare"
ITEMS_FILE = "items.tsv"
SETTINGS_FILE = "prepare.json"
SKIPPED_FILE = "skipped.tsv"


def check_beam_args(args: Sequence[str]) -> list[str]:
  """`args` when each is an option of Beam's PipelineOptions (`--runner=…`, `--project …`);
  UserError naming the first that is not (a mistyped option of ours would be lost silently)."""
  known = set(PipelineOptions([]).get_all_options(retain_unknown_options=False))
  for arg in args:
    if arg.startswith("--"):
      name = arg[2:].split("=", 1)[0].replace("-", "_")
      if name not in known:
        raise UserError(f"unrecognised argument {arg.split('=', 1)[0]}: neither an option of "
                        "this command nor a Beam pipeline option")
  return list(args)


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
  """The user's options; without `--runner`, the DirectRunner on every core."""
  args = list(beam_args)
  given = {a[2:].split("=", 1)[0].replace("-", "_") for a in args if a.startswith("--")}
  if "runner" not in given:
    args.insert(0, "--runner=DirectRunner")
    if "direct_running_mode" not in given:
      args.append("--direct_running_mode=multi_processing")
    if "direct_num_workers" not in given:
      args.append("--direct_num_workers=0")  # 0: one worker per core
    if "default_sdk_harness_log_level" not in given:  # the workers' start-up chatter
      args.append("--default_sdk_harness_log_level=WARNING")
  return PipelineOptions(args)


@dataclasses.dataclass(frozen=True)
class ShardSpec:
  task: str
  name: str
  start: int
  stop: int


class WriteShard(beam.DoFn):
  """Makes the records of one shard's items and writes the shard (sidecar first)."""

  def __init__(self, job, output: str):
    super().__init__()
    self.job, self.output = job, output
    self.records = Metrics.counter(NAMESPACE, "records")
    self.skipped = Metrics.counter(NAMESPACE, "skipped_inputs")
    self.written = Metrics.counter(NAMESPACE, "shards_written")
    self._items: dict[str, list[str]] = {}

  def setup(self):
    self.job.setup()

  def _lines(self, task: str) -> list[str]:
    if task not in self._items:  # once per worker process and task
      data = files.read_bytes(files.join(self.output, task, ITEMS_FILE))
      self._items[task] = data.decode("utf-8").splitlines()
    return self._items[task]

  def process(self, element: tuple):
    spec = ShardSpec(*element)
    records, skipped = [], []
    for line in self._lines(spec.task)[spec.start:spec.stop]:
      try:
        records.extend(self.job.make(spec.task, line))
      except UnreadableItemError as e:
        skipped.append([self.job.key(line), str(e)])
        logging.warning("%s: skipping %s: %s", spec.task, self.job.key(line), e)
    path = files.join(self.output, spec.task, spec.name)
    sidecar = {"records": len(records), "skipped": skipped}
    files.write_bytes_atomically(path + shards.SIDECAR_SUFFIX,
                                 json.dumps(sidecar, sort_keys=True).encode())
    files.write_file_atomically(path, lambda local: shards.write_array_record(local, records))
    self.records.inc(len(records))
    self.skipped.inc(len(skipped))
    self.written.inc()
    yield spec.name


def _digest(lines: Sequence[str]) -> str:
  return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def plan_shards(job, output: str, shard_size: int) -> tuple[list, list[ShardSpec], dict]:
  """Writes each task's items and settings (checking those of an earlier run); returns (units,
  the specs of the missing shards, {task: all its shard names})."""
  if shard_size < 1:
    raise UserError(f"--shard-size must be at least 1, got {shard_size}")
  units = job.plan()
  missing, names = [], {}
  for unit in units:
    folder = files.join(output, unit.task)
    count = max(1, math.ceil(len(unit.items) / shard_size))
    settings = {**job.settings(), "task": unit.task, "format": shards.VERSION,
                "items": len(unit.items), "items_sha256": _digest(unit.items),
                "shard_size": shard_size, "num_shards": count}
    path = files.join(folder, SETTINGS_FILE)
    if files.exists(path):
      before = json.loads(files.read_bytes(path))
      changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
      if changed:
        raise UserError(f"{folder} was prepared with other settings ({', '.join(changed)} "
                        "differ); give another --output or delete it")
    else:
      if not files.is_remote(folder):
        os.makedirs(folder, exist_ok=True)
      files.write_bytes_atomically(files.join(folder, ITEMS_FILE),
                                   ("\n".join(unit.items) + "\n").encode())
      files.write_bytes_atomically(path, (json.dumps(settings, indent=1, sort_keys=True)
                                          + "\n").encode())
    names[unit.task] = [shards.shard_name(unit.split, s, count) for s in range(count)]
    for s, name in enumerate(names[unit.task]):
      if not files.exists(files.join(folder, name)):
        missing.append(ShardSpec(unit.task, name, s * shard_size,
                                 min((s + 1) * shard_size, len(unit.items))))
  return units, missing, names


class _Progress:
  """A bar of the shards finished, from their files (any runner: the launcher watches the
  output), refreshed in a thread while the pipeline runs."""

  def __init__(self, output: str, specs: Sequence[ShardSpec], enabled: bool):
    self._output = output
    self._wanted: dict[str, set[str]] = {}
    for s in specs:
      self._wanted.setdefault(s.task, set()).add(s.name)
    self._stop = threading.Event()
    self._thread = None
    if enabled and specs:
      from tqdm import tqdm  # pylint: disable=import-outside-toplevel
      self._bar = tqdm(total=len(specs), desc="shards", unit="shard", disable=None)
      self._thread = threading.Thread(target=self._watch, daemon=True)
      self._thread.start()

  def _watch(self):
    # One listing per task folder and poll: a bucket is not asked once per shard.
    interval = 10.0 if files.is_remote(self._output) else 1.0
    done = 0
    while True:
      stopping = self._stop.wait(interval)
      now = sum(len(names & files.names_in(files.join(self._output, task)))
                for task, names in self._wanted.items())
      self._bar.update(now - done)
      done = now
      if stopping:
        self._bar.close()
        return

  def close(self):
    if self._thread is not None:
      self._stop.set()
      self._thread.join()


def _counters(result) -> dict[str, int]:
  try:
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
  except Exception:  # pylint: disable=broad-except  (a runner without metrics)
    return {}
  out = {}
  for counter in query["counters"]:
    value = counter.committed if counter.committed is not None else counter.attempted
    out[counter.key.metric.name] = out.get(counter.key.metric.name, 0) + int(value or 0)
  return out


def run(job, output: str, shard_size: int, beam_args: Sequence[str],
        progress: bool = True) -> dict[str, Any]:
  """Plans, runs the pipeline over the missing shards, and summarises every shard of the
  output (this run's and earlier ones'): {task: {records, shards, written, skipped, notes}},
  plus `_counters` (this run's Beam counters) and `_names` (each task's shard names)."""
  options = pipeline_options(beam_args)
  runner = str(options.get_all_options().get("runner") or "")
  if not files.is_remote(output) and runner not in ("DirectRunner", "PrismRunner"):
    # Workers of a cluster write where --output points on their own machines.
    logging.warning("--output %s is a local path and the runner is %s: its workers must see "
                    "the same folder (a bucket, or a shared mount)", output, runner)
  units, missing, names = plan_shards(job, output, shard_size)
  counters: dict[str, int] = {}
  if missing:
    bar = _Progress(output, missing, progress)
    try:
      pipeline = beam.Pipeline(options=options)
      _ = (pipeline
           | "Shards" >> beam.Create([dataclasses.astuple(s) for s in missing])
           | "Spread" >> beam.Reshuffle()
           | "Write" >> beam.ParDo(WriteShard(job, output)))
      result = pipeline.run()
      result.wait_until_finish()
    finally:
      bar.close()
    counters = _counters(result)
  written = {(s.task, s.name) for s in missing}
  summary: dict[str, Any] = {"_counters": counters, "_names": names}
  for unit in units:
    folder = files.join(output, unit.task)
    records, skipped = 0, []
    for name in names[unit.task]:
      sidecar = json.loads(files.read_bytes(files.join(folder, name + shards.SIDECAR_SUFFIX)))
      records += sidecar["records"]
      skipped += sidecar["skipped"]
    files.write_bytes_atomically(files.join(folder, SKIPPED_FILE),
                                 "".join(f"{k}\t{why}\n" for k, why in skipped).encode())
    summary[unit.task] = {
        "records": records, "shards": len(names[unit.task]),
        "written": sum((unit.task, n) in written for n in names[unit.task]),
        "skipped": skipped, "notes": unit.notes, "folder": folder}
  return summary


def format_summary(summary: dict, limit: int = 20) -> str:
  """The summary for the terminal: per task its records and shards, and the skipped inputs."""
  lines = []
  for task, s in summary.items():
    if task.startswith("_"):
      continue
    lines.append(f"{task}: {s['records']} record(s) in {s['shards']} shard(s) under "
                 f"{s['folder']} ({s['written']} written now, {s['shards'] - s['written']} "
                 "already there)")
    lines += [f"  {note}" for note in s["notes"]]
    if s["skipped"]:
      lines.append(f"  skipped {len(s['skipped'])} input(s) (all listed in "
                   f"{files.join(s['folder'], SKIPPED_FILE)}):")
      lines += [f"    {key}: {why}" for key, why in s["skipped"][:limit]]
      if len(s["skipped"]) > limit:
        lines.append(f"    … and {len(s['skipped']) - limit} more")
  if summary.get("_counters"):
    lines.append("Beam counters: " + ", ".join(f"{k}={v}" for k, v in
                                                sorted(summary["_counters"].items())))
  return "\n".join(lines) + "\n"


def total_records(summary: dict) -> int:
  return sum(s["records"] for t, s in summary.items() if not t.startswith("_"))


def first_skip(summary: dict) -> Optional[str]:
  for task, s in summary.items():
    if not task.startswith("_") and s["skipped"]:
      return f"{task} {s['skipped'][0][0]}: {s['skipped'][0][1]}"
  return None
