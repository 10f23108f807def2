#!/usr/bin/env bash
# genlv_tpu.sh: train GenLV on a Cloud TPU VM or pod slice from your workstation.
#
#   launch/tpu/genlv_tpu.sh --env-file my.env create --wait   # queued resource (or TPU VM)
#   launch/tpu/genlv_tpu.sh --env-file my.env setup           # ship this repo, install it
#   launch/tpu/genlv_tpu.sh --env-file my.env train -- --config.mesh.data=16
#   launch/tpu/genlv_tpu.sh --env-file my.env logs -f         # worker 0's log
#   launch/tpu/genlv_tpu.sh --env-file my.env delete
#
# Every sub-command takes --dry-run (print the commands, run nothing) and --help.
# Settings come from flags or from an env file of KEY=VALUE lines (launch/tpu/example.env);
# flags win. Nothing secret is read or written: gcloud uses its own credentials.
set -euo pipefail

PROG=$(basename "$0")
if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
  echo "$PROG: error: needs bash >= 4.4 (this is $BASH_VERSION; on macOS: brew install bash)" >&2
  exit 2
fi
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

# Layout on every worker, relative to the home directory.
REMOTE_SRC=genlv-jax        # the package source (extracted from a git archive)
REMOTE_VENV=genlv-venv      # its virtual environment
REMOTE_LOGS=genlv-logs      # train-<time>.log per run, latest.log, train.pid

# Settings (env-file keys). Defaults here; an --env-file overrides them; flags override both.
TPU_NAME=""
PROJECT=""                  # empty: gcloud's configured project
ZONE=""
ACCELERATOR_TYPE=""         # v4-32, v5p-64, v5litepod-256 (v5e-N is accepted), v6e-64, ...
RUNTIME_VERSION=""          # empty: chosen from the accelerator type (see `create --help`)
SPOT=0
QUEUED=1                    # 1: queued resource (recommended); 0: plain `tpu-vm create`
QUEUED_RESOURCE_ID=""       # empty: <TPU_NAME>-qr
VALID_UNTIL_DURATION=""     # queued resources: give up if not provisioned within this (e.g. 6h)
WORKDIR=""                  # gs://BUCKET/PATH: checkpoints, metrics, TensorBoard events
CONFIG="configs/huge.py"
DATA_DIR=""                 # tfds data_dir (gs://BUCKET/tfds): --config.data.data_dir
GIT_REF="HEAD"              # what `setup` ships (git archive)
PYTHON_VERSION="3.11"       # the workers' venv Python (uv fetches it if the image lacks it)
JAX_REQUIREMENT="jax[tpu]"  # pin it, e.g. jax[tpu]==0.10.2
EXTRAS=""                   # package extras to install, e.g. bridge (PyTorch init_from)
TRAIN_ENV=""                # space-separated NAME=VALUE for the trainer, e.g. LIBTPU_INIT_ARGS=...
SETTING_KEYS="TPU_NAME PROJECT ZONE ACCELERATOR_TYPE RUNTIME_VERSION SPOT QUEUED
QUEUED_RESOURCE_ID VALID_UNTIL_DURATION WORKDIR CONFIG DATA_DIR GIT_REF PYTHON_VERSION
JAX_REQUIREMENT EXTRAS TRAIN_ENV"

# Per-invocation options (flags only).
DRY_RUN=0
HELP=0
WAIT=0
YES=0
FOLLOW=0
WORKER=0
LINES=100
STOP_TIMEOUT=300
SUBCOMMAND=""
TRAIN_EXTRA=()
SCOPE=()

# ---------------------------------------------------------------------------------------------
# Help

