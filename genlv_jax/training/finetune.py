"""Few-shot adaptation of GenLV to a new task from a handful of input/target pairs (large paper
§IV-C.4, "Few-shot Transfer", Fig. 12); `python -m genlv_jax.finetune` is its command line.

Pairs are matched by file stem (`genlv_jax.data.paired_sources`) and read once, strictly: a pair
with an unreadable file, or whose input and target differ in aspect ratio, is skipped and named
(one warning, `skipped_pairs` in the log), never replaced by another pair (`FewShotPairs`).
Held-out pairs are kept out of training; every `eval_every` steps the L1 loss on them (each with
fixed prompt pairs taken from the training pairs) is measured, and training stops after
`patience` evaluations without improvement.

The workdir:
  best/               the best held-out parameters so far: an orbax params checkpoint that
                      `infer`, `evaluate` and `load_model` take (also as `WORKDIR`); replaced
                      whenever the held-out loss improves, atomically (written beside it, then
                      renamed over it), so that a kill mid-save leaves the previous best whole;
  finetune_log.json   every evaluation, the best step, the pairs used and skipped, the run's
                      arguments; written after best/, so that it never names a best that is
                      not on disk (a Ctrl-C waits for the save; a second one aborts it);
  state/              the train state (params, optimizer state, step) and log of the last
                      evaluation, while the run is unfinished: what a rerun resumes from.

Ctrl-C (SIGINT) or SIGTERM stops the run at once: `finetune` raises `Interrupted`, whose message
(printed by the command line, which exits with status 130, 143 for SIGTERM) says which step's
parameters are in best/ and from which step a rerun resumes. Rerunning the same command with the
same workdir resumes from the last evaluation and ends with the result of an uninterrupted run,
bit for bit: a step's batch is a function of (seed, step), so a run is a function of its
arguments. A rerun whose arguments (pairs and their pixels, strategy, steps, learning rate,
batch size, crop, eval_every, patience, seed, config, initial weights) differ from the saved
run's is refused with one line; rerunning a finished run returns its log.

Training samples: a training pair as the input, another training pair as the prompt (never
the same pair, as in pre-training), the same random crop for input and target, random flips
and 90° rotations. The optimizer is the trainer's (`train_step.make_optimizer`, AdamW with the
paper's betas, cosine schedule over the steps), wrapped in `optax.multi_transform` so that only
the strategy's parameters move; the others are copied bit for bit from the checkpoint. It runs
on one device (a few-shot set is small).

Strategies (Fig. 12; the top-level keys of the parameter tree they train):
  prompt_encoder       (b) prompt_encoder
  prompt_and_latent    (c) + latent_blocks (the bottleneck: self- and prompt cross-attention)
  prompt_latent_input  (d) + the input encoder: patch_embed, encoder_level1-3, down1_2-down3_4
  full                 (e) everything
  full_backbone        (f) everything except prompt_encoder — the paper's best, the default
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import signal
import sys
import threading
from typing import Any, Callable, Iterator, Optional, Sequence

import jax
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import logging
from tqdm import tqdm

from genlv_jax.data import paired_sources
from genlv_jax.data.records import center_crop, random_crop
from genlv_jax.errors import UserError
from genlv_jax.models import apply_to_batch, build_model
from genlv_jax.training import checkpointing
from genlv_jax.training.train_step import (create_train_state, l1_loss, make_optimizer,
                                           make_train_step)
from genlv_jax.training.writers import write_text_atomic

PyTree = Any

INPUT_ENCODER = ("patch_embed", "encoder_level1", "encoder_level2", "encoder_level3",
                 "down1_2", "down2_3", "down3_4")
STRATEGIES: dict[str, Callable[[str], bool]] = {
    "prompt_encoder": lambda key: key == "prompt_encoder",
    "prompt_and_latent": lambda key: key in ("prompt_encoder", "latent_blocks"),
    "prompt_latent_input": lambda key: key in ("prompt_encoder", "latent_blocks") + INPUT_ENCODER,
    "full": lambda key: True,
    "full_backbone": lambda key: key != "prompt_encoder",
}
DEFAULT_STRATEGY = "full_backbone"
LOG_NAME = "finetune_log.json"
BEST_NAME = checkpointing.FINETUNE_BEST
STATE_NAME = "state"
# What a rerun must share with the saved run to resume it (log keys).
RUN_KEYS = ("strategy", "steps", "learning_rate", "batch_size", "crop", "eval_every", "patience",
            "seed", "train_pairs", "heldout_pairs", "skipped_pairs", "pairs_sha256",
            "config_sha256", "initial_params_sha256")
_RUN_KEY_NAMES = {"learning_rate": "--lr", "batch_size": "--batch-size",
                  "eval_every": "--eval-every", "train_pairs": "the training pairs",
                  "heldout_pairs": "the held-out pairs", "skipped_pairs": "the skipped pairs",
                  "pairs_sha256": "the pairs' pixels", "config_sha256": "the config",
                  "initial_params_sha256": "the initial weights"}


def trainable_labels(params: PyTree, strategy: str) -> dict[str, str]:
  """{top-level key: "trainable" | "frozen"} of `strategy` (a prefix tree of `params`)."""
  if strategy not in STRATEGIES:
    raise UserError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
  if strategy != "full_backbone" and strategy != "full" and "prompt_encoder" not in params:
    raise UserError(f"strategy {strategy} tunes the prompt encoder, which this model "
                     "(model.use_prompt=False) does not have")
  labels = {key: "trainable" if STRATEGIES[strategy](key) else "frozen" for key in params}
  if "trainable" not in labels.values():
    raise UserError(f"strategy {strategy} leaves nothing to train in this model")
  return labels


def count_params(params: PyTree, labels: dict[str, str]) -> tuple[int, int]:
  """(trainable, total) parameter counts."""
  sizes = {k: sum(int(np.size(x)) for x in jax.tree.leaves(v)) for k, v in params.items()}
  return sum(s for k, s in sizes.items() if labels[k] == "trainable"), sum(sizes.values())


def merge_frozen(trained: PyTree, initial: PyTree, labels: dict[str, str]) -> PyTree:
  """`trained` for the trainable keys, `initial` (untouched) for the frozen ones."""
  return {k: trained[k] if labels[k] == "trainable" else initial[k] for k in initial}


def _dihedral(images: Sequence[np.ndarray], k: int) -> list[np.ndarray]:
  """The same one of the 8 flips/rotations applied to every image."""
  out = [np.rot90(im, k % 4) for im in images]
  return [np.ascontiguousarray(im[:, ::-1] if k >= 4 else im) for im in out]


def _names(items: Sequence[str], limit: int = 3) -> str:
  """'a, b, c and 4 more': a list that fits in a one-line message."""
  shown = ", ".join(items[:limit])
  return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


class FewShotPairs:
  """The usable input/target pairs of a folder pair, split into training and held-out pairs, in
  memory (a few-shot set is small; pixels stay uint8 until cropped).

  Every pair is read once with `read_pair(i, substitute=False)`: a pair with an unreadable file
  or whose input and target differ in aspect ratio is skipped and named (one warning; `skipped`,
  the log's `skipped_pairs`), never replaced by another pair, so `names` are exactly the pairs
  used. An input of its target's aspect ratio but another size (a low-resolution input) is
  resized to the target's size (`resized`). Held-out pairs are chosen among the targets, evenly
  spaced: pairs that share a target (RESIDE's hazy images of one clear image) are held out
  together, so that no held-out pair, nor its target, is ever trained on.

  Raises:
    UserError: `holdout` < 1, or too few usable pairs (the skipped ones are named).
  """

  def __init__(self, input_dir: str, target_dir: str, holdout: int, crop: int):
    if holdout < 1:
      raise UserError("--holdout must be at least 1: early stopping needs held-out pairs")
    source = paired_sources.PairedFolderSource(input_dir, target_dir)
    self.crop = crop
    # Files that could not even be listed (not images), and inputs without a target.
    self.skipped_files = list(source.skipped)
    self.unmatched = [os.path.relpath(p, input_dir) for p in source.unmatched]
    self.pairs: list[tuple[np.ndarray, np.ndarray]] = []
    self.names: list[str] = []
    self.skipped: list[dict[str, str]] = [
        {"input": os.path.relpath(inp, input_dir), "target": os.path.relpath(tgt, target_dir),
         "reason": "unreadable target: not an image file"}
        for inp, tgt in source.unreadable_targets]
    self.resized: list[str] = []
    targets = []
    for i, (inp_path, tgt_path) in enumerate(source.pairs):
      name = os.path.relpath(inp_path, input_dir)
      resized_before = source.num_resized_reads
      try:
        pair = source.read_pair(i, substitute=False)
      except paired_sources.UnusablePairError as e:
        self.skipped.append({"input": name, "target": os.path.relpath(tgt_path, target_dir),
                             "reason": e.reason})
        continue
      if source.num_resized_reads > resized_before:
        self.resized.append(name)
      self.pairs.append(pair)
      self.names.append(name)
      targets.append(tgt_path)
    self.skipped.sort(key=lambda s: s["input"])
    if self.skipped:
      logging.warning("%d of %d pairs cannot be used and are skipped: %s", len(self.skipped),
                      len(source) + len(source.unreadable_targets), "; ".join(f"{s['input']}: {s['reason']}" for s in self.skipped))
    self.upscaled = [name for name, (_, tgt) in zip(self.names, self.pairs)
                     if min(tgt.shape[:2]) < crop]
    if self.upscaled:
      logging.warning("%d pair(s) smaller than the %d px crop are upscaled to fit it: %s",
                      len(self.upscaled), crop, _names(self.upscaled))
    # Held out by target, evenly spaced over the targets in the order first met.
    groups: dict[str, list[int]] = {}
    for i, target in enumerate(targets):
      groups.setdefault(target, []).append(i)
    groups_list = list(groups.values())
    held = (((np.arange(holdout) + 0.5) * len(groups_list) / holdout).astype(np.int64)
            if holdout <= len(groups_list) else np.arange(len(groups_list)))
    self.heldout = sorted(i for g in held for i in groups_list[int(g)])
    self.train = [i for i in range(len(self.pairs)) if i not in self.heldout]
    if len(groups_list) <= holdout or len(self.train) < 2:
      skipped = (f" ({len(self.skipped)} skipped: {_names([s['input'] for s in self.skipped])})"
                 if self.skipped else "")
      shared = ("; pairs that share a target are held out together"
                if len(groups_list) < len(self.pairs) else "")
      raise UserError(f"{len(self.pairs)} usable pair(s) matched between {input_dir} and "
                      f"{target_dir}{skipped}: need at least {holdout + 2} ({holdout} held out, "
                      f"two to train, as a prompt comes from another pair{shared})")

  def digest(self) -> str:
    """sha256 of the pairs' names and pixels: a rerun resumes only on the same pairs."""
    h = hashlib.sha256()
    for name, pair in zip(self.names, self.pairs):
      h.update(name.encode() + b"\0")
      for image in pair:
        image = np.ascontiguousarray(image)
        h.update(f"{image.dtype}{image.shape}".encode())
        h.update(image.data)
    return h.hexdigest()

  def train_batch(self, seed: int, step: int, batch_size: int) -> dict[str, np.ndarray]:
    """The batch of step `step`: (prompt pair, input pair)s from two different training pairs,
    drawn from (seed, step) alone, so that a resumed run sees the batches of an uninterrupted
    one."""
    rng = np.random.default_rng([seed, step])
    keys = ("prompt_source", "prompt_target", "input", "target")
    batch = {k: [] for k in keys}
    for _ in range(batch_size):
      i, j = rng.choice(self.train, size=2, replace=False)
      prompt = _dihedral(random_crop(list(self.pairs[j]), self.crop, rng), int(rng.integers(8)))
      sample = _dihedral(random_crop(list(self.pairs[i]), self.crop, rng), int(rng.integers(8)))
      for key, image in zip(keys, prompt + sample):
        batch[key].append(image)
    return {k: np.stack(v) for k, v in batch.items()}

  def heldout_batch(self, prompts_per_pair: int = 2) -> dict[str, np.ndarray]:
    """Each held-out pair (centre crop) with fixed prompts: training pairs, in turn."""
    rows = []
    for n, h in enumerate(self.heldout):
      for p in range(min(prompts_per_pair, len(self.train))):
        prompt = self.train[(n * prompts_per_pair + p) % len(self.train)]
        rows.append(center_crop(list(self.pairs[prompt]), self.crop)
                    + center_crop(list(self.pairs[h]), self.crop))
    keys = ("prompt_source", "prompt_target", "input", "target")
    return {k: np.stack([r[i] for r in rows]) for i, k in enumerate(keys)}


def finetune_config(config: ml_collections.ConfigDict, steps: int,
                    learning_rate: float) -> ml_collections.ConfigDict:
  """The config's optimizer with the fine-tuning length and rate (warm-up ≤ 10 % of it)."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.total_steps = int(steps)
  config.optimizer.learning_rate = float(learning_rate)
  config.optimizer.warmup_steps = min(int(config.optimizer.warmup_steps), int(steps) // 10)
  config.optimizer.ema_decay = 0.0
  return config


# ---- interruption ------------------------------------------------------------------------------

class Interrupted(KeyboardInterrupt):
  """Fine-tuning was stopped by SIGINT (Ctrl-C) or SIGTERM. Its message is one line: which step's
  params WORKDIR/best holds and how to resume; `signum` is the signal."""

  def __init__(self, message: str, signum: int = signal.SIGINT):
    super().__init__(message)
    self.signum = int(signum)

  def __str__(self) -> str:
    return str(self.args[0])


class _Signal(KeyboardInterrupt):
  """What the handler raises: a KeyboardInterrupt that remembers its signal."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


class _InterruptGuard:
  """SIGINT and SIGTERM raise KeyboardInterrupt at once, except inside `saving()`: there the
  first one is held until the writes are done (then raised), and a second one aborts them
  (`torn` is then set). Installed only in the main thread (elsewhere signals cannot be
  caught; the writes stay atomic one by one)."""

  def __init__(self):
    self.in_save = False
    self.pending: Optional[int] = None
    self.torn = False
    self._previous: dict[int, Any] = {}

  def __enter__(self) -> "_InterruptGuard":
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGINT, signal.SIGTERM):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

  def _handle(self, signum: int, frame) -> None:  # pylint: disable=unused-argument
    if self.in_save and self.pending is None:
      self.pending = signum
      return
    raise _Signal(signum)

  @contextlib.contextmanager
  def saving(self) -> Iterator[None]:
    """Writes that must not be cut short by the first signal."""
    self.in_save = True
    try:
      yield
    except BaseException:
      self.torn = True
      raise
    finally:
      self.in_save = False
    if self.pending is not None:
      signum, self.pending = self.pending, None
      raise _Signal(signum)


# ---- the workdir -------------------------------------------------------------------------------

def _sibling(path: str, kind: str) -> str:
  """WORKDIR/.best.new, WORKDIR/.best.old: where `path` is written and kept while replaced."""
  head, name = os.path.split(path)
  return os.path.join(head, f".{name}.{kind}")


def _put_back_old(path: str) -> None:
  """Undoes or finishes a `_replace_dir` of `path` cut short between or after its renames."""
  old = _sibling(path, "old")
  if os.path.exists(old):
    if os.path.exists(path):  # the new version is in place: the old one is no longer needed
      shutil.rmtree(old)
    else:  # killed between the renames: the previous version comes back
      os.rename(old, path)


def _recover_dir(path: str) -> None:
  """Brings `path` back to a whole version after a kill during `_replace_dir`, and removes a
  new version that was still being written."""
  _put_back_old(path)
  for leftover in glob.glob(glob.escape(_sibling(path, "new")) + "*"):
    shutil.rmtree(leftover, ignore_errors=True)


def _replace_dir(new: str, path: str) -> None:
  """Puts the complete directory `new` at `path`. A directory cannot be renamed over a full one,
  so the old one steps aside first (to `.NAME.old`): a kill between the two renames leaves it
  whole there, and `_recover_dir` puts it back."""
  _put_back_old(path)
  old = _sibling(path, "old")
  if os.path.exists(path):
    os.rename(path, old)
  os.rename(new, path)
  shutil.rmtree(old, ignore_errors=True)


def _save_best(workdir: str, params: PyTree) -> None:
  """WORKDIR/best := params, atomically (the previous best stays whole until replaced)."""
  path = os.path.join(os.path.abspath(workdir), BEST_NAME)
  new = _sibling(path, "new")
  for leftover in glob.glob(glob.escape(new) + "*"):
    shutil.rmtree(leftover)
  checkpointing.save_params(new, params)
  _replace_dir(new, path)


def _save_state(workdir: str, state: PyTree, log: dict) -> None:
  """WORKDIR/state := the train state and the log of this evaluation, atomically."""
  path = os.path.join(os.path.abspath(workdir), STATE_NAME)
  new = _sibling(path, "new")
  shutil.rmtree(new, ignore_errors=True)
  os.makedirs(new)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(new, "train_state"), state)
  checkpointer.wait_until_finished()
  _write_json(os.path.join(new, LOG_NAME), log)
  _replace_dir(new, path)


