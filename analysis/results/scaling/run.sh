#!/usr/bin/env bash
# Issue 37's scaling benchmark, from the repository root with its .venv (idempotent: a run resumes from
# its last checkpoint, a complete one is skipped):
#   nohup bash analysis/results/scaling/run.sh > /var/tmp/lmpshear-runs/scaling/run.log 2>&1 &
# The runs go to /var/tmp/lmpshear-runs/scaling (outside the work tree); the tables to ROOT/bench/.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
L=${LMPSHEAR:-$repo/.venv/bin/lmpshear}
PY=${PYTHON:-$repo/.venv/bin/python}
ROOT=${ROOT:-/var/tmp/lmpshear-runs/scaling}
mkdir -p "$ROOT/bench"
run() {  # NAME RATE
  [ -d "$ROOT/$1" ] || "$L" prepare "$here/bd45-$1.toml" --rate "$2" -o "$ROOT/$1"
  /usr/bin/time -f "$1 run: %e s, %M kB" "$L" run "$ROOT/$1"
}
for name in N3000 N20000 N20000-f1000 N160000; do run $name 20; done
run N3000-rest 0
# the benchmark wants the machine to itself: nothing else running
"$PY" "$repo/benchmarks/bench_scaling.py" "$ROOT"/N3000 "$ROOT"/N20000 "$ROOT"/N20000-f1000 "$ROOT"/N160000 \
  --rest "$ROOT"/N3000-rest --out "$ROOT/bench/all.md"
"$PY" "$repo/benchmarks/bench_scaling.py" "$ROOT"/N20000-f1000 --budget 0.25 --out "$ROOT/bench/f1000-budget.md"
