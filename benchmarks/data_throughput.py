"""Input-pipeline throughput: samples/s per core and with workers, per task and for the mix,
side by side with a naive per-image loader in the style of PromptGIP's.

    python benchmarks/data_throughput.py [--tasks NAMES | --paper-names NAMES] [--workers N]
        [--image-size 256] [--seconds 3] [--repeats 1] [--batch 8] [--images DIR] [--format jpg]
        [--no-naive] [--consumer configs/huge.py --mfu 0.4] [--json]

Without --tasks/--paper-names it measures PromptGIP's 12-degradation single-task mix (Gaussian
noise, Gaussian blur, JPEG, low light, rain, salt & pepper, Poisson, ringing, Lucy–Richardson,
inpainting, Laplacian, Canny) mapped onto our catalogue. Both loaders read the same folder of
clean images — by default the builtin source's 40 images at their own sizes (12 photos with
shorter side 300–512 px, 28 procedural 256² images) written to a temporary folder as JPEG
quality 95 (`--format png` for PNG; --images DIR uses yours) — decode them per sample, and
build quadruplets.

- `samples_per_s_per_core`: one process pinned to one core (`data.workers=0`,
  `data.read_threads=0`: batches made in the calling thread; OpenCV and torch single-threaded),
  samples per CPU-second of the process — on a machine shared with other jobs, wall time would
  count their time too;
- `samples_per_s_workers`: `data.workers=N` grain worker processes on every core, samples per
  second of wall time.
Each rate counts the samples of the batches that arrive within --seconds after a warm-up batch
(the best of --repeats such runs). `load_average` in the JSON says how busy the machine was.
`cpu_share` is each task's part of the uniform mix's CPU time (1/rate over the sum): the tasks
that dominate. `--consumer CONFIG` adds what one host of a TPU v4-32 / v5p-64 slice consumes
training CONFIG at `--mfu` (its train step's FLOPs from XLA's cost analysis,
`genlv_jax.training.perf`) and how many cores of this machine's speed the mix needs per host.

The naive loader (`NaivePromptGIPLoader`) repeats the per-sample work of PromptGIP's
`DatasetLowlevel_Train.__getitem__` (single-task branch; repository lyh-18/PromptGIP,
dataset/lowlevel_PromtGIP_dataloader.py and evaluate/add_degradation_various.py): two
`cv2.imread`s, the degradation on the whole images in float64 numpy (the salt & pepper noise
with its per-pixel Python loop, the ringing with a torch conv, Richardson–Lucy with
scikit-image), 8-bit rounding of the four images, random crop, flips/rotation, CHW and stacking.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from typing import Callable, Sequence

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genlv_jax.data import image_sources, input_pipeline, task_selection  # noqa: E402
from genlv_jax.config_defaults import default_config  # noqa: E402

# PromptGIP's 12 single-task degradations → catalogue tasks. Low light has no procedural
# catalogue entry (GLV-Bench's low-light task is LOL data): brightness darkening (×0.7 → ×0.3)
# is the nearest operator (PromptGIP: ×0.3–0.4).
PROMPTGIP_MIX = {
    "GaussianNoise": "gaussian_denoising", "GaussianBlur": "gaussian_deblurring",
    "JPEG": "jpeg_restoration", "LowLight": "brightness_darkening_correction",
    "Rain": "simple_deraining", "SPNoise": "impulse_denoising",
    "PoissonNoise": "poisson_denoising", "Ringing": "ringing_removal",
    "r_l": "lucy_richardson_deconvolution", "Inpainting": "inpainting",
    "Laplacian": "laplacian", "Canny": "canny",
}
HEAVY = task_selection.HEAVY_TASKS


# ---- the naive loader ------------------------------------------------------------------------

def _circular_lowpass(cutoff: float, size: int, pad_to: int) -> np.ndarray:
  from scipy import special  # pylint: disable=import-outside-toplevel
  r = np.hypot(*np.meshgrid(np.arange(size) - (size - 1) / 2, np.arange(size) - (size - 1) / 2))
  with np.errstate(divide="ignore", invalid="ignore"):
    k = cutoff * special.j1(cutoff * r) / (2 * np.pi * r)
  k[(size - 1) // 2, (size - 1) // 2] = cutoff ** 2 / (4 * np.pi)
  return np.pad(k / k.sum(), (pad_to - size) // 2)


class NaivePromptGIPLoader:
  """Per-sample work of PromptGIP's training loader (single-task branch), see module doc."""

  def __init__(self, paths: Sequence[str], size: int, degradations: Sequence[str]):
    self.paths, self.size, self.degradations = list(paths), size, list(degradations)
    self._sinc = _circular_lowpass(1.2, 15, 21)

  @staticmethod
  def read_img(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    return img[:, :, None].repeat(3, 2) if img.ndim == 2 else img[:, :, :3]

  def _degrade(self, img: np.ndarray, kind: str) -> np.ndarray:
    """One image through PromptGIP's operator of `kind` (float64 numpy, as theirs)."""
    if kind == "GaussianNoise":
      return np.clip(img + np.random.normal(0, 1, img.shape) * random.uniform(10, 50) / 255, 0, 1)
    if kind == "GaussianBlur":
      return cv2.GaussianBlur(img.copy(), (15, 15), random.uniform(2, 4))
    if kind == "JPEG":
      u8 = np.uint8((img.clip(0, 1) * 255.0).round())
      _, enc = cv2.imencode(".jpg", u8, [int(cv2.IMWRITE_JPEG_QUALITY), random.randint(10, 40)])
      return np.float32(cv2.imdecode(enc, 1) / 255.0)
    if kind == "LowLight":
      return img * random.uniform(0.3, 0.4)
    if kind == "Rain":
      return self._rain(img, random.uniform(40, 200))
    if kind == "SPNoise":
      out = np.copy(img)
      for i in range(img.shape[0]):  # PromptGIP's add_sp_noise: a Python loop over pixels
        for j in range(img.shape[1]):
          if random.random() >= 0.95:
            out[i][j] = 1 if random.random() < 0.5 else 0
      return out
    if kind == "PoissonNoise":
      return np.clip(np.random.poisson(img * 100).astype(np.float32) / 100, 0, 1)
    if kind == "Ringing":
      return self._ringing(img)
    if kind == "r_l":
      from skimage import restoration  # pylint: disable=import-outside-toplevel
      x = np.pad(img.transpose(2, 0, 1)[None].astype(np.float64),
                 ((0, 0), (0, 0), (7, 7), (7, 7)), "linear_ramp")
      x = restoration.richardson_lucy(x, np.ones((1, 1, 5, 5)) / 25, 1)
      return x[0, :, 7:-7, 7:-7].transpose(1, 2, 0)
    if kind == "Inpainting":
      num, thick = random.randint(5, 10), random.randint(5, 10)
      mask = np.zeros(img.shape, np.uint8)
      for _ in range(num):
        pts = np.array([[random.randint(0, img.shape[1]), random.randint(0, img.shape[0])]
                        for _ in range(2)], np.int32).reshape(-1, 1, 2)
        mask = cv2.polylines(mask, [pts], False, (1, 1, 1), thick)
      return np.clip(img + mask if random.random() < 0.5 else img - mask, 0, 1)
    raise ValueError(kind)

  def _rain(self, img: np.ndarray, value: float) -> np.ndarray:
    img = img * 255
    h, w = img.shape[0] - img.shape[0] % 4, img.shape[1] - img.shape[1] % 4
    img = img[:h, :w]
    noise = np.random.uniform(0, 256, img.shape[:2])
    noise[np.where(noise < 256 - value * 0.01)] = 0
    noise = cv2.filter2D(noise, -1, np.array([[0, 0.1, 0], [0.1, 8, 0.1], [0, 0.1, 0]]))
    length, angle = np.random.randint(30, 41), np.random.randint(-45, 45)
    width = int(np.random.choice([3, 5, 7, 9, 11]))
    rot = cv2.getRotationMatrix2D((length / 2, length / 2), angle - 45, 1 - length / 100.0)
    k = cv2.GaussianBlur(cv2.warpAffine(np.diag(np.ones(length)), rot, (length, length)),
                         (width, width), 0)
    blurred = cv2.filter2D(noise, -1, k)
    cv2.normalize(blurred, blurred, 0, 255, cv2.NORM_MINMAX)
    rain = np.repeat(np.array(blurred, dtype=np.uint8)[:, :, None], 3, 2)
    return np.clip(img.astype("float32") + rain, 0, 255) / 255.0

  def _ringing(self, img: np.ndarray) -> np.ndarray:
    try:
      import torch  # pylint: disable=import-outside-toplevel
      from torch.nn import functional as F  # pylint: disable=import-outside-toplevel
    except ImportError:  # no torch: the same filter through OpenCV (faster than theirs)
      out = cv2.filter2D(img.astype(np.float32), -1, self._sinc.astype(np.float32),
                         borderType=cv2.BORDER_REFLECT_101)
      return np.clip((out * 255).round(), 0, 255) / 255.0
    x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).float()[None]
    x = F.pad(x, (10, 10, 10, 10), mode="reflect").view(3, 1, *x.shape[2:] + np.array(20))
    x = F.conv2d(x, torch.FloatTensor(self._sinc).view(1, 1, 21, 21)).view(1, 3, *img.shape[:2])
    x = torch.clamp((x * 255.0).round(), 0, 255) / 255.0
    out = x[0].numpy().transpose(1, 2, 0)[:, :, ::-1]
    return (out * 255.0).round().astype(np.uint8) / 255.0

  @staticmethod
  def _edges(img: np.ndarray, canny: bool) -> np.ndarray:
    u8 = cv2.cvtColor(cv2.GaussianBlur(np.clip(img * 255, 0, 255).astype(np.uint8), (3, 3), 0),
                      cv2.COLOR_BGR2GRAY)
    edge = cv2.Canny(u8, 50, 200) if canny else cv2.Laplacian(u8, cv2.CV_16S)
    return np.expand_dims(cv2.convertScaleAbs(edge).astype(np.float32) / 255., 2).repeat(3, 2)

  def __getitem__(self, index: int) -> np.ndarray:
    del index  # PromptGIP draws its images at random
    kind = random.choice(self.degradations)
    hq1 = self.read_img(self.paths[random.randint(0, len(self.paths) - 1)])
    hq2 = self.read_img(self.paths[random.randint(0, len(self.paths) - 1)])
    hq1, hq2 = [cv2.resize(np.copy(x), (self.size, self.size), interpolation=cv2.INTER_LINEAR)
                if min(x.shape[:2]) < self.size else x for x in (hq1, hq2)]
    if kind in ("Laplacian", "Canny"):
      lq1, lq2 = hq1.copy(), hq2.copy()
      hq1, hq2 = self._edges(hq1, kind == "Canny"), self._edges(hq2, kind == "Canny")
    else:
      lq1, lq2 = self._degrade(hq1.copy(), kind), self._degrade(hq2.copy(), kind)
    quads = [np.clip(x * 255, 0, 255).round().astype(np.uint8).astype(np.float32) / 255.0
             for x in (lq1, lq2, hq1, hq2)]
    out = []
    for lq, hq in ((quads[0], quads[2]), (quads[1], quads[3])):
      y = random.randint(0, max(0, lq.shape[0] - self.size))
      x = random.randint(0, max(0, lq.shape[1] - self.size))
      out += [lq[y:y + self.size, x:x + self.size], hq[y:y + self.size, x:x + self.size]]
    hflip, vflip, rot = random.random() < 0.5, random.random() < 0.5, random.random() < 0.5
    out = [(x[:, ::-1] if hflip else x) for x in out]
    out = [(x[::-1] if vflip else x) for x in out]
    out = [(x.transpose(1, 0, 2) if rot else x) for x in out]
    return np.stack([np.ascontiguousarray(x.transpose(2, 0, 1)) for x in out])


