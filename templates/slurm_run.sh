#!/bin/bash
# lmpshear campaign "$name": the run step, one array task per run directory (line TASK+1 of $tasks).
# Written by `lmpshear submit`; to change it, edit the campaign file and submit again.
$header
set -u
RUNDIR=$$(sed -n "$$((SLURM_ARRAY_TASK_ID + 1))p" "$tasks")
export NUMBA_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
echo "[lmpshear] task $${SLURM_ARRAY_JOB_ID}_$${SLURM_ARRAY_TASK_ID} on $$(hostname), start $$(( $${SLURM_RESTART_COUNT:-0} + 1 )): lmpshear run $$RUNDIR"

# Before the time limit SLURM sends USR1 (--signal): the run stops at its next sample with a
# checkpoint there, and the task is requeued; the requeued task resumes from that checkpoint.
stop_and_requeue() {
    echo "[lmpshear] time limit near: stopping the run and requeueing this task"
    kill -TERM "$$child" 2>/dev/null
    wait "$$child"
    scontrol requeue "$${SLURM_ARRAY_JOB_ID}_$${SLURM_ARRAY_TASK_ID}"
    exit 0
}
trap stop_and_requeue USR1

$launch"$python" -m lmpshear run "$$RUNDIR" &
child=$$!
wait "$$child"
exit $$?
