"""Where the pairs of the 23 `paired_dataset` tasks are found: the dataset each was trained on
(the journal's Tables VI, VII and IX, via the catalogue), the authors' prepared folder, the
layouts of the raw downloads we know, and how their files pair up (host code; no Beam).

The authors' layout (chxy95/GenLV, `extended_version/dataset/genlv_100_dataloader.py`) is
`GenLV_Processed_Data/<Category>/<Folder>/Train_256/{input,target}`: the training split, resized
to 256 px. SDR-to-HDR and HDR-to-SDR share `Enhancement/SDRHDR/{SDR,HDR}/Train_256`, one
direction each; shadow removal mixes `ShadowRemovalISTD` and `ShadowRemovalSRD`. The teacher
outputs of the `model` tasks sit in the same tree (`AUTHORS_MODEL_FOLDERS`), the styles as
`Stylization/<Style>/Train_256_target/<k>_<name>.<ext>` over the FiveK inputs of
`Enhancement/PhotoRetouch/Train_256/target/<name>.jpg`.

Pairing: without rules, an input pairs with the target of the same relative path and stem, else
with the target whose stem is the input's cut at a `_` or `-`, longest first (RESIDE ITS
`1_1_0.9.png` → `1.png`; RELLISUR `1-2.5.png` → `1.png`), as `paired_sources` pairs folders.
A layout with stem rules (regular expressions whose first group is the pairing key) joins every
input with every target of the same key, and ignores files that match no rule.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from typing import Optional

from genlv_jax.data import task_sources
from genlv_jax.data.prepare import files
from genlv_jax.errors import UserError
from genlv_jax.tasks import all_tasks, get_task


@dataclasses.dataclass(frozen=True)
class Layout:
  """Two folders (relative to the dataset root) holding inputs and targets."""
  input: str
  target: str
  what: str = ""
  input_rule: str = ""
  target_rule: str = ""

  def describe(self, root: str) -> str:
    where = files.join(root, self.input), files.join(root, self.target)
    return f"{where[0]} + {where[1]}" + (f" ({self.what})" if self.what else "")


@dataclasses.dataclass(frozen=True)
class PairedDataset:
  """One paired task: its dataset (as the catalogue names it), the split trained on, the
  authors' prepared folders and the raw layouts we recognise."""
  task: str
  split: str
  raw: tuple[Layout, ...] = ()

  @property
  def dataset(self) -> str:
    return str(get_task(self.task).dataset)

  @property
  def authors(self) -> tuple[Layout, ...]:
    return authors_layouts(self.task)


def authors_layouts(task: str) -> tuple[Layout, ...]:
  """The authors' prepared folders of `task` as layouts, from the training pipeline's table
  of their folder names (`task_sources.AUTHORS_LAYOUT`); () for a task they do not prepare."""
  folder = task_sources.AUTHORS_LAYOUT.get(task)
  if folder is None:
    return ()
  if folder.layout == "styles":  # targets <k>_<name> (k = 1..5 style images) over FiveK <name>
    return tuple(Layout(task_sources.FIVEK_INPUT, f"{f}/Train_256_target",
                        "the authors' FiveK inputs and style outputs", r"(.+)$", r"\d+_(.+)$")
                 for f in folder.folders)
  return tuple(Layout(f"{f}/{folder.input}", f"{f}/{folder.target}",
                      "the authors' GenLV_Processed_Data") for f in folder.folders)


_TRAIN = "training split"

PAIRED_DATASETS: tuple[PairedDataset, ...] = (
    # Table VI, groups 9 and 10.
    PairedDataset("dehazing", "ITS (train); SOTS-indoor is its test set",
                  (Layout("hazy", "clear", "RESIDE ITS: N_k_beta.png → N.png"),)),
    PairedDataset("desnowing", "Snow100K training set",
                  (Layout("all/synthetic", "all/gt", "Snow100K"),)),
    PairedDataset("complex_deraining", "Rain13K (train); Rain100H/L, Test100/1200/2800 test"),
    PairedDataset("raindrop_removal", "Raindrop train",
                  (Layout("train/data", "train/gt", "Raindrop: N_rain.png ↔ N_clean.png",
                          r"(.+)_rain$", r"(.+)_clean$"),)),
    PairedDataset("cloud_removal", _TRAIN),
    PairedDataset("dust_removal", _TRAIN),
    PairedDataset("marine_snow_removal", _TRAIN),
    PairedDataset("real_lowlight_sr", "RELLISUR train"),
    PairedDataset("shadow_removal", "ISTD train (and SRD: the authors mix both)",
                  (Layout("train/train_A", "train/train_C", "ISTD: shadow / shadow-free"),)),
    PairedDataset("flare_removal", _TRAIN),
    PairedDataset("highlight_removal", "SHIQ train",
                  (Layout("train", "train", "SHIQ: N_A.png (input) ↔ N_D.png (diffuse)",
                          r"(.+)_A$", r"(.+)_D$"),)),
    PairedDataset("udc_poled_restoration", _TRAIN),
    PairedDataset("demoireing", _TRAIN),
    PairedDataset("udc_toled_restoration", _TRAIN),
    # Table VII.
    PairedDataset("raw_to_rgb_isp", _TRAIN),
    PairedDataset("lowlight_enhancement", "LOL our485 (train); eval15 is its test set",
                  (Layout("our485/low", "our485/high", "LOL"),)),
    PairedDataset("backlit_enhancement", _TRAIN),
    PairedDataset("photo_retouching", "FiveK expert C (4500 train / 500 test)"),
    PairedDataset("color_correction", "UIEB (890 pairs; 800 train / 90 test)",
                  (Layout("raw-890", "reference-890", "UIEB"),)),
    PairedDataset("sdr_to_hdr", "HDRTV1K train",
                  (Layout("training_set/train_sdr", "training_set/train_hdr", "HDRTV1K"),)),
    PairedDataset("hdr_to_sdr", "HDRTV1K train",
                  (Layout("training_set/train_hdr", "training_set/train_sdr", "HDRTV1K"),)),
    PairedDataset("bokeh_rendering", "EBB! train"),
    # Table IX.
    PairedDataset("perceptual_edge_detection", "BIPED train",
                  (Layout("edges/imgs/train/rgbr/real", "edges/edge_maps/train/rgbr/real",
                          "BIPED"),)),
)
PAIRED_BY_TASK = {d.task: d for d in PAIRED_DATASETS}