# ---- measuring --------------------------------------------------------------------------------

REPEATS = 1


def _rate(next_batch: Callable[[], object], batch: int, seconds: float,
          per_cpu_second: bool) -> float:
  """Samples per second of wall time, or per CPU-second of this process (all its threads):
  the per-core rate, robust to other jobs sharing the core. The best of `REPEATS` runs of
  `seconds` each (other jobs only ever slow a run down)."""
  next_batch()  # warm-up: worker start, first decode
  clock = time.process_time if per_cpu_second else time.perf_counter
  best = 0.0
  for _ in range(REPEATS):
    n, t0, w0 = 0, clock(), time.perf_counter()
    while time.perf_counter() - w0 < seconds:
      next_batch()
      n += batch
    best = max(best, n / max(clock() - t0, 1e-9))
  return best


def pipeline_rate(folder: str, task_names: Sequence[str], size: int, batch: int, workers: int,
                  seconds: float) -> float:
  """Samples/s of our pipeline on `folder` with `task_names` (per CPU-second when in-process,
  per wall second with worker processes)."""
  config = default_config()
  config.batch_size, config.image_size, config.seed = batch, size, 0
  config.data.source, config.data.tasks = f"folder:{folder}", ",".join(task_names)
  config.data.workers, config.data.holdout = workers, 0
  # One core: no reader thread, so that no batch of this measurement is still being made
  # (and counted) after it ends — grain's close() lets queued prefetches run to the end.
  config.data.read_threads = 0 if workers == 0 else 1
  iterator = input_pipeline.make_train_iterator(config, 0, 1)
  try:
    return _rate(lambda: next(iterator), batch, seconds, per_cpu_second=workers == 0)
  finally:
    iterator.close()


