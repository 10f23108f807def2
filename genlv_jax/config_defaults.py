"""Defaults shared by every file in `configs/`: each config starts here and changes only what
its variant changes (Base/Large/Huge differ only where the paper's Table I differs).

Field names are a contract with the launch scripts and the README, which rely on `total_steps`,
`batch_size` (global), `image_size`, `seed`, `checkpoint_every`, `dtype`, `remat`, `init_from`,
`data.source`, `data.workers`, `mesh.data`, `mesh.fsdp`; model fields are X-Restormer's
constructor arguments plus the prompt fields.
"""

from __future__ import annotations

import ml_collections

# Logical axis -> mesh axes, the default of `config.sharding_rules` (training/sharding.py gives
# every parameter logical axes: a conv kernel `(conv_height, conv_width, conv_in, conv_out)`, a
# Dense kernel `(embed_in, embed_out)`, a scanned level a leading `layers`).
SHARDING_RULES = (
    ("batch", ("data", "fsdp")),
    ("conv_out", "fsdp"),
    ("embed_out", "fsdp"),
    ("conv_in", None), ("embed_in", None), ("conv_height", None), ("conv_width", None),
    ("channels", None), ("layers", None), ("relpos", None), ("head_dim", None),
)


def model_config() -> ml_collections.ConfigDict:
  """GenLV-Base's model section: the authors' `xrestormer_prompt_crossattn_base` (GenLV-101).

  Field names are the authors' constructor arguments; variants override what differs.
  """
  return ml_collections.ConfigDict(dict(
      dim=48,
      num_blocks=(2, 4, 4, 4),
      num_refinement_blocks=4,
      heads=(1, 2, 4, 8),        # per level, for both MDTA and OCAB; heads[3] at the bottleneck
      window_size=8,
      overlap_ratio=0.5,
      spatial_dim_head=16,
      ffn_expansion_factor=2.66,
      bias=False,
      scale=1,                   # X-Restormer's SR models upsample the input first
      # True: GenLV (visual prompt, SpatCrossAttn bottleneck, no global residual).
      # False: X-Restormer as released (configs/xrestormer.py).
      use_prompt=True,
      # nf of the prompt encoder: 32 in the authors' GenLV-101 file, 64 in their GenLV-30 file.
      prompt_encoder_width=32,
      # Channel order of the PyTorch checkpoints this config loads and writes: the authors
      # read images with OpenCV and never flip them, so their GenLV weights expect BGR; our
      # model takes RGB, and the converter permutes the first and last convs.
      checkpoint_channel_order="bgr",
      scan_blocks=False,         # nn.scan over the identical blocks of a level (layout only)
  ))


def ops_config() -> ml_collections.ConfigDict:
  """How each backend-specific operation is computed (genlv_jax/models/ops.py): same function,
  different speed. "auto" picks the fastest measured formulation for the backend."""
  return ml_collections.ConfigDict(dict(
      depthwise="auto",          # cpu_kernel | shifted | grouped
      windows="auto",            # reshape | patches
      attention="auto",          # xla | cudnn | default (jax's choice)
      conv="auto",               # cpu_kernel | xla
      layer_norm="auto",         # cpu_kernel | xla
  ))


