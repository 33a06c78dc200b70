#!/usr/bin/env bash
# Create .venv and install flareflow with pinned, known-good versions (see constraints.txt).
#
# Prints one "[install  NNNs] ..." line per phase, pip's "Collecting/Downloading/Installing"
# lines for the two long steps (pip's errors and warnings go to stderr unfiltered), and a
# heartbeat every INSTALL_HEARTBEAT_S seconds (default 30) while a step runs, so a quiet log
# is never a hung one. A fresh install takes a few minutes, mostly the torch download.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
heartbeat_s=${INSTALL_HEARTBEAT_S:-30}
start_s=$SECONDS
beat_pid=

phase() { printf '[install %4ds] %s\n' "$((SECONDS - start_s))" "$*"; }

stop_heartbeat() {
  if [ -n "$beat_pid" ]; then
    kill "$beat_pid" 2>/dev/null || true
    wait "$beat_pid" 2>/dev/null || true
    beat_pid=
  fi
}
trap stop_heartbeat EXIT

# pip's progress lines only (one per package; the package list cut at 200 characters).
# (A shell loop, not awk/grep: those may buffer a pipe and print the lines only at the end.)
pip_progress() {
  local line
  while IFS= read -r line; do
    line=${line#"${line%%[! ]*}"}
    case $line in
      Collecting* | Downloading* | "Installing collected"* | "Successfully installed"*)
        printf '    %s\n' "${line:0:200}" ;;
    esac
  done
}

# long_step LABEL CMD...: run CMD with its stdout through pip_progress and a heartbeat.
long_step() {
  local label=$1
  shift
  (while sleep "$heartbeat_s"; do phase "... still $label"; done) &
  beat_pid=$!
  local rc=0
  "$@" --progress-bar off | pip_progress || rc=$?
  stop_heartbeat
  return "$rc"
}

if [ -x .venv/bin/python ]; then
  phase "using the existing virtual environment .venv"
else
  phase "creating the virtual environment .venv ($(python3 --version))"
  python3 -m venv .venv
fi
phase "upgrading pip"
.venv/bin/pip install -q --upgrade pip
# torch first and pinned: any looser spec pulls the CUDA build (several GB).
phase "installing torch==2.13.0 (pinned; the largest download)"
long_step "installing torch" .venv/bin/pip install torch==2.13.0
phase "installing flareflow (editable, with [test]) and its pinned dependencies (constraints.txt)"
long_step "installing flareflow's dependencies" \
  .venv/bin/pip install -c constraints.txt -e ".[test]"
phase "done in $((SECONDS - start_s)) s"
