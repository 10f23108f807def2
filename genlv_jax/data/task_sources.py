"""Where each training task's data comes from, and the check that every configured task has
some (host code; no jax).

A task trains on one of:
  - paired folders: `data.paired` (`TASK=INPUT_DIR|TARGET_DIR`, see `paired_sources`), the
    ArrayRecord shards `python -m genlv_jax.data.prepare` wrote under `data.prepared_root`
    (`<root>/<task>/train-*.array_record`: paired datasets, teacher targets, precomputed heavy
    tasks), or the authors' prepared tree under `data.paired_root` (`AUTHORS_LAYOUT`). Given for a procedural
    task, the pairs replace its synthesis, as the authors train e.g. reflection removal, white
    balance or the CT tasks on prepared pairs;
  - clean images to synthesise from: the task's own source or its domain's in
    `data.task_sources`, else the generic `data.source`.

`data.task_sources` maps a task, or a clean-image domain, to an image source spec
(`builtin`, `folder:PATH`, `tfds:NAME`; tfds specs read `data.data_dir` and `data.split`):

    --config.data.task_sources="ct=folder:/data/ct_slices;satellite=tfds:aid;rtv=folder:/data/fivek"

Domains (`DOMAINS`): the catalogue's `Task.domain`, plus `fivek` for the tasks whose clean images
the authors took from MIT-Adobe FiveK (`FIVEK_TASKS`). A task-level entry wins over its
domain's. The domains of `REQUIRED_DOMAINS` (satellite, ct, mri, infrared, face, weather,
fluid_flow, cosmology) are part of what their tasks mean — CT super-resolution learned on
ImageNet photographs is another task — so such a task without its domain's source (or pairs)
has no data, unless `data.domain_fallback=True` lets it synthesise from `data.source` (said in a
warning). `fivek` and `underwater` are preferences: without their source those tasks synthesise
from `data.source`, as they always did.

Order, per task: `data.paired` > `data.prepared_root` > `data.task_sources[task]` >
`data.task_sources[domain]` > `data.paired_root` > `data.source` (non-domain procedural tasks,
or with `domain_fallback`).

Missing data: a task named in `data.tasks` without data stops the run before training with
`MissingDataError`, one line per such task (`check_training_data`, called by the trainer's
config check and by the input pipeline). The sets (`acmmm30`, `procedural`, `all`) take the
tasks that have data and name the others in one warning, as they always did for paired tasks:
name the tasks to make a run insist on every one of them. `python -m genlv_jax.tasks list
--config C` shows, per task, what it needs and whether the configured run has it.

The authors' layout (`data.paired_root=/data/GenLV_Processed_Data`): `AUTHORS_LAYOUT` maps every
task their loader reads from a prepared folder to its folders, with their folder names; pairs
are matched by file stem as in `paired_sources` (RESIDE-style prefixes included), or by the
naming rules their loader applies (styles, Instagram filters, white balance). Prompt pairs of
the styles, Instagram filters, exposure and real low-light SR are drawn from the same style,
filter or exposure as the input pair (`groups`), as their loader draws them. The 34 tasks they
synthesise on ImageNet (and the mixed degradation) have no folder and stay procedural.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
from absl import logging

from genlv_jax.data import image_sources, paired_sources, records, task_selection
from genlv_jax.data.image_sources import ImageSourceError, NoImagesError
from genlv_jax.errors import UserError
from genlv_jax.tasks import registry

# Domains whose images a task's meaning depends on: no silent fallback to the generic source.
REQUIRED_DOMAINS = ("satellite", "ct", "mri", "infrared", "face", "weather", "fluid_flow",
                    "cosmology")
# Domains the papers took their clean images from, where any photograph serves the operator.
PREFERRED_DOMAINS = ("fivek", "underwater")
DOMAINS = REQUIRED_DOMAINS + PREFERRED_DOMAINS

# The authors feed these from FiveK expert C (their inputs are
# `Enhancement/PhotoRetouch/Train_256/target` in genlv_100_dataloader.py); the catalogue names
# FiveK in `dataset` only, so the domain is given here.
FIVEK_TASKS = ("local_laplacian_filtering", "multi_scale_tm", "pencil_drawing",
               "photographic_style", "rtv")

CROPS = records.CROPS


def task_domain(task: Union[str, registry.Task]) -> Optional[str]:
  """The clean-image domain of a task (None: any photograph)."""
  task = registry.get_task(task)
  return "fivek" if task.name in FIVEK_TASKS else task.domain


class MissingDataError(UserError):
  """Configured tasks without training data: `problems` holds one line per task; the command
  line tools print `summary`, then those lines."""

  def __init__(self, problems: Sequence[str]):
    self.problems = list(problems)
    n = len(self.problems)
    self.summary = (f"{n} task{'s' if n > 1 else ''} in data.tasks {'have' if n > 1 else 'has'}"
                    " no training data (one line each below; `python -m genlv_jax.tasks list "
                    "--config CONFIG` shows every task's)")
    super().__init__(self.summary + ":\n" + "\n".join("  " + p for p in self.problems))


# ---- the authors' prepared tree ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AuthorsFolder:
  """Where the authors' loader reads one task, relative to `GenLV_Processed_Data`.

  Attributes:
    folders: the dataset folder(s) (shadow removal has two, ISTD and SRD).
    layout: "pairs" (`input`/`target` folders matched by stem), "fivek" (inputs are FiveK expert
      C, `Enhancement/PhotoRetouch/Train_256/target`; targets `<folder>/Train_256_target`),
      "styles" (targets `<folder>/Train_256_target/<k>_<stem>`, k the style reference 1–5, on the
      FiveK input `<stem>`), "instagram" (`<id>_<Filter>` processed, `<id>_Original`
      original), "white_balance" (input `<name>_<X>_<Y>`, target `<name>_G_AS`).
    input, target: sub-folders of each dataset folder (layout "pairs").
    group: prompt pairs share the input's "exposure_" (after the last `_` of the input's stem)
      or "exposure-" (after the last `-`) group; styles and filters group by their own rule.
    superbench: the folder may also sit in the sibling tree `SuperBench_Processd_Data`, where
      the authors keep the SuperBench fields.
    reverse: the task maps the rule's target to its input (Instagram filter addition).
  """

  folders: tuple[str, ...]
  layout: str = "pairs"
  input: str = "Train_256/input"
  target: str = "Train_256/target"
  group: str = ""
  superbench: bool = False
  reverse: bool = False


def _pairs(folder: str, **kw) -> AuthorsFolder:
  return AuthorsFolder((folder,), **kw)


def _domain(folder: str, degraded: str, superbench: bool = False) -> AuthorsFolder:
  return AuthorsFolder((folder,), input=degraded, target="Train_target_256",
                       superbench=superbench)


def _swap(folder: AuthorsFolder) -> AuthorsFolder:
  return dataclasses.replace(folder, input=folder.target, target=folder.input)


FIVEK_INPUT = "Enhancement/PhotoRetouch/Train_256/target"  # the FiveK expert C inputs
_SDR_HDR = _pairs("Enhancement/SDRHDR", input="SDR/Train_256", target="HDR/Train_256")
_INSTAGRAM = _pairs("Enhancement/InstagramFilter", layout="instagram",
                    input="Train_256/processed", target="Train_256/original")

# Folder names from chxy95/GenLV, extended_version/dataset/genlv_100_dataloader.py
# (DatasetPrompt_Train's `*_path` arguments and the sub-folders its __init__ joins to them).
AUTHORS_LAYOUT: dict[str, AuthorsFolder] = {
    # Restoration (Train_256/{input,target}).
    "complex_deraining": _pairs("Restoration/Derain"),
    "raindrop_removal": _pairs("Restoration/RainDrop"),
    "marine_snow_removal": _pairs("Restoration/MarineSnowRemoval"),
    "reflection_removal": _pairs("Restoration/ReflectionRemoval"),
    "shadow_removal": AuthorsFolder(("Restoration/ShadowRemovalISTD",
                                     "Restoration/ShadowRemovalSRD")),
    "cloud_removal": _pairs("Restoration/CloudRemoval"),
    "watermark_removal": _pairs("Restoration/WatermarkRemoval"),
    "real_lowlight_sr": _pairs("Restoration/RealLLSR", group="exposure-"),  # <name>-<expo>
    "udc_poled_restoration": _pairs("Restoration/UDCPoled"),
    "udc_toled_restoration": _pairs("Restoration/UDCToled"),
    "dehazing": _pairs("Restoration/Dehaze"),         # <n>_<k>_<beta> -> <n>.png
    "demoireing": _pairs("Restoration/Demoireing"),
    "dust_removal": _pairs("Restoration/DustRemoval"),
    "desnowing": _pairs("Restoration/Desnow"),
    "flare_removal": _pairs("Restoration/FlareRemoval"),
    "highlight_removal": _pairs("Restoration/HighlightRemoval"),
    # Enhancement.
    "lowlight_enhancement": _pairs("Enhancement/LowLight"),
    "backlit_enhancement": _pairs("Enhancement/BacklitEnhance"),
    "exposure_correction": _pairs("Enhancement/ExpoCorrect", group="exposure_"),
    "raw_to_rgb_isp": _pairs("Enhancement/ISP"),
    "local_laplacian_filtering": _pairs("Enhancement/LocalLapFilter", layout="fivek"),
    "photo_retouching": _pairs("Enhancement/PhotoRetouch"),
    "bokeh_rendering": _pairs("Enhancement/RenderBokeh"),
    "underwater_histogram_equalization": _pairs("Enhancement/HistoEqual"),
    "white_balance_correction": _pairs("Enhancement/WhiteBalance", layout="white_balance"),
    "color_correction": _pairs("Enhancement/ColorCorrect"),
    "vignetting_removal": _pairs("Enhancement/VignettingRemoval"),
    "multi_scale_tm": _pairs("Enhancement/MultiScaleTM", layout="fivek"),
    "sdr_to_hdr": _SDR_HDR,
    "hdr_to_sdr": _swap(_SDR_HDR),
    "instagram_filter_removal": _INSTAGRAM,
    "instagram_filter_addition": dataclasses.replace(_INSTAGRAM, reverse=True),
    # Feature extraction.
    "depth_estimation": _pairs("FeatureExtra/DepthEstimate"),
    "perceptual_edge_detection": _pairs("FeatureExtra/PercepEdgeDetect"),
    "salient_object": _pairs("FeatureExtra/SaliencyObject"),
    "hough_line": _pairs("FeatureExtra/HoughLine"),
    "surface_normal": _pairs("FeatureExtra/Normal"),
    "hed_boundary": _pairs("FeatureExtra/HEDBoundary"),
    # Stylization: FiveK inputs, one target folder per task.
    "pencil_drawing": _pairs("Stylization/PencilDrawing", layout="fivek"),
    "photographic_style": _pairs("Stylization/Photographic", layout="fivek"),
    "rtv": _pairs("Stylization/RTV", layout="fivek"),
    "cloisonnism_style": _pairs("Stylization/Cloisonnism", layout="styles"),
    "divisionism_style": _pairs("Stylization/Divisionism", layout="styles"),
    "fauvism_style": _pairs("Stylization/Fauvism", layout="styles"),
    "vermeer_style": _pairs("Stylization/Vermeer", layout="styles"),
    "jojo_style": _pairs("Stylization/JOJO", layout="styles"),
    "raphael_style": _pairs("Stylization/Raphael", layout="styles"),
    "modernism_style": _pairs("Stylization/Modernism", layout="styles"),
    "monet_style": _pairs("Stylization/Monet", layout="styles"),
    "neo_impressionism_style": _pairs("Stylization/NeoImpressionism", layout="styles"),
    "pop_art_style": _pairs("Stylization/PopArt", layout="styles"),
    "ukiyoe_style": _pairs("Stylization/Ukiyoe", layout="styles"),
    "van_gogh_style": _pairs("Stylization/VanGogh", layout="styles"),
    "tuner_style": _pairs("Stylization/Tuner", layout="styles"),
    "regionalism_style": _pairs("Stylization/Regionalism", layout="styles"),
    "impressionism_style": _pairs("Stylization/Impressionism", layout="styles"),
    # Domain data ("Special Data"): HR targets, x4-down (SR) or GN15 (denoising) inputs.
    "face_sr": _domain("Restoration/Face", "Train_X4Down_256"),
    "infrared_sr": _domain("Restoration/Infrared", "Train_X4Down_256"),
    "ct_sr": _domain("Restoration/CT", "Train_X4Down_256"),
    "ct_denoising": _domain("Restoration/CT", "Train_GN15_256"),
    "mri_sr": _domain("Restoration/MRI", "Train_X4Down_256"),
    "mri_denoising": _domain("Restoration/MRI", "Train_GN15_256"),
    "satellite_sr": _domain("Restoration/Satellite", "Train_X4Down_256"),
    "satellite_denoising": _domain("Restoration/Satellite", "Train_GN15_256"),
    "weather_sr": _domain("Restoration/Weather", "Train_X4Down_256", superbench=True),
    "fluid_flow_sr": _domain("Restoration/FluidFlow", "Train_X4Down_256", superbench=True),
    "cosmology_sr": _domain("Restoration/Cosmology", "Train_X4Down_256", superbench=True),
}


def _folder(root: str, relative: str, superbench: bool) -> str:
  """`root/relative`, or for SuperBench fields the authors' sibling tree when that has it."""
  path = os.path.join(root, relative)
  if superbench and not os.path.isdir(path):
    sibling = os.path.join(os.path.dirname(os.path.normpath(root)), "SuperBench_Processd_Data",
                           relative)
    if os.path.isdir(sibling):
      return sibling
  return path


