#!/usr/bin/env bash
# Issue 37's finite-size test, from the repository root with its .venv (idempotent: run again, it
# resumes each run from its last checkpoint and skips what is complete):
#   nohup bash analysis/results/finite-size-bd45/run.sh > /var/tmp/lmpshear-runs/finite-size.log 2>&1 &
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LMPSHEAR=${LMPSHEAR:-$PWD/.venv/bin/lmpshear}
# SOURCE: the lmpshear source the runs use, fixed for the whole campaign (a checkpoint is resumed by
# the version that wrote it); by default this checkout. Session 36 ran it from a worktree of deded94:
#   git worktree add /var/tmp/lmpshear-src deded94
#   LMPSHEAR=$PWD/.venv/bin/lmpshear SOURCE=/var/tmp/lmpshear-src bash analysis/results/finite-size-bd45/run.sh
export PYTHONPATH=${SOURCE:-$PWD}
cd "$PYTHONPATH"  # `python -m` puts the working directory first on the path: it must be the source's
mkdir -p /var/tmp/lmpshear-runs
echo "$(date -Is) start"
/usr/bin/time -f "campaign: %e s" nice -n 5 "$LMPSHEAR" submit "$here/campaign.toml" --executor local \
  || echo "$(date -Is) campaign exited $?"
