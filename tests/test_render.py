"""Rendered LAMMPS inputs: reference files, and refusal of anything but typed values."""

import os
from pathlib import Path

import pytest
from conftest import cli

from lmpshear import config
from lmpshear.engines.lammps_input import render, render_input, split_sections, value
from lmpshear.errors import UserError

REFERENCE = Path(__file__).parent / "reference"
CASES = [("ka3d", 0.015), ("softdisk2d", 1e-3), ("lj2d-nemd", None), ("ka3d-tiny", None)]


@pytest.mark.parametrize("preset, rate", CASES)
def test_rendered_input_matches_reference(preset, rate):
    text = render_input(config.load(preset).select_rate(rate))
    ref = REFERENCE / f"{preset}.lmp"
    if os.environ.get("LMPSHEAR_REGENERATE"):
        ref.write_text(text)
    assert text == ref.read_text(), f"{ref} differs; if the change is intended, regenerate with LMPSHEAR_REGENERATE=1"


def test_sections_are_all_present():
    sections = split_sections(render_input(config.load("ka3d-tiny")))
    assert list(sections) == [
        "header",
        "create",
        "constraints",
        "pushoff",
        "interactions",
        "equilibrate",
        "shear",
        "standalone",
    ]
    assert "fix             lmps_deform all deform 1 xy erate 0.06 remap v flip yes" in sections["shear"]
    assert "thermo_modify   temp lmps_tdeform" in sections["shear"]


@pytest.mark.parametrize("evil", ["0.45\nshell touch pwned", "x y", "$(v_a)", "a#b", "'q'", "a;b", "", "a&", "abc\n"])
def test_renderer_refuses_anything_but_numbers_and_tokens(evil):
    with pytest.raises(UserError, match="refusing to render"):
        value(evil)
    with pytest.raises(UserError, match="refusing to render"):
        render("temp $t\n", {"t": evil})


def test_renderer_formats_numbers_exactly():
    assert value(0.1) == "0.1" and value(1e-4) == "0.0001" and value(16500) == "16500" and value(True) == "yes"
    with pytest.raises(UserError):
        value(float("nan"))


def test_a_malicious_config_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.toml"
    evil.write_text(
        f'extends = "ka3d-tiny"\n[system]\nname = "x\\nshell touch {marker}"\n'
        f'[[system.species]]\nname = "A\\nshell touch {marker}"\nfraction = 1.0\nmass = 1.0\ndiameter = 1.0\n'
    )
    out = tmp_path / "run"
    proc = cli("prepare", evil, "-o", out)
    assert proc.returncode == 2
    assert "system.name" in proc.stderr and "not a valid species name" in proc.stderr
    assert not out.exists() and not marker.exists()
    # a trailing newline alone ("$" matches before it) is refused too
    evil.write_text('extends = "ka3d-tiny"\n[system]\nname = "x\\n"\n')
    proc = cli("prepare", evil, "-o", out)
    assert proc.returncode == 2 and "system.name" in proc.stderr and not out.exists()
