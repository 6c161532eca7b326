#!/usr/bin/env bash
# Analyse the verdict's finished runs again after a change of the analysis (here: the overlap stage's
# version 3, t_chi fitted over 400 origins): `lmpshear analyze` remakes the stale stages of each run
# (overlap, then everything that reads it: s4, clusters, gjj, phm, facilitation), one run at a time.
#   nohup bash analysis/results/verdict/reanalyse.sh RUNDIR... > /var/tmp/lmpshear-runs/reanalyse.log 2>&1 &
# Then collect each run again (analysis/collect.py) and remake the tables (make-tables.sh).
set -uo pipefail
LMPSHEAR=${LMPSHEAR:-$PWD/.venv/bin/lmpshear}
for rundir in "$@"; do
    echo "$(date -Is) analyse $rundir"
    /usr/bin/time -f "$rundir: %e s" "$LMPSHEAR" analyze "$rundir" || echo "$(date -Is) $rundir exited $?"
done
