#!/bin/bash
# lmpshear campaign "$name": the analysis step, one array task per run directory (line TASK+1 of $tasks),
# each after its run (--dependency). Written by `lmpshear submit`.
$header
set -u
RUNDIR=$$(sed -n "$$((SLURM_ARRAY_TASK_ID + 1))p" "$tasks")
export NUMBA_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
echo "[lmpshear] task $${SLURM_ARRAY_JOB_ID}_$${SLURM_ARRAY_TASK_ID} on $$(hostname): lmpshear analyze $$RUNDIR"
exec "$python" -m lmpshear analyze "$$RUNDIR"
