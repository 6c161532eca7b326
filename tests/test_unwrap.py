"""Lees–Edwards unwrapping and non-affine displacement, on synthetic paths with known answers."""

import numpy as np
import pytest

from lmpshear.cell import Cell
from lmpshear.errors import RunError
from lmpshear.unwrap import LeesEdwardsUnwrapper, per_step_y_integral


def sheared_cell(strain: float, L: float = 5.0) -> Cell:
    """The cell LAMMPS holds at a given strain: tilt flipped back into [-L/2, L/2]."""
    xy = strain * L
    xy -= np.rint(xy / L) * L
    return Cell((0.0, 0.0, 0.0), L, L, L, xy)


def test_minimum_image_and_wrap_round_trip():
    rng = np.random.default_rng(1)
    cell = Cell((1.0, -2.0, 0.5), 4.0, 5.0, 6.0, 1.7)
    r = rng.uniform(-100, 100, size=(200, 3))
    inside, image = cell.wrap(r)
    assert np.allclose(inside + image @ cell.matrix(), r, atol=1e-9)
    frac = np.linalg.solve(cell.matrix().T, (inside - np.array(cell.lo)).T).T
    assert frac.min() >= -1e-12 and frac.max() < 1 + 1e-12
    small = rng.normal(scale=0.3, size=(200, 3))
    shifted = small + rng.integers(-3, 4, size=(200, 3)) @ cell.matrix()
    assert np.allclose(cell.minimum_image(shifted), small, atol=1e-9)


def test_unwrap_recovers_a_path_through_flips_and_past_512_images():
    """Synthetic LE paths, y piecewise linear (so the trapezoid rule is exact), strain 600."""
    rng = np.random.default_rng(7)
    n, L, rate, dt = 40, 5.0, 1.0, 0.2  # 0.2 strain per sample
    frames = 3000
    u = np.column_stack([rng.uniform(0, L, n), rng.uniform(0, L, n), rng.uniform(0, L, n)])
    thermal = np.zeros((n, 3))
    cell0 = sheared_cell(0.0, L)
    unwrapper = LeesEdwardsUnwrapper(rate, 0.0, cell0.wrap(u)[0])
    max_image = 0
    for k in range(1, frames + 1):
        step = rng.normal(scale=0.05, size=(n, 3))
        y0 = u[:, 1].copy()
        u = u + step
        u[:, 0] += rate * dt * 0.5 * (y0 + u[:, 1])  # exact affine drift for linear y(t)
        thermal += step
        cell = sheared_cell(rate * dt * k, L)
        wrapped, image = cell.wrap(u)
        max_image = max(max_image, np.abs(image).max())
        unwrapper.advance(wrapped, cell, dt)
    assert max_image > 512  # LAMMPS's 10-bit image flags would have wrapped
    assert np.allclose(unwrapper.unwrapped, u, atol=1e-8)
    assert np.allclose(unwrapper.nonaffine, thermal, atol=1e-8)


def test_per_step_integral_is_the_trapezoid_over_steps():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(11, 5)).cumsum(axis=0)  # y at steps 0..10
    dt = 0.01
    trapezoid = dt * (0.5 * (y[0] + y[-1]) + y[1:-1].sum(axis=0))
    got = per_step_y_integral(y[1:].mean(axis=0), y[0], y[-1], 10 * dt, dt, y_lo=0.0)
    assert np.allclose(got, trapezoid, atol=1e-13)
    assert np.allclose(
        per_step_y_integral(y[1:].mean(axis=0), y[0], y[-1], 10 * dt, dt, y_lo=2.0), trapezoid - 2.0 * 10 * dt
    )


def test_too_coarse_sampling_is_an_error():
    cell = Cell((0.0, 0.0, 0.0), 5.0, 5.0, 5.0, 0.0)
    unwrapper = LeesEdwardsUnwrapper(0.0, 0.0, np.zeros((1, 3)))
    with pytest.raises(RunError, match="sample interval is too long"):
        unwrapper.advance(np.array([[2.4, 0.0, 0.0]]), cell, 1.0)
    with pytest.raises(RunError, match="blew up"):
        unwrapper.advance(np.array([[np.nan, 0.0, 0.0]]), cell, 1.0)