def default_config() -> ml_collections.ConfigDict:
  """The whole config: the paper's training recipe (§IV-A) around GenLV-Base."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  # "rbg" (XLA's RngBitGenerator) compiles the init ~3x faster than "threefry2x32" on CPU and
  # is the fast choice on TPU (as MaxText does); "threefry2x32" gives the same stream on every
  # backend. Either way a run is a function of its config and seed on a given backend.
  config.prng_impl = "rbg"
  config.model = model_config()
  config.ops = ops_config()

  # Paper recipe: batch 64 of 256x256 crops, L1, AdamW(0.9, 0.99), lr 1e-4.
  config.batch_size = 64
  config.image_size = 256
  config.total_steps = 500_000
  config.dtype = "float32"       # compute dtype; params are always float32
  config.remat = False           # rematerialise each transformer block in the backward pass
  config.init_from = ""          # a .pth / .safetensors / orbax checkpoint to start from

  config.optimizer = ml_collections.ConfigDict(dict(
      learning_rate=1e-4, b1=0.9, b2=0.99, weight_decay=1e-4, warmup_steps=1000,
      schedule="cosine", grad_clip_norm=1.0, ema_decay=0.0))

  config.on_nan = "skip"         # a non-finite loss skips the update; "stop" ends the run

  config.checkpoint_every = 1000
  config.keep_checkpoints = 3
  config.async_checkpointing = True
  config.log_every = 50
  config.eval_every = 5000       # 0: no periodic evaluation
  config.eval_tasks = ""         # comma-separated task names; "" = the training tasks
  config.eval_images = 4         # held-out test images per task
  config.eval_prompts = 1        # prompt pairs per test image (metrics: mean over them)
  config.eval_batch_size = 8     # images per evaluation forward pass
  config.profile_steps = 0       # > 0: profile that many steps once, into the workdir
  # perf/* in metrics.jsonl: FLOPs of a step counted by XLA once at the start (count_flops;
  # it lowers the unrolled model, seconds to a minute for Huge) and MFU against the device's
  # published peak bf16 rate, or `peak_tflops` per device where > 0 (devices the table lacks).
  config.perf = ml_collections.ConfigDict(dict(count_flops=True, peak_tflops=0.0))

  config.data = ml_collections.ConfigDict(dict(
      source="builtin",          # builtin | folder:PATH | tfds:NAME
      data_dir="",               # tfds data_dir (local or gs://)
      split="train",             # tfds split to train on
      eval_split="",             # tfds split for evaluation ("": held-out training images)
      holdout=-1,                # images held out for evaluation (-1: min(64, N // 10))
      image_key="",              # tfds feature holding the image ("": autodetect)
      paired="",                 # "task=INPUT_DIR|TARGET_DIR;…" for paired-dataset tasks
      # The authors' prepared tree (…/GenLV_Processed_Data): every task with a folder there
      # reads its pairs (task_sources.AUTHORS_LAYOUT), procedural ones included.
      paired_root="",
      # The --output of `python -m genlv_jax.data.prepare`: every task with a folder of train
      # shards there reads its pairs from them (precomputed RTV, teacher targets, datasets).
      prepared_root="",
      # "ct=folder:/data/ct;satellite=tfds:aid;rtv=folder:…": clean images per task or domain
      # (satellite ct mri infrared face weather fluid_flow cosmology fivek underwater).
      task_sources="",
      # A satellite/ct/mri/infrared/face/weather/fluid_flow/cosmology task without its
      # domain's images has no data (a named task stops the run); True: synthesise it from
      # `source` instead.
      domain_fallback=False,
      # "random": a random image_size crop; "resize": the whole image resized to image_size
      # (the authors' loader: INTER_AREA when larger, INTER_CUBIC when a side is smaller).
      crop="random",
      workers=0,                 # grain worker processes (0: in the main process)
      read_threads=1,            # reader threads per process
      prefetch=2,                # batches prefetched per worker
      # "acmmm30" (the ACMMM 30-task set), "procedural", or comma-separated task names. RTV and
      # multi-scale tone cost ~1 s of CPU a sample: down-weight them (task_weights) or
      # precompute them for long runs (BENCHMARKS.md, "Data pipeline").
      tasks="acmmm30",
      # | "official101" (the authors' GenLV-101 mixture, task_selection.OFFICIAL101)
      # | "category:restoration=2,…" | "task:gaussian_denoising=3,…"
      task_weights="uniform",
  ))

  # The mesh within a slice (ICI; -1: all remaining devices) and, for multislice runs, the
  # slices across the data-centre network (DCN) on the same two axes (training/sharding.py).
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, dcn_data=1, dcn_fsdp=1))
  # Logical axis -> mesh axes; params shard their output channels over `fsdp`, the batch over
  # `data` and `fsdp` together.
  config.sharding_rules = SHARDING_RULES
  config.sharding_min_size = 2 ** 14  # smaller params (norms, biases, tables) stay replicated
  return config


def pod_training(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """How the big variants (Huge, Giant) train on TPU/GPU: bfloat16 compute, each block
  rematerialised and each level's blocks under `nn.scan` (activation memory and compile time),
  ImageNet from a tfds ArrayRecord dataset. Returns `config`, changed in place."""
  config.dtype = "bfloat16"
  config.remat = True
  config.model.scan_blocks = True
  config.data.source = "tfds:imagenet2012"
  return config
