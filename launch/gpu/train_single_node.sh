#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# train_single_node.sh: train GenLV on one machine with several NVIDIA GPUs (8xA100 / 8xH100),
# one process driving all of them (the mesh spans the node's GPUs; no jax.distributed).
#
#   launch/gpu/train_single_node.sh --workdir /data/runs/genlv_huge \
#       --data-dir /data/tfds -- --config.mesh.data=8
#
# Runs in the foreground; put it under tmux or nohup for a long run. The XLA/NCCL settings it
# applies, each explained, are in launch/gpu/xla_gpu_env.sh. --dry-run prints the command.
set -euo pipefail

PROG=$(basename "$0")
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
# shellcheck source=xla_gpu_env.sh
source "$SCRIPT_DIR/xla_gpu_env.sh"

usage() {
  cat <<EOF
Usage: $PROG --workdir DIR [OPTIONS] [-- TRAIN FLAGS...]

Runs, from the repository root:
  env <XLA/NCCL settings> PYTHON -m genlv_jax.train --config CONFIG --workdir DIR [TRAIN FLAGS]

  --workdir DIR      checkpoints and metrics; local, NFS or gs:// (required). The trainer
                     resumes from the latest checkpoint there and saves one on SIGTERM.
  --config FILE      default configs/huge.py
  --data-dir DIR     tfds data_dir of the prepared dataset: --config.data.data_dir=DIR
  --gpus LIST        GPUs to use, e.g. 0,1,2,3 (sets CUDA_VISIBLE_DEVICES; default: all)
  --python PYTHON    default: the repository's .venv/bin/python if present, else python3
  --dry-run          print the command instead of running it
  -h, --help         this text
  -- FLAGS...        passed to genlv_jax.train, e.g. -- --config.batch_size=64 --config.mesh.data=8

Environment knobs (see launch/gpu/xla_gpu_env.sh): GENLV_MEM_FRACTION, GENLV_TRITON_GEMM,
GENLV_CUDA_DEVICE_MAX_CONNECTIONS, GENLV_XLA_EXTRA, XLA_FLAGS, NCCL_DEBUG.
EOF
}

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 2
}

main() {
  local workdir="" config="configs/huge.py" data_dir="" gpus="" python="" dry_run=${DRY_RUN:-0}
  local extra=() opt val has_val
  while (($#)); do
    opt=$1
    if [[ $opt == -- ]]; then
      shift
      extra=("$@")
      break
    fi
    has_val=0
    val=""
    if [[ $opt == --*=* ]]; then
      val=${opt#*=}
      opt=${opt%%=*}
      has_val=1
    fi
    case $opt in
      -h | --help)
        usage
        exit 0
        ;;
      --dry-run) dry_run=1 ;;
      --workdir | --config | --data-dir | --gpus | --python)
        if ((!has_val)); then
          (($# >= 2)) || die "option $opt needs a value"
          val=$2
          shift
        fi
        case $opt in
          --workdir) workdir=$val ;;
          --config) config=$val ;;
          --data-dir) data_dir=$val ;;
          --gpus) gpus=$val ;;
          --python) python=$val ;;
        esac
        ;;
      *) die "unknown argument '$opt' (training flags go after --; see --help)" ;;
    esac
    shift
  done

  [[ -n $workdir ]] || die "missing --workdir DIR (where checkpoints and metrics go)"
  if [[ -z $python ]]; then
    if [[ -x $REPO_ROOT/.venv/bin/python ]]; then
      python=$REPO_ROOT/.venv/bin/python
    else
      python=python3
    fi
  fi

  genlv_gpu_env
  local envs=("${GENLV_GPU_ENV[@]}")
  if [[ -n $gpus ]]; then
    [[ $gpus =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--gpus must be a comma-separated list of GPU numbers, got '$gpus'"
    envs+=("CUDA_VISIBLE_DEVICES=$gpus")
  fi
  # Inside a SLURM allocation (salloc, or srun with one task), jax.distributed's auto-detection
  # would give this single process only GPU number SLURM_LOCALID; JAX_LOCAL_DEVICE_IDS makes it
  # take every GPU it can see.
  if [[ -n ${SLURM_JOB_ID:-} ]]; then
    local n
    if [[ -n $gpus ]]; then
      n=$(($(tr -cd , <<<"$gpus" | wc -c) + 1))
    elif [[ -n ${CUDA_VISIBLE_DEVICES:-} ]]; then
      n=$(($(tr -cd , <<<"$CUDA_VISIBLE_DEVICES" | wc -c) + 1))
    else
      n=${SLURM_GPUS_ON_NODE:-8}
    fi
    envs+=("JAX_LOCAL_DEVICE_IDS=$(seq -s, 0 $((n - 1)))")
  fi

  local cmd=(env "${envs[@]}" "$python" -m genlv_jax.train --config "$config" --workdir "$workdir")
  if [[ -n $data_dir ]]; then
    cmd+=("--config.data.data_dir=$data_dir")
  fi
  cmd+=("${extra[@]}")

  cd "$REPO_ROOT"
  if ((dry_run)); then
    genlv_print_cmd cd "$REPO_ROOT"
    genlv_print_cmd "${cmd[@]}"
    return 0
  fi
  exec "${cmd[@]}"
}

main "$@"