def _stem(root: str, path: str) -> str:
  return os.path.splitext(os.path.relpath(path, root))[0]


class PairList(paired_sources.PairedFolderSource):
  """Pairs matched by a rule of the authors' loader rather than by stem, read like
  `PairedFolderSource`'s (skipping, resizing). `groups[i]` is pair i's group (styles, filters):
  prompt pairs are drawn from the input's group."""

  def __init__(self, pairs: Sequence[tuple[str, str]], input_dir: str, target_dir: str,
               groups: Optional[Sequence[str]] = None, skipped: Sequence[str] = ()):
    # PairedFolderSource.__init__ lists two folders and matches them by stem; these pairs are
    # already matched, so only the state its readers use is set.
    if not pairs:
      raise NoImagesError(f"no input/target pairs between {input_dir} and {target_dir}")
    self.input_dir, self.target_dir = input_dir, target_dir
    self.pairs = tuple(pairs)
    self.unmatched, self.unreadable_targets = (), ()
    self.skipped = list(skipped)
    self.num_resized_reads = 0
    self.groups = None if groups is None else np.asarray(groups)


def _by_stem(folder: image_sources.FolderSource) -> dict[str, str]:
  return {_stem(folder.root, p): p for p in folder.paths}


def _group_of(rule: str, stem: str) -> str:
  name = os.path.basename(stem)
  return name.rsplit(rule[-1], 1)[-1] if rule[-1] in name else ""


