"""The files shipped with lmpshear: the LAMMPS and batch-script templates and the TOML presets.

In a wheel they are package data (``lmpshear/templates``, ``lmpshear/inputs``); in a source
checkout (editable install) they sit at the repository's top level.
"""

from __future__ import annotations

from pathlib import Path

from lmpshear.errors import UserError

_PKG = Path(__file__).resolve().parent


def _resource_dir(name: str) -> Path:
    for candidate in (_PKG / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise UserError(f"lmpshear installation is incomplete: no '{name}' directory next to {_PKG}")


def templates_dir() -> Path:
    return _resource_dir("templates")


def inputs_dir() -> Path:
    return _resource_dir("inputs")


def template_text(name: str) -> str:
    return (templates_dir() / name).read_text()


def preset_names() -> list[str]:
    return sorted(p.stem for p in inputs_dir().glob("*.toml"))


def preset_path(name: str) -> Path:
    path = inputs_dir() / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"unknown preset '{name}'; available: {', '.join(preset_names())}")
    return path