usage() {
  cat <<EOF
Usage: $PROG [OPTIONS] SUBCOMMAND [SUBCOMMAND OPTIONS] [-- TRAIN FLAGS...]

Train GenLV on a Cloud TPU VM or pod slice: every worker runs the same command at once and
jax.distributed.initialize() finds the others.

Sub-commands:
  create   create the TPU: a queued resource (default; --spot for Spot capacity) or a TPU VM
  setup    ship this repository (git archive) to every worker and install it with jax[tpu]
  train    start python -m genlv_jax.train on every worker, detached; one log per worker
  stop     send SIGTERM to the trainer on every worker (it saves a checkpoint) and wait
  logs     print (or follow) one worker's training log
  status   the TPU's state and whether the trainer runs on each worker
  delete   delete the queued resource and its TPU (or the TPU VM)

Options shared by all sub-commands:
  --env-file FILE         read settings from FILE (KEY=VALUE lines; see launch/tpu/example.env)
  --name NAME             TPU (node) name                                    [TPU_NAME]
  --zone ZONE             e.g. us-central2-b                                 [ZONE]
  --project PROJECT       default: gcloud's configured project               [PROJECT]
  --queued / --no-queued  use a queued resource (default) or a plain TPU VM  [QUEUED]
  --queued-resource-id ID default: NAME-qr                                   [QUEUED_RESOURCE_ID]
  --dry-run               print every command instead of running it
  -h, --help              this text; SUBCOMMAND --help explains that sub-command

Run '$PROG SUBCOMMAND --help' for the sub-command's own options.
EOF
}

help_create() {
  cat <<EOF
Usage: $PROG create [OPTIONS]

Creates the TPU. With a queued resource (the default) the request waits in Cloud TPU's queue
until capacity is free; --wait polls until it is ACTIVE. With --no-queued it runs
'gcloud compute tpus tpu-vm create', which fails at once when there is no capacity.

  --accelerator-type TYPE  v4-32, v5p-64, v5litepod-256 (v5e-256 accepted), v6e-64 ...
                           (required)                                        [ACCELERATOR_TYPE]
  --runtime-version VER    default from the type: v4 and older tpu-ubuntu2204-base,
                           v5e v2-alpha-tpuv5-lite, v5p v2-alpha-tpuv5, v6e v2-alpha-tpuv6e
                                                                             [RUNTIME_VERSION]
  --spot                   Spot capacity: cheaper, preemptible (the trainer resumes from the
                           latest checkpoint in the workdir; recreate the TPU and run
                           setup and train again)                            [SPOT]
  --valid-until-duration D queued resources: drop the request if not provisioned within D
                                                                             [VALID_UNTIL_DURATION]
  --wait                   queued resources: poll until the request is ACTIVE
  plus the shared options (--name, --zone, --project, --queued/--no-queued, --dry-run)
EOF
}

help_setup() {
  cat <<EOF
Usage: $PROG setup [OPTIONS]

On your machine: git archive GIT_REF of this repository into a tarball. Then on every worker
(gcloud ... --worker=all): unpack it into ~/$REMOTE_SRC, create ~/$REMOTE_VENV with uv (Python
PYTHON_VERSION; uv is installed with pip --user when missing), install the package (editable)
and JAX_REQUIREMENT, and print jax.device_count() as a check (all workers must answer).
Uncommitted changes are not shipped: commit them, or pass --ref.

  --ref REF                 git commit, branch or tag to ship (default HEAD)  [GIT_REF]
  --python-version VER      default 3.11                                      [PYTHON_VERSION]
  --jax REQUIREMENT         default 'jax[tpu]'                                [JAX_REQUIREMENT]
  --extras LIST             package extras, e.g. bridge                       [EXTRAS]
  plus the shared options (--name, --zone, --project, --dry-run)
EOF
}

help_train() {
  cat <<EOF
Usage: $PROG train [OPTIONS] [-- TRAIN FLAGS...]

Starts, on every worker at once (--worker=all), detached with setsid/nohup:
  python -m genlv_jax.train --config CONFIG --workdir WORKDIR [--config.data.data_dir=DATA_DIR] [TRAIN FLAGS]
Each worker logs to ~/$REMOTE_LOGS/train-<time>.log (and ~/$REMOTE_LOGS/latest.log points to it).
Refuses to start where a trainer is still running (see stop). The trainer resumes from the
latest checkpoint in WORKDIR, so 'train' after a preemption continues the run.

  --workdir gs://BUCKET/PATH  checkpoints and metrics (required; every worker
                              writes there, so it must be gs://)             [WORKDIR]
  --config FILE               default configs/huge.py                        [CONFIG]
  --data-dir gs://BUCKET/tfds the tfds data_dir of the prepared dataset      [DATA_DIR]
  --env NAME=VALUE            environment for the trainer (repeatable), e.g.
                              LIBTPU_INIT_ARGS=...                           [TRAIN_ENV]
  -- FLAGS...                 passed to genlv_jax.train as they are, e.g.
                              -- --config.batch_size=64 --config.mesh.data=16
  plus the shared options (--name, --zone, --project, --dry-run)
EOF
}