def naive_rate(folder: str, degradations: Sequence[str], size: int, batch: int,
               seconds: float) -> float:
  """Samples per CPU-second of the naive loader on `folder` (a folder of images only)."""
  paths = sorted(os.path.join(folder, f) for f in os.listdir(folder))
  loader = NaivePromptGIPLoader(paths, size, degradations)
  return _rate(lambda: np.stack([loader[0] for _ in range(batch)]), batch, seconds, True)


class _OneCore:
  """Pins this process (and its OpenCV/torch pools) to one core while active."""

  def __enter__(self):
    self._cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(self._cpus)})
    self._cv2 = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
      import torch  # pylint: disable=import-outside-toplevel
      self._torch = torch.get_num_threads()
      torch.set_num_threads(1)
    except ImportError:
      self._torch = None

  def __exit__(self, *exc):
    os.sched_setaffinity(0, self._cpus)
    cv2.setNumThreads(self._cv2)
    if self._torch:
      import torch  # pylint: disable=import-outside-toplevel
      torch.set_num_threads(self._torch)


def write_images(folder: str, fmt: str = "jpg") -> None:
  """The builtin source's 40 images at their own sizes (12 photos with shorter side 300–512 px,
  28 procedural 256² images) as JPEG quality 95 or PNG files."""
  source = image_sources.BuiltinSource()
  for i in range(len(source)):
    bgr = cv2.cvtColor(np.round(source[i] * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    cv2.imwrite(os.path.join(folder, f"{i:03d}.{fmt}"), bgr,
                [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "jpg" else [])


def run(args: argparse.Namespace) -> dict:
  """Measures everything; returns the JSON-friendly report."""
  if args.tasks:  # names or sets (`procedural`, `acmmm30`), as data.tasks takes them
    names = list(task_selection.select_tasks(args.tasks))
  elif args.paper_names:
    names = list(task_selection.select_tasks([n for n in args.paper_names.split(",") if n]))
  else:
    names = list(PROMPTGIP_MIX.values())
  tmp = None
  folder = args.images
  if not folder:
    tmp = tempfile.TemporaryDirectory()
    folder = tmp.name
    write_images(folder, args.format)
  size, batch, seconds = args.image_size, args.batch, args.seconds
  report = {"image_size": size, "batch": batch, "workers": args.workers, "seconds": seconds,
            "repeats": REPEATS, "load_average": [round(v, 2) for v in os.getloadavg()],
            "cores": len(os.sched_getaffinity(0)),
            "images": args.images or f"the 40 builtin images as {args.format} files",
            "tasks": {}}
  for name in names:
    with _OneCore():
      single = pipeline_rate(folder, [name], size, batch, 0, seconds)
    row = {"samples_per_s_per_core": round(single, 1), "heavy": name in HEAVY}
    if args.workers > 0:
      row["samples_per_s_workers"] = round(
          pipeline_rate(folder, [name], size, batch, args.workers, seconds), 1)
    report["tasks"][name] = row
  with _OneCore():
    mix = pipeline_rate(folder, names, size, batch, 0, 2 * seconds)
  report["mix"] = {"samples_per_s_per_core": round(mix, 1)}
  if args.workers > 0:
    report["mix"]["samples_per_s_workers"] = round(
        pipeline_rate(folder, names, size, batch, args.workers, 2 * seconds), 1)
  if not args.no_naive:
    inverse = {v: k for k, v in PROMPTGIP_MIX.items()}
    kinds = [inverse[n] for n in names if n in inverse]
    if kinds:
      with _OneCore():
        naive = naive_rate(folder, kinds, size, batch, 2 * seconds)
      report["naive_promptgip"] = {"degradations": kinds,
                                   "samples_per_s_per_core": round(naive, 1)}
      report["mix"]["speedup_vs_naive_per_core"] = round(mix / naive, 2)
  if tmp is not None:
    tmp.cleanup()
  # Which tasks take the mix's CPU time: in a uniform mix each task's share is 1/rate.
  inverse_rates = {n: 1 / max(r["samples_per_s_per_core"], 1e-9)
                   for n, r in report["tasks"].items()}
  total = sum(inverse_rates.values())
  for name, inv in inverse_rates.items():
    report["tasks"][name]["cpu_share"] = round(inv / total, 4)
  if args.consumer:
    report["consumption"] = consumption(args.consumer, args.mfu,
                                        report["mix"]["samples_per_s_per_core"])
  return report


# Hosts of the pod slices the launch scripts target: (chips per host, peak bf16 TFLOP/s per
# chip; training/perf.py cites the rates). v4-32 is 16 chips on 4 hosts, v5p-64 32 on 8.
HOSTS = {"TPU v4-32": (4, 275.0), "TPU v5p-64": (4, 459.0)}


def consumption(config_path: str, mfu: float, mix_per_core: float) -> dict:
  """Samples/s one host's chips consume training `config_path` at `mfu`, and the cores of
  this machine's speed the mix would need per host to feed them."""
  from genlv_jax.config_io import load_config  # pylint: disable=import-outside-toplevel
  from genlv_jax.training import perf  # pylint: disable=import-outside-toplevel
  config = load_config(config_path)
  flops = perf.train_step_flops(config, 1)  # one image at the config's image_size
  out = {"config": config_path, "image_size": int(config.image_size), "mfu_assumed": mfu,
         "train_step_flops_per_image": flops,
         "train_step_tflops_per_image": round(flops / 1e12, 3), "hosts": {}}
  for name, (chips, peak) in HOSTS.items():
    per_host = chips * peak * 1e12 * mfu / flops
    out["hosts"][name] = {"samples_per_s_per_host": round(per_host, 1),
                          "cores_needed_per_host": round(per_host / max(mix_per_core, 1e-9), 1)}
  return out


def markdown(report: dict) -> str:
  """The report as a Markdown table."""
  lines = ["| task | samples/s, 1 core | samples/s, "
           f"{report['workers']} workers | share of the mix's CPU time |", "|---|---:|---:|---:|"]
  for name, row in report["tasks"].items():
    heavy = " (heavy)" if row["heavy"] else ""
    lines.append(f"| {name}{heavy} | {row['samples_per_s_per_core']} | "
                 f"{row.get('samples_per_s_workers', '–')} | {100 * row['cpu_share']:.1f} % |")
  mix = report["mix"]
  lines.append(f"| **mix (uniform)** | **{mix['samples_per_s_per_core']}** | "
               f"{mix.get('samples_per_s_workers', '–')} | 100 % |")
  if "consumption" in report:
    c = report["consumption"]
    lines.append(f"\n{c['config']} at {c['image_size']}², {c['train_step_tflops_per_image']} "
                 f"TFLOP per image and step, MFU {c['mfu_assumed']}:")
    for host, h in c["hosts"].items():
      lines.append(f"- {host}: {h['samples_per_s_per_host']} samples/s per host, "
                   f"{h['cores_needed_per_host']} cores of this machine's speed per host")
  if "naive_promptgip" in report:
    lines.append(f"| naive PromptGIP-style loader, same mix | "
                 f"{report['naive_promptgip']['samples_per_s_per_core']} | – |")
    lines.append(f"\nMix speed-up over the naive loader, one core: "
                 f"**{mix['speedup_vs_naive_per_core']}×**")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  group = parser.add_mutually_exclusive_group()
  group.add_argument("--tasks", help="comma-separated catalogue names or sets (procedural, "
                     "acmmm30)")
  group.add_argument("--paper-names", help="comma-separated paper names (Tables VI–IX)")
  parser.add_argument("--workers", type=int, default=2, help="grain worker processes")
  parser.add_argument("--image-size", type=int, default=256)
  parser.add_argument("--batch", type=int, default=8, help="batch size of every measurement")
  parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (mixes: 2×)")
  parser.add_argument("--repeats", type=int, default=1, help="report the best of N runs")
  parser.add_argument("--images", default="", help="folder of clean images (default: builtin)")
  parser.add_argument("--format", choices=("jpg", "png"), default="jpg",
                      help="format of the default images (JPEG q95, as ImageNet; or PNG)")
  parser.add_argument("--no-naive", action="store_true", help="skip the naive loader")
  parser.add_argument("--consumer", default="", metavar="CONFIG",
                      help="also report the samples/s a host of TPU v4-32 / v5p-64 consumes "
                      "training this config, and the cores the mix needs to feed it")
  parser.add_argument("--mfu", type=float, default=0.4, help="MFU assumed for --consumer")
  parser.add_argument("--json", action="store_true", help="print one JSON object")
  args = parser.parse_args(argv)
  global REPEATS  # pylint: disable=global-statement
  REPEATS = max(1, args.repeats)
  try:
    report = run(args)
  except ValueError as e:  # unknown task or set: one line
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps(report, indent=1) if args.json else markdown(report))
  return 0


if __name__ == "__main__":
  sys.exit(main())