@dataclasses.dataclass(frozen=True)
class AuthorsPairs:
  """One task's pairs in the authors' tree under `root`."""
  task: str
  root: str
  spec: AuthorsFolder

  def dirs(self) -> list[tuple[str, str]]:
    """(input folder, target folder) per dataset folder."""
    s = self.spec
    out = []
    for folder in s.folders:
      base = _folder(self.root, folder, s.superbench)
      if s.layout in ("fivek", "styles"):
        out.append((os.path.join(self.root, FIVEK_INPUT),
                    os.path.join(base, "Train_256_target")))
      else:
        out.append((os.path.join(base, s.input), os.path.join(base, s.target)))
    return out

  def missing(self) -> Optional[str]:
    """Why the folders cannot be used, or None (shadow removal needs one of its two sets)."""
    if any(all(os.path.isdir(d) for d in pair) for pair in self.dirs()):
      return None
    absent = next(d for pair in self.dirs() for d in pair if not os.path.isdir(d))
    return f"no folder {absent} (data.paired_root)"

  def describe(self) -> str:
    return "data.paired_root " + "; ".join(
        f"{os.path.relpath(i, self.root)}|{os.path.relpath(t, self.root)}"
        for i, t in self.dirs() if os.path.isdir(i) and os.path.isdir(t))

  def open(self) -> paired_sources.PairedFolderSource:
    """The task's pairs (a `PairedFolderSource`, with `groups` where prompts follow a group)."""
    s = self.spec
    dirs = [p for p in self.dirs() if all(os.path.isdir(d) for d in p)]
    if s.layout in ("styles", "instagram", "white_balance"):
      (input_dir, target_dir), = dirs
      return _RULES[s.layout](input_dir, target_dir, s.reverse)
    sources = [paired_sources.PairedFolderSource(i, t) for i, t in dirs]
    if len(sources) == 1 and not s.group:
      return sources[0]
    pairs = [p for src in sources for p in src.pairs]
    if s.group:
      groups = [_group_of(s.group, _stem(sources[0].input_dir, i)) for i, _ in pairs]
    else:  # several datasets: the prompt comes from the input's dataset, as theirs does
      groups = [str(k) for k, src in enumerate(sources) for _ in src.pairs]
    skipped = [p for src in sources for p in src.skipped]
    return PairList(pairs, sources[0].input_dir, sources[0].target_dir, groups, skipped)