def _restore_state(workdir: str, like: PyTree) -> PyTree:
  """The train state of WORKDIR/state, laid out as `like` on the first local device."""
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), like)
  path = os.path.join(os.path.abspath(workdir), STATE_NAME, "train_state")
  return ocp.StandardCheckpointer().restore(path, target)


def read_log(workdir: str) -> Optional[dict]:
  """WORKDIR/finetune_log.json, or None when there is none."""
  path = os.path.join(workdir, LOG_NAME)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def _tree_digest(tree: PyTree) -> str:
  """sha256 of a parameter tree's paths, dtypes, shapes and bytes."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    array = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{jax.tree_util.keystr(path)}:{array.dtype}{array.shape};".encode())
    h.update(array.data)
  return h.hexdigest()


def _check_same_run(saved: dict, run: dict, workdir: str) -> None:
  """Refuses (one line) to continue a saved run with other arguments: the result would be
  neither run's."""
  differ = []
  for key in RUN_KEYS:
    if saved.get(key) != run[key]:
      name = _RUN_KEY_NAMES.get(key, f"--{key.replace('_', '-')}")
      differ.append(name if name.startswith("the ")
                    else f"{name} {saved.get(key, 'unset')} there, {run[key]} here")
  if differ:
    raise UserError(f"{workdir} holds another fine-tuning run ({'; '.join(differ)}): rerun it "
                    "with its own arguments to resume it, or start this one in a new --workdir")


