#!/usr/bin/env bash
# Issue 26's simulations on this 2-core machine, as two queues side by side (one core each, niced so
# that interactive work keeps priority). Idempotent: started again (a new session, after a kill), every
# campaign skips what is complete and resumes each run from its last checkpoint.
#   nohup bash analysis/results/verdict/run-queue.sh > /var/tmp/lmpshear-runs/queue.log 2>&1 &
# Run from the repository root with its .venv; `lmpshear status FILE` says where each run stands.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LMPSHEAR=${LMPSHEAR:-$PWD/.venv/bin/lmpshear}
mkdir -p /var/tmp/lmpshear-runs
step() {  # one campaign (tasks at once: $2, default 1), timed; a failure is logged and the queue goes on
  echo "$(date -Is) start $1"
  /usr/bin/time -f "$(basename "$1"): %e s" nice -n 10 "$LMPSHEAR" submit "$here/$1" --executor local -j "${2:-1}" \
    || echo "$(date -Is) $1 exited $?"
}
queue_a() { step ka3d.toml; step ka3d-shared.toml; step bd425.toml; }
# the soft disks' 0.005 and 0.001 (3.3 and about 16 core-hours) side by side once queue A is done
queue_b() { step bd45-rate3.toml; step bd45.toml; step softdisk2d.toml; step softdisk2d-shared.toml 2; }
queue_a > /var/tmp/lmpshear-runs/queue-a.log 2>&1 &
queue_b > /var/tmp/lmpshear-runs/queue-b.log 2>&1 &
wait
