#!/usr/bin/env bash
# The rate sweep of bd45 at N = 20000 (run from the repository root; RUNS defaults to /work/runs):
#   bash analysis/results/bd45-N20000/run.sh 20 10 1
# Each rate: prepare (once), run (resumes after a kill), analyze. Trajectories stay in RUNS.
set -euo pipefail
RUNS=${RUNS:-/work/runs}
here=$(dirname "$0")
for rate in "$@"; do
  dir="$RUNS/bd45-r$rate"
  [ -f "$dir/config.toml" ] || lmpshear prepare "$here/spec.toml" --rate "$rate" -o "$dir"
  /usr/bin/time -f "rate $rate: run %e s" lmpshear run "$dir"
  /usr/bin/time -f "rate $rate: analyze %e s" lmpshear analyze "$dir"
done
