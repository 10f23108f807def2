"""The pure parts of training: optimizer, train state, and the step (state, batch) -> (state, metrics).

Paper recipe (§IV-A): L1 loss, AdamW(β1 0.9, β2 0.99), lr 1e-4. Added for scale: warm-up and a
schedule, global-norm clipping, an optional EMA of the weights, and a non-finite guard that
skips the update (the host decides whether to stop, `config.on_nan`).
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax

from genlv_jax.errors import UserError
from genlv_jax.models import apply_to_batch

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Everything a step changes; one pytree, checkpointed whole."""
  step: jax.Array
  params: PyTree
  opt_state: PyTree
  ema_params: PyTree          # () when config.optimizer.ema_decay == 0


def learning_rate_schedule(config) -> optax.Schedule:
  """Linear warm-up to `learning_rate`, then cosine decay to 0 or constant (`schedule`)."""
  opt = config.optimizer
  warmup = max(int(opt.warmup_steps), 0)
  decay_steps = max(int(config.total_steps) - warmup, 1)
  if opt.schedule == "cosine":
    after = optax.cosine_decay_schedule(opt.learning_rate, decay_steps)
  elif opt.schedule == "constant":
    after = optax.constant_schedule(opt.learning_rate)
  else:
    raise UserError(f"optimizer.schedule must be 'cosine' or 'constant', got {opt.schedule!r}")
  if warmup == 0:
    return after
  return optax.join_schedules(
      [optax.linear_schedule(0.0, opt.learning_rate, warmup), after], [warmup])


def make_optimizer(config) -> optax.GradientTransformation:
  """Global-norm clipping then AdamW with the schedule."""
  opt = config.optimizer
  parts = []
  if opt.grad_clip_norm and opt.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(opt.grad_clip_norm))
  parts.append(optax.adamw(learning_rate_schedule(config), b1=opt.b1, b2=opt.b2,
                           weight_decay=opt.weight_decay))
  return optax.chain(*parts)


def create_train_state(params: PyTree, tx: optax.GradientTransformation,
                       use_ema: bool) -> TrainState:
  """The initial state around freshly initialised (or loaded) params."""
  return TrainState(
      step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
      ema_params=jax.tree.map(jnp.copy, params) if use_ema else ())


def l1_loss(prediction: jax.Array, target: jax.Array) -> jax.Array:
  """Mean absolute error in float32 (the papers' training loss)."""
  return jnp.mean(jnp.abs(prediction.astype(jnp.float32) - target.astype(jnp.float32)))


def make_train_step(model, tx: optax.GradientTransformation, config) -> Callable:
  """Returns the pure `train_step(state, batch) -> (state, metrics)` for `jax.jit`."""
  ema_decay = float(config.optimizer.ema_decay)
  schedule = learning_rate_schedule(config)

  def loss_fn(params, batch):
    return l1_loss(apply_to_batch(model, params, batch), batch["target"])

  def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    loss, grads = jax.value_and_grad(loss_fn)(state.params, batch)
    grad_norm = optax.global_norm(grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    # A non-finite loss or gradient leaves params and optimizer state as they were.
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)  # noqa: E731
    params = keep(params, state.params)
    opt_state = keep(opt_state, state.opt_state)
    ema = state.ema_params
    if ema_decay > 0:
      ema = keep(jax.tree.map(lambda e, p: ema_decay * e + (1 - ema_decay) * p, ema, params), ema)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              ema_params=ema)
    metrics = {"train/loss": loss, "train/grad_norm": grad_norm,
               "train/lr": schedule(state.step), "train/nonfinite": (~finite).astype(jnp.int32)}
    return new_state, metrics

  return train_step