help_stop() {
  cat <<EOF
Usage: $PROG stop [OPTIONS]

Sends SIGTERM to the trainer's process group on every worker (the trainer saves a checkpoint on
SIGTERM) and waits up to --timeout seconds for it to exit.

  --timeout SECONDS   default $STOP_TIMEOUT
  plus the shared options (--name, --zone, --project, --dry-run)
EOF
}

help_logs() {
  cat <<EOF
Usage: $PROG logs [OPTIONS]

Prints the last lines of a worker's current training log (~/$REMOTE_LOGS/latest.log).

  --worker N|all   which worker (default 0: the one that writes metrics); 'all' without -f
  -n, --lines N    how many lines (default $LINES)
  -f, --follow     keep following the log (Ctrl-C to stop)
  plus the shared options (--name, --zone, --project, --dry-run)
EOF
}

help_status() {
  cat <<EOF
Usage: $PROG status [OPTIONS]

Shows the queued resource's state (with queued resources), the TPU's state and health, and
on every worker whether the trainer runs, with the last line of its log.

  plus the shared options (--name, --zone, --project, --queued/--no-queued, --dry-run)
EOF
}

help_delete() {
  cat <<EOF
Usage: $PROG delete [OPTIONS]

Deletes the queued resource together with its TPU (queued-resources delete --force), or the
TPU VM with --no-queued. gcloud asks for confirmation unless --yes is given. The workdir in
Cloud Storage is kept.

  -y, --yes   do not ask (passes --quiet to gcloud)
  plus the shared options (--name, --zone, --project, --queued/--no-queued, --dry-run)
EOF
}

# ---------------------------------------------------------------------------------------------
# Helpers

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 2
}

warn() {
  printf '%s: warning: %s\n' "$PROG" "$*" >&2
}

# One shell word, quoted only when needed, so that printed commands can be pasted back.
quote_word() {
  local w=$1
  if [[ -n $w && $w =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$w"
  elif [[ $w =~ ^(--[A-Za-z0-9_-]+=)(.+)$ ]]; then  # --flag='value with spaces'
    local value=${BASH_REMATCH[2]}
    printf "%s'%s'" "${BASH_REMATCH[1]}" "${value//\'/\'\\\'\'}"
  else
    printf "'%s'" "${w//\'/\'\\\'\'}"
  fi
}

quote_cmd() {
  local out="" w
  for w in "$@"; do
    out+="${out:+ }$(quote_word "$w")"
  done
  printf '%s' "$out"
}

# Runs a command; with --dry-run only prints it (to stdout). Otherwise traces it to stderr.
run() {
  if ((DRY_RUN)); then
    printf '%s\n' "$(quote_cmd "$@")"
    return 0
  fi
  printf '+ %s\n' "$(quote_cmd "$@")" >&2
  "$@"
}

note() {
  if ((DRY_RUN)); then
    printf '# %s\n' "$*"
  else
    printf '%s: %s\n' "$PROG" "$*" >&2
  fi
}

as_bool() {  # NAME: normalises a 0/1 setting, refusing anything else
  local name=$1 value=${!1}
  case ${value,,} in
    1 | true | yes | on) printf -v "$name" 1 ;;
    0 | false | no | off | "") printf -v "$name" 0 ;;
    *) die "$name must be 0 or 1, got '$value'" ;;
  esac
}

require() {  # NAME FLAG
  local name=$1 flag=$2
  if [[ -z ${!name} ]]; then
    die "missing setting $name: pass $flag or set $name=... in an --env-file"
  fi
}

load_env_file() {
  local file=$1 line key value n=0
  [[ -f $file ]] || die "env file not found: $file"
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%$'\r'}
    if [[ $line =~ ^[[:space:]]*(#.*)?$ ]]; then
      continue
    fi
    if [[ ! $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Z_][A-Z0-9_]*)=(.*)$ ]]; then
      die "$file:$n: expected KEY=VALUE, got: $line"
    fi
    key=${BASH_REMATCH[2]}
    value=${BASH_REMATCH[3]}
    value=${value%"${value##*[![:space:]]}"}
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
      value=${BASH_REMATCH[1]}
    fi
    if [[ " ${SETTING_KEYS//$'\n'/ } " != *" $key "* ]]; then
      die "$file:$n: unknown setting $key (known: ${SETTING_KEYS//$'\n'/ })"
    fi
    printf -v "$key" '%s' "$value"
  done <"$file"
}