# The authors' folders of the teacher outputs (`model` tasks), for `prepare paired` on their
# tree.
AUTHORS_MODEL_FOLDERS: dict[str, tuple[Layout, ...]] = {
    task.name: authors_layouts(task.name) for task in all_tasks()
    if task.source == "model" and task.name in task_sources.AUTHORS_LAYOUT}

GENERIC_LAYOUTS = (Layout("input", "target", "generic"), Layout("Train_256/input",
                   "Train_256/target", "one task folder of the authors' tree"),
                   Layout("train/input", "train/target", "generic"), Layout("lq", "gt", "generic"))


def known_layouts(task: str) -> tuple[tuple[Layout, ...], tuple[Layout, ...]]:
  """(the authors' folders of `task`, the other layouts tried after them, in order: the raw
  downloads, then generic ones)."""
  authors = authors_layouts(task) if task in PAIRED_BY_TASK or task in AUTHORS_MODEL_FOLDERS \
      else ()
  raw = PAIRED_BY_TASK[task].raw if task in PAIRED_BY_TASK else ()
  if task in ("sdr_to_hdr", "hdr_to_sdr"):  # the authors' SDRHDR task folder itself
    raw = raw + (Layout("SDR/Train_256", "HDR/Train_256", "the authors' SDRHDR folder")
                 if task == "sdr_to_hdr" else
                 Layout("HDR/Train_256", "SDR/Train_256", "the authors' SDRHDR folder"),)
  return authors, raw + GENERIC_LAYOUTS


def find_layouts(root: str, task: str) -> list[Layout]:
  """The layouts of `task` present under `root`: every authors' folder found (shadow removal
  has two), else the first other layout whose two folders exist.

  Raises:
    UserError: none is there; the message lists what was looked for.
  """
  authors, others = known_layouts(task)
  present = lambda l: (files.is_dir(files.join(root, l.input))  # noqa: E731
                       and files.is_dir(files.join(root, l.target)))
  found = [l for l in authors if present(l)]
  if found:
    return found
  for layout in others:
    if present(layout):
      return [layout]
  shown = "; ".join(l.describe(root) for l in (authors + others)[:4])
  raise UserError(f"no known layout of {task} under {root}: looked for {shown}, …")


def _stem(relative: str) -> str:
  return posixpath.splitext(relative)[0]


def _prefixes(key: str):
  head, name = posixpath.split(key)
  for i in range(len(name) - 1, 0, -1):
    if name[i] in "_-":
      yield posixpath.join(head, name[:i]) if head else name[:i]


def _rule_key(rule: str, relative: str) -> Optional[str]:
  head, name = posixpath.split(_stem(relative))
  match = re.match(rule, name)
  return None if match is None else posixpath.join(head, match.group(1))


def pair_files(inputs: list[str], targets: list[str], layout: Layout
               ) -> tuple[list[tuple[str, str]], list[str]]:
  """(pairs of relative paths (input, target) in input order, inputs left without a target)."""
  if layout.input_rule or layout.target_rule:
    by_key: dict[str, list[str]] = {}
    for t in targets:
      key = _rule_key(layout.target_rule or r"(.+)$", t)
      if key is not None:
        by_key.setdefault(key, []).append(t)
    pairs, unmatched = [], []
    for i in inputs:
      key = _rule_key(layout.input_rule or r"(.+)$", i)
      if key is None:
        continue  # not a file of this role (SHIQ keeps four kinds in one folder)
      matches = by_key.get(key, [])
      pairs.extend((i, t) for t in matches)
      if not matches:
        unmatched.append(i)
    return pairs, unmatched
  by_stem = {_stem(t): t for t in targets}
  pairs, unmatched = [], []
  for i in inputs:
    stem = _stem(i)
    match = by_stem.get(stem) or next((by_stem[k] for k in _prefixes(stem) if k in by_stem), None)
    if match is None:
      unmatched.append(i)
    else:
      pairs.append((i, match))
  return pairs, unmatched


def list_pairs(root: str, task: str) -> tuple[list[tuple[str, str]], list[str], list[Layout]]:
  """(pairs of paths relative to `root`, unmatched inputs, the layouts used) of `task`."""
  pairs, unmatched = [], []
  layouts = find_layouts(root, task)
  for layout in layouts:
    inputs = files.list_images(files.join(root, layout.input))
    targets = files.list_images(files.join(root, layout.target))
    found, left = pair_files(inputs, targets, layout)
    pairs += [(posixpath.join(layout.input, i), posixpath.join(layout.target, t))
              for i, t in found]
    unmatched += [posixpath.join(layout.input, i) for i in left]
  return pairs, unmatched, layouts
