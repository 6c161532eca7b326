#!/bin/bash
# lmpshear campaign "$name": the report over every analysed run, after the analyses (--dependency).
# Written by `lmpshear submit`.
$header
set -u
export NUMBA_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
exec "$python" -m lmpshear report "$campaign" --out "$report"