# v5e's gcloud accelerator types are called v5litepod-N.
normalise_accelerator() {
  if [[ $ACCELERATOR_TYPE == v5e-* ]]; then
    local renamed="v5litepod-${ACCELERATOR_TYPE#v5e-}"
    note "accelerator type $ACCELERATOR_TYPE is called $renamed by gcloud"
    ACCELERATOR_TYPE=$renamed
  fi
}

default_runtime_version() {
  case $ACCELERATOR_TYPE in
    v6e-*) printf 'v2-alpha-tpuv6e' ;;
    v5p-*) printf 'v2-alpha-tpuv5' ;;
    v5litepod-*) printf 'v2-alpha-tpuv5-lite' ;;
    v2-* | v3-* | v4-*) printf 'tpu-ubuntu2204-base' ;;
    *) die "no default runtime version for accelerator type '$ACCELERATOR_TYPE': pass --runtime-version" ;;
  esac
}

common_checks() {
  require TPU_NAME --name
  require ZONE --zone
  as_bool SPOT
  as_bool QUEUED
  [[ -n $QUEUED_RESOURCE_ID ]] || QUEUED_RESOURCE_ID="$TPU_NAME-qr"
  SCOPE=(--zone="$ZONE")
  if [[ -n $PROJECT ]]; then
    SCOPE+=(--project="$PROJECT")
  fi
}

tpu_ssh() {  # WORKER REMOTE_COMMAND
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${SCOPE[@]}" --worker="$1" --command="$2"
}

# The shell words of `python -m genlv_jax.train ...`, each quoted for the workers' bash.
train_command_words() {
  local words=() w
  words+=(-m genlv_jax.train --config "$CONFIG" --workdir "$WORKDIR")
  if [[ -n $DATA_DIR ]]; then
    words+=("--config.data.data_dir=$DATA_DIR")
  fi
  words+=("${TRAIN_EXTRA[@]}")
  for w in "${words[@]}"; do
    printf ' %q' "$w"
  done
}

# ---------------------------------------------------------------------------------------------
# Sub-commands

cmd_create() {
  common_checks
  require ACCELERATOR_TYPE --accelerator-type
  normalise_accelerator
  [[ -n $RUNTIME_VERSION ]] || RUNTIME_VERSION=$(default_runtime_version)
  local extra=()
  if ((SPOT)); then
    extra+=(--spot)
  fi
  if ((QUEUED)); then
    if [[ -n $VALID_UNTIL_DURATION ]]; then
      extra+=(--valid-until-duration="$VALID_UNTIL_DURATION")
    fi
    run gcloud compute tpus queued-resources create "$QUEUED_RESOURCE_ID" "${SCOPE[@]}" \
      --node-id="$TPU_NAME" --accelerator-type="$ACCELERATOR_TYPE" \
      --runtime-version="$RUNTIME_VERSION" "${extra[@]}"
    if ((WAIT)); then
      wait_active
    else
      note "the request waits for capacity; '$PROG status' shows its state (ACTIVE = ready)"
    fi
  else
    if [[ -n $VALID_UNTIL_DURATION ]]; then
      die "--valid-until-duration needs a queued resource (drop --no-queued)"
    fi
    run gcloud compute tpus tpu-vm create "$TPU_NAME" "${SCOPE[@]}" \
      --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION" "${extra[@]}"
  fi
}

wait_active() {
  local describe=(gcloud compute tpus queued-resources describe "$QUEUED_RESOURCE_ID" "${SCOPE[@]}"
    --format='value(state.state)')
  if ((DRY_RUN)); then
    note "poll every 60 s until the state is ACTIVE:"
    run "${describe[@]}"
    return 0
  fi
  local state
  while true; do
    state=$("${describe[@]}")
    case $state in
      ACTIVE)
        note "queued resource $QUEUED_RESOURCE_ID is ACTIVE"
        return 0
        ;;
      FAILED | SUSPENDED)
        printf '%s: error: queued resource %s is %s\n' "$PROG" "$QUEUED_RESOURCE_ID" "$state" >&2
        return 1
        ;;
    esac
    note "queued resource $QUEUED_RESOURCE_ID: ${state:-unknown}; checking again in 60 s"
    sleep 60
  done
}