def _styles(fivek_dir: str, target_dir: str, _reverse: bool) -> PairList:
  """Targets `<k>_<stem>.*` on the FiveK input `<stem>.*`; the group is k, the style
  reference (the authors draw prompt and input from one reference's list)."""
  inputs, targets = image_sources.FolderSource(fivek_dir), image_sources.FolderSource(target_dir)
  by_stem = _by_stem(inputs)
  pairs, groups = [], []
  for path in targets.paths:
    k, sep, stem = _stem(target_dir, path).partition("_")
    if sep and stem in by_stem:
      pairs.append((by_stem[stem], path))
      groups.append(k)
  return PairList(pairs, fivek_dir, target_dir, groups, inputs.skipped + targets.skipped)


def _instagram(processed_dir: str, original_dir: str, addition: bool) -> PairList:
  """`<id>_<Filter>` (processed) with `<id>_Original`: removal maps the first to the second,
  addition the reverse; the group is the filter (prompt and input show the same one)."""
  processed = image_sources.FolderSource(processed_dir)
  originals = image_sources.FolderSource(original_dir)
  by_stem = _by_stem(originals)
  pairs, groups = [], []
  for path in processed.paths:
    stem = _stem(processed_dir, path)
    ident, _, tail = stem.partition("_")
    original = by_stem.get(f"{ident}_Original")
    if original is not None and tail:
      pairs.append((original, path) if addition else (path, original))
      groups.append(tail.rsplit("_", 1)[-1])
  dirs = (original_dir, processed_dir) if addition else (processed_dir, original_dir)
  return PairList(pairs, *dirs, groups, processed.skipped + originals.skipped)


