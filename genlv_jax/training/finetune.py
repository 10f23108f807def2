"""Few-shot adaptation of GenLV to a new task from a handful of input/target pairs (large paper
§IV-C.4, "Few-shot Transfer", Fig. 12); `python -m genlv_jax.finetune` is its command line.

Pairs are matched by file stem (`genlv_jax.data.paired_sources`). Held-out pairs are kept out of
training; every `eval_every` steps the L1 loss on them (each with fixed prompt pairs taken from
the training pairs) is measured, and training stops after `patience` evaluations without
improvement. The best parameters are written to `WORKDIR/best` (an orbax params checkpoint that
`infer`, `evaluate` and `load_model` take, also as `WORKDIR`) and every evaluation to
`WORKDIR/finetune_log.json`.

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

import json
import os
import sys
from typing import Any, Callable, Sequence

import jax
import ml_collections
import numpy as np
import optax
from absl import logging
from tqdm import tqdm

from genlv_jax.data import paired_sources
from genlv_jax.data.records import center_crop, holdout_indices, random_crop
from genlv_jax.errors import UserError
from genlv_jax.models import apply_to_batch, build_model
from genlv_jax.training import checkpointing
from genlv_jax.training.train_step import (create_train_state, l1_loss, make_optimizer,
                                           make_train_step)

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


class FewShotPairs:
  """Input/target pairs of a folder pair, split into training and held-out pairs, in memory
  (a few-shot set is small; pixels stay uint8 until cropped)."""

  def __init__(self, input_dir: str, target_dir: str, holdout: int, crop: int):
    source = paired_sources.PairedFolderSource(input_dir, target_dir)
    n = len(source)
    if holdout < 1:
      raise UserError("--holdout must be at least 1: early stopping needs held-out pairs")
    if n < holdout + 2:
      raise UserError(f"{n} pair(s) matched between {input_dir} and {target_dir}: need at "
                       f"least {holdout + 2} ({holdout} held out, two to train, as a prompt "
                       "comes from another pair)")
    self.pairs = [source.read_pair(i) for i in range(n)]
    self.names = [os.path.relpath(p[0], input_dir) for p in source.pairs]
    self.heldout = [int(i) for i in holdout_indices(n, holdout)]
    self.train = [i for i in range(n) if i not in self.heldout]
    self.crop = crop

  def train_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
    """A batch of (prompt pair, input pair) from two different training pairs."""
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


def finetune(config: ml_collections.ConfigDict, params: PyTree, data: FewShotPairs,
             workdir: str, strategy: str = DEFAULT_STRATEGY, steps: int = 300,
             learning_rate: float = 1e-4, batch_size: int = 4, eval_every: int = 20,
             patience: int = 5, seed: int = 0, progress: bool = True) -> dict:
  """Fine-tunes `params` on `data` with `strategy`; writes WORKDIR/best and the log.

  Returns the log (also in WORKDIR/finetune_log.json): every held-out evaluation, the initial
  and best held-out L1, the best step and whether it stopped early.
  """
  if steps < 1 or batch_size < 1 or eval_every < 1 or patience < 1:
    raise UserError("--steps, --batch-size, --eval-every and --patience must be positive")
  os.makedirs(workdir, exist_ok=True)
  model = build_model(config)
  labels = trainable_labels(params, strategy)
  trainable, total = count_params(params, labels)
  ft_config = finetune_config(config, steps, learning_rate)
  tx = optax.multi_transform({"trainable": make_optimizer(ft_config),
                              "frozen": optax.set_to_zero()}, labels)
  initial = jax.device_get(params)
  state = create_train_state(params, tx, use_ema=False)
  train_step = jax.jit(make_train_step(model, tx, ft_config))

  @jax.jit
  def heldout_l1(p, batch):
    return l1_loss(apply_to_batch(model, p, batch), batch["target"])

  heldout = data.heldout_batch()
  log = {"strategy": strategy, "trainable_params": trainable, "total_params": total,
         "trainable_keys": sorted(k for k, v in labels.items() if v == "trainable"),
         "train_pairs": [data.names[i] for i in data.train],
         "heldout_pairs": [data.names[i] for i in data.heldout],
         "steps": steps, "learning_rate": learning_rate, "batch_size": batch_size,
         "crop": data.crop, "seed": seed, "evaluations": []}
  best = float(heldout_l1(params, heldout))
  log.update(initial_heldout_l1=best, best_heldout_l1=best, best_step=0, stopped_early=False)
  log["evaluations"].append({"step": 0, "heldout_l1": best})
  best_params, waited, losses = initial, 0, []
  rng = np.random.default_rng(seed)
  logging.info("fine-tuning %d of %d params (%s); held-out L1 at start %.5f",
               trainable, total, strategy, best)
  bar = tqdm(range(1, steps + 1), desc=f"finetune {strategy}", disable=not progress,
             file=sys.stderr)
  for step in bar:
    state, metrics = train_step(state, data.train_batch(rng, batch_size))
    losses.append(metrics["train/loss"])
    if step % eval_every and step != steps:
      continue
    loss = float(heldout_l1(state.params, heldout))
    log["evaluations"].append({"step": step, "heldout_l1": loss,
                               "train_l1": float(np.mean(jax.device_get(losses)))})
    losses = []
    bar.set_postfix(heldout_l1=f"{loss:.4f}", best=f"{best:.4f}")
    if loss < best:
      best, waited = loss, 0
      best_params = jax.device_get(state.params)
      log.update(best_heldout_l1=best, best_step=step)
    else:
      waited += 1
    _write_json(os.path.join(workdir, LOG_NAME), log)
    if waited >= patience:
      log["stopped_early"] = True
      logging.info("no held-out improvement in %d evaluations: stopping at step %d",
                   patience, step)
      break
  checkpointing.save_params(os.path.join(workdir, BEST_NAME),
                            merge_frozen(best_params, initial, labels))
  log["checkpoint"] = os.path.join(workdir, BEST_NAME)
  _write_json(os.path.join(workdir, LOG_NAME), log)
  return log


def _write_json(path: str, obj: dict) -> None:
  with open(path + ".tmp", "w") as f:  # write then rename: a killed run leaves a whole log
    json.dump(obj, f, indent=2)
  os.replace(path + ".tmp", path)