cmd_setup() {
  common_checks
  require GIT_REF --ref
  require PYTHON_VERSION --python-version
  require JAX_REQUIREMENT --jax
  local tarball="${TMPDIR:-/tmp}/genlv-jax-$TPU_NAME.tar.gz"
  if ((!DRY_RUN)); then
    git -C "$REPO_ROOT" rev-parse --verify --quiet "$GIT_REF^{commit}" >/dev/null ||
      die "git ref '$GIT_REF' not found in $REPO_ROOT (setup ships a git archive of it)"
  fi
  if [[ $GIT_REF == HEAD ]] && [[ -n $(git -C "$REPO_ROOT" status --porcelain 2>/dev/null || true) ]]; then
    warn "the working tree has uncommitted or untracked files; setup ships HEAD only"
  fi

  local package="./$REMOTE_SRC"
  if [[ -n $EXTRAS ]]; then
    package+="[$EXTRAS]"
  fi
  local remote
  remote="set -euo pipefail; cd ~"
  remote+="; if [ -f $REMOTE_LOGS/train.pid ] && kill -0 \"\$(cat $REMOTE_LOGS/train.pid)\" 2>/dev/null; then echo \"\$(hostname): a trainer is running; run '$PROG stop' first\" >&2; exit 1; fi"
  remote+="; rm -rf $REMOTE_SRC; mkdir -p $REMOTE_SRC"
  remote+="; tar -xzf $REMOTE_SRC.tar.gz -C $REMOTE_SRC --strip-components=1; rm -f $REMOTE_SRC.tar.gz"
  remote+="; python3 -m pip --version >/dev/null 2>&1 || { sudo apt-get update -qq && sudo apt-get install -y -qq python3-pip; }"
  remote+="; command -v uv >/dev/null || [ -x ~/.local/bin/uv ] || python3 -m pip install --user --quiet uv"
  remote+="; UV=\$(command -v uv || echo ~/.local/bin/uv)"
  remote+="; [ -x $REMOTE_VENV/bin/python ] || \"\$UV\" venv --python $(printf '%q' "$PYTHON_VERSION") $REMOTE_VENV"
  remote+="; \"\$UV\" pip install --python $REMOTE_VENV/bin/python --reinstall-package genlv-jax -e $(printf '%q' "$package") $(printf '%q' "$JAX_REQUIREMENT")"
  remote+="; timeout 600 $REMOTE_VENV/bin/python -c 'import jax; print(\"process\", jax.process_index(), \"of\", jax.process_count(), \"devices\", jax.device_count())'"

  run git -C "$REPO_ROOT" archive --format=tar.gz --prefix="$REMOTE_SRC/" -o "$tarball" "$GIT_REF"
  run gcloud compute tpus tpu-vm scp "$tarball" "$TPU_NAME:$REMOTE_SRC.tar.gz" "${SCOPE[@]}" --worker=all
  run rm -f "$tarball"
  tpu_ssh all "$remote"
}

