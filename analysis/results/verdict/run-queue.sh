#!/usr/bin/env bash
# What is left of issue 26's simulations: the soft disks at 0.005 and then 0.001, each on both cores
# (2 MPI ranks), niced so that interactive work keeps priority. Idempotent: started again (a new
# session, after a kill), a campaign skips what is complete and resumes each run from its last
# checkpoint.
#   nohup bash analysis/results/verdict/run-queue.sh > /var/tmp/lmpshear-runs/queue.log 2>&1 &
# Run from the repository root with its .venv; `lmpshear status FILE` says where each run stands.
# KA (ka3d.toml, ka3d-shared.toml), BD (bd45-rate3.toml, bd45.toml, bd425.toml) and the soft disks at
# 0.01 (softdisk2d.toml) are collected and final; their campaign files remake them from nothing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LMPSHEAR=${LMPSHEAR:-$PWD/.venv/bin/lmpshear}
mkdir -p /var/tmp/lmpshear-runs
step() {  # one campaign, timed; a failure is logged and the queue goes on
  echo "$(date -Is) start $1"
  /usr/bin/time -f "$(basename "$1"): %e s" nice -n 5 "$LMPSHEAR" submit "$here/$1" --executor local \
    || echo "$(date -Is) $1 exited $?"
}
step softdisk2d-rate0.005.toml
step softdisk2d-rate0.001.toml
