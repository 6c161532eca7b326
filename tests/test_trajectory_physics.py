"""Unwrapping and r̃ in real LAMMPS runs: box flips, > 512 images, ideal gas, per-step integration."""

import numpy as np
import pytest
from conftest import prepare_and_run, write_spec

from lmpshear.store import Trajectory


@pytest.mark.full
def test_lammps_positions_stay_continuous_through_flips_and_past_512_images(tmp_path):
    # 100 LJ discs at rate 1: strain 600 in 120000 steps, about 600 box flips
    spec = write_spec(
        tmp_path / "fast.toml",
        "lj2d-nemd",
        system={"n_particles": 100},
        protocol={
            "equilibration_time": 5.0,
            "steady_strain": 0.0,
            "production_strain": 600.0,
            "checkpoint_every": 100000,
            "max_temperature_ratio": 4.0,
        },
        rates=[{"rate": 1.0, "sample_interval": 0.2}],
    )
    run = prepare_and_run(tmp_path, spec)
    with Trajectory(run / "traj.gsd") as tr:
        u = tr.unwrapped()
        r = tr.nonaffine()
        images = np.stack([np.asarray(tr._file[k].particles.image) for k in range(len(tr) - 5, len(tr))])
        tilts = np.array([tr.cell(k).xy for k in range(len(tr))])
        times = tr.times
        lx = tr.cell(0).lx
    assert np.abs(images[:, :, 0]).max() > 512
    flips = np.sum(np.abs(np.diff(tilts)) > 0.5 * lx)
    assert flips > 500
    # frame-to-frame motion minus the streaming of the previous position is thermal: far below the
    # cell edge, the smallest error a wrong unwrap would make
    interval = times[1] - times[0]
    d = np.diff(u, axis=0)
    d[:, :, 0] -= 1.0 * interval * u[:-1, :, 1]
    assert np.abs(d).max() < 0.25 * lx
    # the non-affine displacement has no affine drift: its mean x stays within thermal scale,
    # whereas the affine displacement of the top particles is ~ strain * L ~ 10^4
    assert abs(r[-1, :, 0].mean()) < 20.0
    assert np.abs(u[-1, :, 0] - u[0, :, 0]).max() > 5000.0


def test_nonaffine_displacement_of_an_ideal_gas_is_its_thermal_displacement(tmp_path):
    """No interactions: r̃ grows as ∫ v_peculiar dt, with no affine part."""
    spec = write_spec(
        tmp_path / "gas.toml",
        "lj2d-nemd",
        system={"n_particles": 64, "potential": {"epsilon": 0.0}},
        protocol={
            "equilibration_time": 0.5,
            "minimize": False,
            "steady_strain": 0.0,
            "production_time": 2.0,
            "store_velocities": True,
            "checkpoint_every": 100000,
        },
        rates=[{"rate": 0.5, "sample_interval": 0.005}],
    )
    run = prepare_and_run(tmp_path, spec)
    with Trajectory(run / "traj.gsd") as tr:
        r = tr.nonaffine()
        v = tr.particle_array("velocity")
        dt = tr.times[1] - tr.times[0]
        u = tr.unwrapped()
        ly = tr.cell(0).ly
    thermal = 0.5 * dt * (v[1:] + v[:-1])  # trapezoid of the peculiar velocity, per step
    assert np.abs(thermal.sum(axis=0)).max() > 0.5  # particles did move
    mismatch = np.diff(r, axis=0) - thermal
    bad = np.abs(mismatch) > 1e-4
    # Every increment agrees, except a few single steps in x when a particle crosses the sliding
    # boundary: LAMMPS remaps x and v at re-neighbouring, one step of streaming (rate * Ly * dt)
    # out of phase (half a step at a set-up boundary, every 100 steps: none falls on a crossing here).
    # These are rare, of that exact size, at y = 0 or Ly, and not an affine leak.
    assert bad.sum() < 1e-3 * bad.size
    assert not bad[:, :, 1].any()
    assert np.allclose(np.abs(mismatch[bad]), 0.5 * ly * dt, rtol=0.05)
    k, i, _ = np.nonzero(bad)
    near_boundary = np.minimum(np.abs(np.mod(u[k + 1, i, 1], ly)), ly - np.abs(np.mod(u[k + 1, i, 1], ly)))
    assert near_boundary.max() < 0.1
    # whereas the affine displacement over the run is up to rate * t * Ly = 0.5 * 2 * 10
    assert np.abs(u[-1, :, 0] - u[0, :, 0] - r[-1, :, 0]).max() > 5.0


def test_per_step_affine_integral_matches_sampling_every_step(tmp_path):
    """r̃ from samples every 10 steps (per-step mean of y) equals r̃ sampled at every step."""
    common = dict(
        system={"n_particles": 100},
        protocol={"equilibration_time": 2.0, "steady_strain": 0.0, "production_time": 2.0, "checkpoint_every": 100000},
    )
    fine = write_spec(
        tmp_path / "fine.toml",
        "lj2d-nemd",
        **common,
        rates=[{"rate": 0.5, "sample_interval": 0.005, "thermo_interval": 0.005}],
    )
    coarse = write_spec(
        tmp_path / "coarse.toml",
        "lj2d-nemd",
        **common,
        rates=[{"rate": 0.5, "sample_interval": 0.05, "thermo_interval": 0.005}],
    )
    rf = Trajectory(prepare_and_run(tmp_path, fine, "fine") / "traj.gsd")
    rc = Trajectory(prepare_and_run(tmp_path, coarse, "coarse") / "traj.gsd")
    assert np.array_equal(rf.steps[::10], rc.steps)
    a, b = rf.nonaffine()[::10], rc.nonaffine()
    assert np.abs(a).max() > 0.1
    assert np.abs(a - b).max() < 1e-9
    assert np.abs(rf.unwrapped()[::10] - rc.unwrapped()).max() < 1e-9