cmd_train() {
  common_checks
  require WORKDIR --workdir
  require CONFIG --config
  if [[ $WORKDIR != gs://* ]]; then
    die "WORKDIR must be a gs:// path, got '$WORKDIR': every worker writes checkpoints there"
  fi
  if [[ -n $DATA_DIR && $DATA_DIR != gs://* ]]; then
    warn "DATA_DIR '$DATA_DIR' is not gs://: it must exist on every worker"
  fi
  local env_words="PYTHONUNBUFFERED=1" kv kvs=()
  read -ra kvs <<<"$TRAIN_ENV"  # space-separated NAME=VALUE words (no globbing)
  for kv in "${kvs[@]}"; do
    [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "TRAIN_ENV / --env entries must be NAME=VALUE, got '$kv'"
    env_words+=" $(printf '%q' "$kv")"
  done
  local pidf="\$HOME/$REMOTE_LOGS/train.pid"
  local remote
  remote="set -euo pipefail; cd ~; mkdir -p $REMOTE_LOGS; pidf=$pidf"
  remote+="; if [ -f \"\$pidf\" ] && kill -0 \"\$(cat \"\$pidf\")\" 2>/dev/null; then echo \"\$(hostname): the trainer is still running (pid \$(cat \"\$pidf\")); run '$PROG stop' first\" >&2; exit 1; fi"
  remote+="; log=\$HOME/$REMOTE_LOGS/train-\$(date +%Y%m%d-%H%M%S).log; ln -sfn \"\$log\" $REMOTE_LOGS/latest.log"
  remote+="; cd $REMOTE_SRC"
  remote+="; setsid nohup env $env_words \$HOME/$REMOTE_VENV/bin/python$(train_command_words) >\"\$log\" 2>&1 </dev/null & echo \$! >\"\$pidf\""
  remote+="; echo \"\$(hostname): started pid \$(cat \"\$pidf\"), log \$log\""
  tpu_ssh all "$remote"
  note "follow worker 0's log with: $PROG (same settings) logs -f"
}

cmd_stop() {
  common_checks
  [[ $STOP_TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds, got '$STOP_TIMEOUT'"
  local remote
  remote="pidf=\$HOME/$REMOTE_LOGS/train.pid"
  remote+="; if [ -f \"\$pidf\" ] && kill -0 \"\$(cat \"\$pidf\")\" 2>/dev/null; then pid=\$(cat \"\$pidf\"); kill -TERM -- \"-\$pid\""
  remote+="; echo \"\$(hostname): sent SIGTERM to the trainer (pid \$pid)\""
  remote+="; for _ in \$(seq $STOP_TIMEOUT); do kill -0 \"\$pid\" 2>/dev/null || break; sleep 1; done"
  remote+="; if kill -0 \"\$pid\" 2>/dev/null; then echo \"\$(hostname): still running after $STOP_TIMEOUT s\" >&2; exit 1; fi"
  remote+="; echo \"\$(hostname): stopped\"; else echo \"\$(hostname): no trainer running\"; fi"
  tpu_ssh all "$remote"
}

cmd_logs() {
  common_checks
  [[ $LINES =~ ^[0-9]+$ ]] || die "--lines must be a number, got '$LINES'"
  [[ $WORKER == all || $WORKER =~ ^[0-9]+$ ]] || die "--worker must be a number or 'all', got '$WORKER'"
  if [[ $WORKER == all ]] && ((FOLLOW)); then
    die "--follow needs one worker (--worker N)"
  fi
  local log="\$HOME/$REMOTE_LOGS/latest.log" remote
  if ((FOLLOW)); then
    remote="tail -n $LINES -F $log"
  else
    remote="echo \"== \$(hostname) ==\"; if [ -e $log ]; then tail -n $LINES $log; else echo 'no training log yet'; fi"
  fi
  tpu_ssh "$WORKER" "$remote"
}

cmd_status() {
  common_checks
  if ((QUEUED)); then
    run gcloud compute tpus queued-resources describe "$QUEUED_RESOURCE_ID" "${SCOPE[@]}" \
      --format='yaml(name,state)' || true
  fi
  if ! run gcloud compute tpus tpu-vm describe "$TPU_NAME" "${SCOPE[@]}" \
    --format='yaml(name,acceleratorType,runtimeVersion,state,health,schedulingConfig)'; then
    note "TPU $TPU_NAME does not exist (yet): nothing runs"
    return 0
  fi
  local remote
  remote="pidf=\$HOME/$REMOTE_LOGS/train.pid; log=\$HOME/$REMOTE_LOGS/latest.log"
  remote+="; if [ -f \"\$pidf\" ] && kill -0 \"\$(cat \"\$pidf\")\" 2>/dev/null; then state=\"trainer running (pid \$(cat \"\$pidf\"))\"; else state='no trainer running'; fi"
  remote+="; last=\$(tail -n 1 \"\$log\" 2>/dev/null || true); echo \"\$(hostname): \$state; last log line: \${last:-none}\""
  tpu_ssh all "$remote"
}

cmd_delete() {
  common_checks
  local quiet=()
  if ((YES)); then
    quiet=(--quiet)
  fi
  if ((QUEUED)); then
    run gcloud compute tpus queued-resources delete "$QUEUED_RESOURCE_ID" "${SCOPE[@]}" --force "${quiet[@]}"
  else
    run gcloud compute tpus tpu-vm delete "$TPU_NAME" "${SCOPE[@]}" "${quiet[@]}"
  fi
}

# ---------------------------------------------------------------------------------------------
# Command line

main() {
  local opts=() i
  while (($#)); do
    if [[ $1 == -- ]]; then
      shift
      TRAIN_EXTRA=("$@")
      break
    fi
    opts+=("$1")
    shift
  done

  # The env file first, so that flags override it wherever they stand.
  for ((i = 0; i < ${#opts[@]}; i++)); do
    case ${opts[i]} in
      --env-file=*) load_env_file "${opts[i]#*=}" ;;
      --env-file)
        ((i + 1 < ${#opts[@]})) || die "option --env-file needs a value"
        load_env_file "${opts[i + 1]}"
        ;;
    esac
  done

  set -- "${opts[@]}"
  local opt val has_val
  while (($#)); do
    opt=$1
    has_val=0
    val=""
    if [[ $opt == --*=* ]]; then
      val=${opt#*=}
      opt=${opt%%=*}
      has_val=1
    fi
    case $opt in
      -h | --help) HELP=1 ;;
      --dry-run) DRY_RUN=1 ;;
      --spot) SPOT=1 ;;
      --no-spot) SPOT=0 ;;
      --queued) QUEUED=1 ;;
      --no-queued) QUEUED=0 ;;
      --wait) WAIT=1 ;;
      -y | --yes) YES=1 ;;
      -f | --follow) FOLLOW=1 ;;
      --env-file | --name | --zone | --project | --queued-resource-id | --accelerator-type | \
        --runtime-version | --valid-until-duration | --workdir | --config | --data-dir | --ref | \
        --python-version | --jax | --extras | --env | --worker | -n | --lines | --timeout)
        if ((!has_val)); then
          (($# >= 2)) || die "option $opt needs a value"
          val=$2
          shift
        fi
        case $opt in
          --env-file) ;;  # already loaded
          --name) TPU_NAME=$val ;;
          --zone) ZONE=$val ;;
          --project) PROJECT=$val ;;
          --queued-resource-id) QUEUED_RESOURCE_ID=$val ;;
          --accelerator-type) ACCELERATOR_TYPE=$val ;;
          --runtime-version) RUNTIME_VERSION=$val ;;
          --valid-until-duration) VALID_UNTIL_DURATION=$val ;;
          --workdir) WORKDIR=$val ;;
          --config) CONFIG=$val ;;
          --data-dir) DATA_DIR=$val ;;
          --ref) GIT_REF=$val ;;
          --python-version) PYTHON_VERSION=$val ;;
          --jax) JAX_REQUIREMENT=$val ;;
          --extras) EXTRAS=$val ;;
          --env) TRAIN_ENV+="${TRAIN_ENV:+ }$val" ;;
          --worker) WORKER=$val ;;
          -n | --lines) LINES=$val ;;
          --timeout) STOP_TIMEOUT=$val ;;
        esac
        ;;
      -*) die "unknown option $opt (see $PROG ${SUBCOMMAND:+$SUBCOMMAND }--help)" ;;
      *)
        if [[ -n $SUBCOMMAND ]]; then
          die "unexpected argument '$opt' (training flags go after --)"
        fi
        SUBCOMMAND=$opt
        ;;
    esac
    shift
  done

  case $SUBCOMMAND in
    create | setup | train | stop | logs | status | delete)
      if ((HELP)); then
        "help_$SUBCOMMAND"
        exit 0
      fi
      if ((${#TRAIN_EXTRA[@]})) && [[ $SUBCOMMAND != train ]]; then
        die "flags after -- are for the train sub-command only"
      fi
      "cmd_$SUBCOMMAND"
      ;;
    "")
      if ((HELP)); then
        usage
        exit 0
      fi
      usage >&2
      exit 2
      ;;
    *) die "unknown sub-command '$SUBCOMMAND' (create, setup, train, stop, logs, status, delete)" ;;
  esac
}

main "$@"