# ---- fine-tuning -------------------------------------------------------------------------------

def finetune(config: ml_collections.ConfigDict, params: PyTree, data: FewShotPairs,
             workdir: str, strategy: str = DEFAULT_STRATEGY, steps: int = 300,
             learning_rate: float = 1e-4, batch_size: int = 4, eval_every: int = 20,
             patience: int = 5, seed: int = 0, progress: bool = True,
             initial_checkpoint: str = "") -> dict:
  """Fine-tunes `params` on `data` with `strategy`; keeps WORKDIR/best, the log and the state
  to resume from as the module docstring says; resumes a run the workdir holds.

  Returns the log (also in WORKDIR/finetune_log.json): every held-out evaluation, the initial
  and best held-out L1, the best step, whether it stopped early, the pairs used and skipped, the
  run's arguments. For a workdir whose run already finished, that run's log, unchanged.
  `initial_checkpoint` names the starting weights in the log (their digest is what is checked).

  Raises:
    UserError: a bad argument, or a workdir holding a run with other arguments.
    Interrupted: SIGINT or SIGTERM; best/ and the log are consistent, and a rerun resumes.
  """
  if steps < 1 or batch_size < 1 or eval_every < 1 or patience < 1:
    raise UserError("--steps, --batch-size, --eval-every and --patience must be positive")
  if seed < 0:
    raise UserError(f"--seed must be at least 0, got {seed}")
  labels = trainable_labels(params, strategy)
  trainable, total = count_params(params, labels)
  initial = jax.device_get(params)
  run = json.loads(json.dumps({
      "strategy": strategy, "steps": int(steps), "learning_rate": float(learning_rate),
      "batch_size": int(batch_size), "crop": int(data.crop), "eval_every": int(eval_every),
      "patience": int(patience), "seed": int(seed),
      "train_pairs": [data.names[i] for i in data.train],
      "heldout_pairs": [data.names[i] for i in data.heldout],
      "skipped_pairs": data.skipped, "pairs_sha256": data.digest(),
      "config_sha256": hashlib.sha256(
          config.to_json_best_effort(sort_keys=True).encode()).hexdigest(),
      "initial_params_sha256": _tree_digest(initial)}))
  best_path = os.path.join(workdir, BEST_NAME)
  state_path = os.path.join(workdir, STATE_NAME)
  previous = read_log(workdir)
  if previous is not None:
    _check_same_run(previous, run, workdir)
    if previous.get("finished"):
      logging.info("%s: this fine-tuning run already finished", workdir)
      shutil.rmtree(state_path, ignore_errors=True)  # left by a kill after the last log
      return previous

  model = build_model(config)
  ft_config = finetune_config(config, steps, learning_rate)
  tx = optax.multi_transform({"trainable": make_optimizer(ft_config),
                              "frozen": optax.set_to_zero()}, labels)
  state = create_train_state(params, tx, use_ema=False)
  train_step = jax.jit(make_train_step(model, tx, ft_config))

  @jax.jit
  def heldout_l1(p, batch):
    return l1_loss(apply_to_batch(model, p, batch), batch["target"])

  heldout = data.heldout_batch()
  committed = previous  # the last log written, with best/ holding its best
  step = 0
  with _InterruptGuard() as guard:
    try:
      os.makedirs(workdir, exist_ok=True)
      with guard.saving():
        _recover_dir(best_path)
        _recover_dir(state_path)
      saved_log = os.path.join(state_path, LOG_NAME)
      if os.path.isfile(saved_log):
        with open(saved_log) as f:
          log = json.load(f)
        _check_same_run(log, run, workdir)
        state = _restore_state(workdir, state)
        step = int(state.step)
        if step != log["evaluations"][-1]["step"]:
          raise RuntimeError(f"{state_path}: train state at step {step}, log at step "
                             f"{log['evaluations'][-1]['step']}")
        log.setdefault("resumed_from", []).append(step)
        logging.info("resuming the fine-tuning run in %s from step %d", workdir, step)
        with guard.saving():
          if log["best_step"] == step:  # a kill may have come between state/ and best/
            _save_best(workdir, merge_frozen(jax.device_get(state.params), initial, labels))
          elif not checkpointing.is_params_checkpoint(best_path):
            raise UserError(f"{best_path} is missing: the params of step {log['best_step']} "
                            f"are lost; delete {workdir} to start the run again")
          _write_json(os.path.join(workdir, LOG_NAME), log)
        committed = json.loads(json.dumps(log))
      else:
        loss = float(heldout_l1(params, heldout))
        log = {"checkpoint": best_path, "initial_checkpoint": initial_checkpoint, **run,
               "trainable_params": trainable, "total_params": total,
               "trainable_keys": sorted(k for k, v in labels.items() if v == "trainable"),
               "unmatched_inputs": data.unmatched, "skipped_files": data.skipped_files,
               "resized_pairs": data.resized, "upscaled_pairs": data.upscaled,
               "evaluations": [{"step": 0, "heldout_l1": loss}], "initial_heldout_l1": loss,
               "best_heldout_l1": loss, "best_step": 0, "stopped_early": False,
               "finished": False}
        with guard.saving():
          _save_best(workdir, initial)
          _write_json(os.path.join(workdir, LOG_NAME), log)
        committed = json.loads(json.dumps(log))
      logging.info("fine-tuning %d of %d params (%s); held-out L1 at start %.5f",
                   trainable, total, strategy, log["initial_heldout_l1"])
      best = log["best_heldout_l1"]
      waited = sum(1 for e in log["evaluations"] if e["step"] > log["best_step"])
      done = step >= steps or waited >= patience
      losses, nonfinite = [], []
      with tqdm(total=steps, initial=step, desc=f"finetune {strategy}", disable=not progress,
                file=sys.stderr) as bar:
        while not done:
          step += 1
          state, metrics = train_step(state, data.train_batch(seed, step, batch_size))
          losses.append(metrics["train/loss"])
          nonfinite.append(metrics["train/nonfinite"])
          bar.update(1)
          if step % eval_every and step != steps:
            continue
          loss = float(heldout_l1(state.params, heldout))
          # A non-finite loss or gradient leaves the state as it was (`make_train_step`): say
          # how many steps did nothing rather than let them pass for training.
          skipped_steps = int(np.sum(jax.device_get(nonfinite)))
          if skipped_steps:
            logging.warning("%d of the %d steps up to step %d had a non-finite loss or "
                            "gradient and changed nothing", skipped_steps, len(nonfinite), step)
          log["evaluations"].append({"step": step, "heldout_l1": loss,
                                     "train_l1": float(np.mean(jax.device_get(losses))),
                                     "nonfinite_steps": skipped_steps})
          losses, nonfinite = [], []
          improved = loss < best
          if improved:
            best, waited = loss, 0
            log.update(best_heldout_l1=best, best_step=step)
          else:
            waited += 1
          bar.set_postfix(heldout_l1=f"{loss:.4f}", best=f"{best:.4f}")
          done = step >= steps or waited >= patience
          if waited >= patience:
            log["stopped_early"] = True
            logging.info("no held-out improvement in %d evaluations: stopping at step %d",
                         patience, step)
          _commit(guard, workdir, state, log, labels, initial, improved, done)
          committed = json.loads(json.dumps(log))
      if not log["finished"]:  # resumed with nothing left to train: only the last log is due
        _commit(guard, workdir, state, log, labels, initial, False, True)
      else:  # resumed from the state of an improved last evaluation (see `_commit`)
        with guard.saving():
          shutil.rmtree(state_path, ignore_errors=True)
      return log
    except KeyboardInterrupt as e:
      if committed is not None and committed.get("finished"):
        return committed  # the signal came while the last writes were made: the run is done
      signum = getattr(e, "signum", signal.SIGINT)
      if guard.torn:
        message = (f"interrupted again while saving: rerun the same command to repair "
                   f"{workdir} (the previous best is kept) and resume")
      elif committed is None:
        message = (f"interrupted before the first held-out evaluation: nothing new in "
                   f"{workdir}; rerun the same command to start")
      else:
        resume = committed["evaluations"][-1]["step"]
        message = (f"interrupted at step {step}: {best_path} holds the params of step "
                   f"{committed['best_step']} (held-out L1 {committed['best_heldout_l1']:.5f}); "
                   f"rerun the same command to resume from step {resume}")
      raise Interrupted(message, signum) from None


def _commit(guard: _InterruptGuard, workdir: str, state: PyTree, log: dict,
            labels: dict[str, str], initial: PyTree, improved: bool, done: bool) -> None:
  """The writes of one evaluation, in an order that keeps the workdir consistent at every
  point a kill can come: state/ first, then best/, then the log that names it; when done, the
  log says so and state/ goes.

  state/ comes first so that best/ always holds the params of state/'s best step or of its
  own step: a rerun after a kill between the two saves best/ again from state/. It is skipped
  at the last evaluation unless that one improved (then a rerun needs it for exactly that)."""
  if done:
    log["finished"] = True
  with guard.saving():
    if not done or improved:
      _save_state(workdir, state, log)
    if improved:
      _save_best(workdir, merge_frozen(jax.device_get(state.params), initial, labels))
    _write_json(os.path.join(workdir, LOG_NAME), log)
    if done:
      shutil.rmtree(os.path.join(workdir, STATE_NAME), ignore_errors=True)


def _write_json(path: str, obj: dict) -> None:
  write_text_atomic(path, json.dumps(obj, indent=2))  # a killed run leaves a whole log