def _white_balance(input_dir: str, target_dir: str, _reverse: bool) -> PairList:
  """Input `<name>_<X>_<Y>` with target `<name>_G_AS` (several inputs share a target)."""
  inputs, targets = image_sources.FolderSource(input_dir), image_sources.FolderSource(target_dir)
  by_stem = _by_stem(targets)
  pairs = []
  for path in inputs.paths:
    parts = _stem(input_dir, path).split("_")
    target = by_stem.get("_".join(parts[:-2] + ["G", "AS"])) if len(parts) > 2 else None
    if target is not None:
      pairs.append((path, target))
  return PairList(pairs, input_dir, target_dir, None, inputs.skipped + targets.skipped)


_RULES: dict[str, Callable[[str, str, bool], PairList]] = {
    "styles": _styles, "instagram": _instagram, "white_balance": _white_balance}


@dataclasses.dataclass(frozen=True)
class FolderPairs:
  """A task's `data.paired` folders."""
  task: str
  input_dir: str
  target_dir: str

  def missing(self) -> Optional[str]:
    for role, d in (("input", self.input_dir), ("target", self.target_dir)):
      if not os.path.isdir(d):
        return f"data.paired {role} folder not found: {d}"
    return None

  def describe(self) -> str:
    return f"data.paired {self.input_dir}|{self.target_dir}"

  def open(self) -> paired_sources.PairedFolderSource:
    return paired_sources.PairedFolderSource(self.input_dir, self.target_dir)


