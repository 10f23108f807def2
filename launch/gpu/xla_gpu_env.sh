# shellcheck shell=bash
# The XLA / CUDA / NCCL environment for training GenLV on NVIDIA GPUs, sourced by
# train_single_node.sh and train_slurm.sbatch (one list, so that both launchers agree).
#
# genlv_gpu_env fills the array GENLV_GPU_ENV with words for env(1): `-u NAME` to drop a variable,
# NAME=VALUE to set one. The launchers run `env "${GENLV_GPU_ENV[@]}" python -m genlv_jax.train …`,
# so that --dry-run prints exactly what the trainer gets.
#
# Knobs (all optional, read from the environment):
#   GENLV_MEM_FRACTION   share of each GPU's memory JAX preallocates (default 0.90)
#   GENLV_TRITON_GEMM    true | false: --xla_gpu_enable_triton_gemm (default true, XLA's default)
#   GENLV_CUDA_DEVICE_MAX_CONNECTIONS  default 1; set it empty to leave CUDA's default (Blackwell)
#   GENLV_XLA_EXTRA      more XLA flags, e.g. the pipelined-collective flags named below
#   XLA_FLAGS            kept, after ours: a flag given there wins over the same flag here
#   NCCL_DEBUG           default WARN (INFO prints NCCL's topology and transport choices)
#
# Sources: JAX's "GPU performance tips" and "GPU memory allocation" pages (docs.jax.dev) and
# NVIDIA JAX-Toolbox's "GPU performance" page. Flag names were checked against jaxlib 0.10.2;
# tests/test_launch.py has the installed jaxlib parse the flags (XLA aborts on an unknown flag).

genlv_gpu_env() {
  GENLV_GPU_ENV=()

  # --- XLA compiler flags ---------------------------------------------------------------------
  local xla=(
    # Latency-hiding scheduler: schedules the asynchronous collectives (the data-parallel
    # gradient all-reduce; all-gather / reduce-scatter with mesh.fsdp > 1) so that they overlap
    # with independent compute instead of stalling it. The flag both JAX's tips and NVIDIA's
    # JAX images set for multi-GPU training.
    --xla_gpu_enable_latency_hiding_scheduler=true
    # Triton GEMM emitter: with it, XLA's autotuner can fuse GEMMs with neighbouring elementwise
    # ops and pick, per GEMM, a Triton kernel or cuBLAS (true is XLA's default; written out so
    # that it is visible and switchable). GenLV has many small batched GEMMs (8x8 windows
    # against 12x12 keys, per-head channel attention) where fused kernels may pay off (not
    # measured here). false = cuBLAS only: shorter compiles, what NVIDIA's JAX images once set
    # for LLMs. Compare both on your GPUs with a short run (steps/s in the log).
    "--xla_gpu_enable_triton_gemm=${GENLV_TRITON_GEMM:-true}"
  )
  # Also available (jaxlib 0.10.2), not set by default, worth a try with mesh.fsdp > 1 on several
  # nodes: --xla_gpu_enable_pipelined_all_gather=true --xla_gpu_enable_pipelined_reduce_scatter=true
  # --xla_gpu_enable_pipelined_all_reduce=true (prefetch the next scanned block's collectives)
  # and --xla_gpu_all_reduce_combine_threshold_bytes=N (fewer, larger gradient all-reduces).
  local flags="${xla[*]}"
  if [[ -n ${GENLV_XLA_EXTRA:-} ]]; then
    flags+=" $GENLV_XLA_EXTRA"
  fi
  if [[ -n ${XLA_FLAGS:-} ]]; then
    flags+=" $XLA_FLAGS"
  fi
  GENLV_GPU_ENV+=("XLA_FLAGS=$flags")

  # --- Memory ---------------------------------------------------------------------------------
  # JAX preallocates 75 % of each GPU by default; a training run can use more. 0.90 leaves
  # room for cuDNN/cuBLAS workspaces and NCCL buffers (NVIDIA's advice: 0.8-0.9; lower it if
  # the run dies with CUDA OOM outside XLA, e.g. in NCCL). jaxlib >= 0.10 reads
  # XLA_CLIENT_MEM_FRACTION; the old name XLA_PYTHON_CLIENT_MEM_FRACTION is deprecated and
  # setting both is an error, so a value under the old name is carried over and the old name
  # is dropped.
  local fraction=${GENLV_MEM_FRACTION:-${XLA_CLIENT_MEM_FRACTION:-${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.90}}}
  if [[ -n ${XLA_PYTHON_CLIENT_MEM_FRACTION+set} ]]; then
    GENLV_GPU_ENV+=(-u XLA_PYTHON_CLIENT_MEM_FRACTION)
  fi
  GENLV_GPU_ENV+=("XLA_CLIENT_MEM_FRACTION=$fraction")

  # --- CUDA -----------------------------------------------------------------------------------
  # One hardware work queue per device keeps kernels in the order XLA's latency-hiding
  # scheduler chose, which is what lets communication overlap compute (NVIDIA's advice for
  # Ampere/Hopper). NVIDIA advises against it on Blackwell: set it empty there.
  local connections=${GENLV_CUDA_DEVICE_MAX_CONNECTIONS-1}
  if [[ -n $connections ]]; then
    GENLV_GPU_ENV+=("CUDA_DEVICE_MAX_CONNECTIONS=$connections")
  fi

  # --- NCCL -----------------------------------------------------------------------------------
  # Warnings only; NCCL_DEBUG=INFO shows whether NVLink/NVSwitch (single node) or InfiniBand /
  # RoCE with GPUDirect RDMA (multi-node) is used: a run that falls back to TCP sockets across
  # nodes is several times slower. Cluster-specific settings (NCCL_SOCKET_IFNAME, NCCL_IB_HCA,
  # ...) belong to your cluster's documentation, not here. On H100/H200 with NVSwitch,
  # NCCL_NVLS_ENABLE=1 (NVLink SHARP) speeds up all-reduce at the cost of some GPU memory.
  GENLV_GPU_ENV+=("NCCL_DEBUG=${NCCL_DEBUG:-WARN}")

  # Python output unbuffered, so that log files and `tail -f` show progress as it happens.
  GENLV_GPU_ENV+=(PYTHONUNBUFFERED=1)
}

# Prints one shell word, quoted only when needed (for --dry-run output that can be pasted back).
genlv_quote_word() {
  local w=$1
  if [[ -n $w && $w =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$w"
  elif [[ $w =~ ^([A-Za-z_][A-Za-z0-9_]*=|--[A-Za-z0-9_.-]+=)(.+)$ ]]; then
    # NAME='value' / --flag='value': quote the value only
    local value=${BASH_REMATCH[2]}
    printf "%s'%s'" "${BASH_REMATCH[1]}" "${value//\'/\'\\\'\'}"
  else
    printf "'%s'" "${w//\'/\'\\\'\'}"
  fi
}

# Prints a command line, one line, each word quoted as needed.
genlv_print_cmd() {
  local out="" w
  for w in "$@"; do
    out+="${out:+ }$(genlv_quote_word "$w")"
  done
  printf '%s\n' "$out"
}
