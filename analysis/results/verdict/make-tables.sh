#!/usr/bin/env bash
# The verdict's extended Table I, per-rate table and lengths figure from the collected folders alone
# (LABEL-rateR/, made by analysis/collect.py): one report per system, then the tables over all.
#   bash analysis/results/verdict/make-tables.sh      (from the repository root, with its .venv)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-../../../.venv/bin/python}
RECIPES=${RECIPES:-../../recipes}            # analysis/recipes
labels=$(ls -d *-rate*/ | sed -E 's/-rate[^/]*\/$//' | sort -u)
reports=()
for label in $labels; do
    $PYTHON "$RECIPES/results_report.py" "$label"-rate*/ -o "report/$label" > "report/$label.log" 2>&1 \
        || { cat "report/$label.log"; exit 1; }
    reports+=("report/$label")
done
$PYTHON "$RECIPES/table1.py" "${reports[@]}" -o report/tables > report/tables.log
echo "wrote report/tables/table1.md, report/tables/lengths_vs_rate.png and report/{$(echo $labels | tr ' ' ',')}/"