@dataclasses.dataclass(frozen=True)
class ShardPairs:
  """A task's pairs prepared as ArrayRecord shards by `python -m genlv_jax.data.prepare`
  (`data.prepared_root/<task>/train-*.array_record`)."""
  task: str
  folder: str

  def missing(self) -> Optional[str]:
    # Imported here: the readers need array_record, which only runs that read shards load.
    from genlv_jax.data.prepare import shards  # pylint: disable=import-outside-toplevel
    if not os.path.isdir(self.folder) or not shards.shard_paths(self.folder, "train"):
      return f"no prepared train shards in {self.folder}"
    return None

  def describe(self) -> str:
    return f"data.prepared_root {self.folder}"

  def open(self):
    from genlv_jax.data.prepare import shards  # pylint: disable=import-outside-toplevel
    return shards.read_shards(self.folder, split="train")


PairSpec = Union[FolderPairs, AuthorsPairs, ShardPairs]


# ---- the configuration ---------------------------------------------------------------------

def _data(config, name: str, default):
  data = config.get("data", None) if hasattr(config, "get") else None
  value = data.get(name, default) if data is not None else default
  return default if value is None else value


def _check_source_spec(key: str, spec: str) -> str:
  spec = spec.strip()
  kind, _, rest = spec.partition(":")
  if spec == "builtin" or (kind in ("folder", "tfds") and rest.strip()):
    return spec
  raise UserError(f"data.task_sources: {key}={spec!r} is not an image source (expected "
                   "builtin, folder:PATH or tfds:NAME)")


def parse_task_sources(spec: Union[str, Mapping[str, object], None]) -> dict[str, str]:
  """`data.task_sources` as {task name or domain: image source spec}.

  Accepts "" / None, "KEY=SOURCE;KEY=SOURCE" or a mapping. KEY is a domain (`DOMAINS`) or a
  procedural task's name or paper name.

  Raises:
    UserError: one line, for a malformed entry, an unknown key, a task that is not synthesised
      (its pairs come from data.paired) or a source that is not builtin/folder:/tfds:.
  """
  if not spec:
    return {}
  if isinstance(spec, Mapping) or hasattr(spec, "items"):
    items = [(str(k), str(v)) for k, v in spec.items()]
  else:
    items = []
    for entry in str(spec).split(";"):
      if not entry.strip():
        continue
      key, sep, value = entry.partition("=")
      if not sep or not key.strip():
        raise UserError(f"data.task_sources entry {entry.strip()!r} must be KEY=SOURCE, KEY a "
                         f"task or a domain ({', '.join(DOMAINS)})")
      items.append((key, value))
  out: dict[str, str] = {}
  for key, value in items:
    key = key.strip()
    if key.lower() in DOMAINS:
      name = key.lower()
    else:
      try:
        task = registry.get_task(key)
      except KeyError:
        raise UserError(f"data.task_sources: {key!r} is neither a task nor a domain "
                         f"({', '.join(DOMAINS)})") from None
      if not task.procedural:
        raise UserError(f"data.task_sources: {task.name} is a {task.source} task "
                         f"({task.dataset}); its pairs come from data.paired or "
                         "data.paired_root, not from clean images")
      name = task.name
    out[name] = _check_source_spec(key, value)
  return out


@dataclasses.dataclass(frozen=True)
class TaskData:
  """Where one task's training data comes from.

  Attributes:
    task: the task's name.
    kind: "clean" (synthesised from clean images), "paired" or "missing".
    clean: the clean-image source spec (kind "clean").
    own_source: the clean source is the task's or its domain's, not `data.source`.
    pairs: the pairs (kind "paired").
    origin: the config field that gave it (or, when missing, why and how to fix it).
  """
  task: str
  kind: str
  origin: str
  clean: Optional[str] = None
  own_source: bool = False
  pairs: Optional[PairSpec] = None


