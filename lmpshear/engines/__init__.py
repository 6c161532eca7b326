"""The run engines: one driver (:mod:`lmpshear.engines.driver`: lock, status, store, checkpoints,
resume) and two adapters, LAMMPS in-process (:mod:`.lammps`) and Brownian dynamics (:mod:`.bd_runner`).
:func:`run_directory` picks the adapter a spec names."""

from __future__ import annotations


def run_directory(rundir, reporter=None) -> dict:
    """Run (or resume) a prepared directory (a RunDir) with the engine its spec names."""
    from lmpshear import mpi

    if rundir.spec().engine == "bd":
        from lmpshear.engines.bd_runner import BrownianRunner

        return BrownianRunner(rundir, reporter).run()
    from lmpshear.engines.lammps import LammpsRunner

    return LammpsRunner(rundir, reporter).run(finalize_mpi=mpi.world_size() > 1)