def _folder_missing(spec: str) -> Optional[str]:
  if spec.startswith("folder:"):
    path = os.path.expanduser(spec[len("folder:"):].strip())
    if not os.path.isdir(path):
      return f"image folder not found: {path}"
  return None


def needs(task: Union[str, registry.Task]) -> str:
  """What a task needs, in words: procedural (on which domain), a paired dataset, or a teacher
  model's outputs."""
  task = registry.get_task(task)
  domain = task_domain(task)
  if task.procedural:
    if domain in REQUIRED_DOMAINS:
      return f"procedural on {domain} images ({task.dataset})"
    return f"procedural ({domain} images preferred)" if domain else "procedural"
  if task.source == "model":
    return f"teacher model: {task.dataset}"
  return f"paired dataset: {task.dataset}"


class _Config:
  """The data fields of a config, parsed once."""

  def __init__(self, config):
    raw = paired_sources.parse_paired(_data(config, "paired", ""))
    self.paired = {}
    for key, dirs in raw.items():
      try:
        self.paired[registry.get_task(key).name] = dirs
      except KeyError as e:
        raise UserError(f"data.paired: {e.args[0]}") from None
    self.sources = parse_task_sources(_data(config, "task_sources", ""))
    self.root = os.path.expanduser(str(_data(config, "paired_root", "") or ""))
    if self.root and not os.path.isdir(self.root):
      raise UserError(f"data.paired_root {self.root} is not a folder (the authors' "
                       "GenLV_Processed_Data tree)")
    self.prepared = os.path.expanduser(str(_data(config, "prepared_root", "") or ""))
    if self.prepared and not os.path.isdir(self.prepared):
      raise UserError(f"data.prepared_root {self.prepared} is not a folder (the --output of "
                      "python -m genlv_jax.data.prepare)")
    self.source = str(_data(config, "source", "builtin"))
    self.fallback = bool(_data(config, "domain_fallback", False))

  def task_data(self, name: str) -> TaskData:
    task = registry.get_task(name)
    if name in self.paired:
      pairs = FolderPairs(name, *self.paired[name])
      why = pairs.missing()
      return (TaskData(name, "missing", why) if why else
              TaskData(name, "paired", pairs.describe(), pairs=pairs))
    if self.prepared and os.path.isdir(os.path.join(self.prepared, name)):
      shards = ShardPairs(name, os.path.join(self.prepared, name))
      why = shards.missing()
      return (TaskData(name, "missing", f"{shards.describe()}: {why}") if why else
              TaskData(name, "paired", shards.describe(), pairs=shards))
    domain = task_domain(task)
    if task.procedural:
      for key in (name, domain):
        if key in self.sources:
          spec = self.sources[key]
          origin = f"data.task_sources {key}={spec}"
          why = _folder_missing(spec)
          return (TaskData(name, "missing", f"{origin}: {why}") if why else
                  TaskData(name, "clean", origin, clean=spec, own_source=True))
    authors = (AuthorsPairs(name, self.root, AUTHORS_LAYOUT[name])
               if self.root and name in AUTHORS_LAYOUT else None)
    authors_missing = authors.missing() if authors else None
    if authors and not authors_missing:
      return TaskData(name, "paired", authors.describe(), pairs=authors)
    if task.procedural:
      generic = TaskData(name, "clean", f"data.source {self.source}", clean=self.source)
      if domain not in REQUIRED_DOMAINS:
        return generic
      if self.fallback:
        return dataclasses.replace(generic, origin=generic.origin + " (data.domain_fallback)")
      where = f"; {authors_missing}" if authors_missing else ""
      return TaskData(name, "missing", (
          f"needs {domain} images ({task.dataset}): give data.task_sources='{domain}="
          f"folder:DIR' or the authors' pairs (data.paired_root){where}, or set "
          "data.domain_fallback=True to synthesise it from data.source"))
    where = f" ({authors_missing})" if authors_missing else ""
    return TaskData(name, "missing", (
        f"needs {task.source} data ({task.dataset}): give its folders as data.paired="
        f"'{name}=INPUT_DIR|TARGET_DIR' or data.paired_root{where}"))


def plan(config, task_names: Optional[Sequence[str]] = None) -> dict[str, TaskData]:
  """{task: where its data comes from} under `config` for `task_names` (default: every
  registered task), checking that folders exist but opening no source.

  Raises:
    UserError: one line, for a malformed data.paired / data.task_sources / data.paired_root.
  """
  parsed = _Config(config)
  names = task_selection.task_vocabulary() if task_names is None else task_names
  return {n: parsed.task_data(registry.get_task(n).name) for n in names}


def configured_tasks(config, log: bool = True) -> tuple[tuple[str, ...], dict[str, TaskData]]:
  """(the task names `data.tasks` selects that have data, where each one's data comes from).

  A named task without data is an error; a set's tasks without data are left out (named in one
  warning when `log`); see the module docstring.

  Raises:
    MissingDataError: named tasks without data, one line each.
    UserError: one line, for an unknown task, a malformed data field, or a set that leaves no
      task.
  """
  spec = _data(config, "tasks", "acmmm30")
  expanded = task_selection.expand_tasks(spec)
  parsed = _Config(config)
  data = {n: parsed.task_data(n) for n in expanded}
  missing = [f"{n}: {d.origin}" for n, d in data.items() if d.kind == "missing" and expanded[n]]
  if missing:
    raise MissingDataError(missing)
  names = tuple(n for n, d in data.items() if d.kind != "missing")
  dropped = [n for n in expanded if data[n].kind == "missing"]
  if log:
    if dropped:
      logging.warning("data.tasks=%s: %d tasks without data are left out (%s); `python -m "
                      "genlv_jax.tasks list --config CONFIG` says what each needs", spec,
                      len(dropped), ", ".join(dropped))
    unused = sorted(set(parsed.paired) - set(names))
    if unused:
      logging.warning("data.paired gives folders for tasks that data.tasks does not select "
                      "(%s): not used for training", ", ".join(unused))
    replaced = [n for n in names if data[n].kind == "paired" and registry.get_task(n).procedural]
    if replaced:
      logging.info("procedural tasks trained on pairs instead of synthesis: %s",
                   ", ".join(f"{n} ({data[n].origin})" for n in replaced))
    fallback = [n for n in names if data[n].origin.endswith("(data.domain_fallback)")]
    if fallback:
      logging.warning("tasks without their domain's images synthesised from data.source "
                      "(data.domain_fallback=True): %s", ", ".join(fallback))
  if not names:
    raise UserError(f"data.tasks={spec!r} selects no task with data")
  return names, {n: data[n] for n in names}


def check_crop(config) -> str:
  """`data.crop`, checked: "random" (a random window) or "resize" (the whole image resized)."""
  crop = str(_data(config, "crop", "random"))
  if crop not in CROPS:
    raise UserError(f"data.crop must be one of {', '.join(CROPS)}, got {crop!r}")
  return crop


def check_training_data(config) -> tuple[str, ...]:
  """Checks, without opening a source, that every task `data.tasks` names has data and that
  `data.task_weights` and `data.crop` are valid; returns the selected task names. Called by the
  trainer's config check, before any work.

  Raises:
    MissingDataError: one line per named task without data.
    UserError: one line, for any other data field that cannot be used.
  """
  names, _ = configured_tasks(config, log=False)
  task_selection.task_probabilities(names, str(_data(config, "task_weights", "uniform")))
  check_crop(config)
  return names


def open_pairs(task_data: TaskData) -> paired_sources.PairedFolderSource:
  """Opens a paired task's source (lists and matches its folders)."""
  try:
    return task_data.pairs.open()
  except (ImageSourceError, OSError) as e:
    raise ImageSourceError(f"{task_data.task}: {str(e).splitlines()[0]}") from None
