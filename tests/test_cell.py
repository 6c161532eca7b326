"""The sheared cell's geometry (lmpshear.cell) against independent constructions."""

import numpy as np
import pytest

from lmpshear.cell import Cell, largest_cutoff, tilt_at
from lmpshear.neighbors import fractional


def test_the_narrowest_width_under_shear_is_the_one_the_cutoff_rule_uses():
    L = 7.3
    widths = [Cell((0, 0, 0), L, L, L, L * f).widths().min() for f in np.linspace(-0.5, 0.5, 201)]
    assert min(widths) == pytest.approx(Cell((0, 0, 0), L, L, L, L / 2).widths().min())
    assert 2 * largest_cutoff(L, sheared=True) == pytest.approx(min(widths), rel=1e-12)
    assert largest_cutoff(L, sheared=False) == L / 2


def test_the_tilt_flips_into_half_a_cell_and_keeps_the_lattice():
    lx, ly, rate = 5.0, 4.0, 0.7
    for t in (0.0, 0.3, 1.1, 2.9, 17.4):
        xy = tilt_at(rate, t, lx, ly)
        assert -lx / 2 <= xy < lx / 2
        # the unflipped b vector (γ̇ t L_y, L_y) is a lattice vector of the flipped cell
        b = np.array([[rate * t * ly, ly, 0.0]])
        assert np.allclose(Cell((0, 0, 0), lx, ly, 3.0, xy).minimum_image(b), 0.0, atol=1e-12)


def test_fractional_coordinates_agree_with_the_kernel_and_invert_the_lattice():
    rng = np.random.default_rng(1)
    cell = Cell((-1.0, 0.5, 2.0), 4.0, 3.0, 5.0, 1.7)
    r = rng.uniform(-20, 20, (500, 3))
    s = cell.fractional(r)
    h = cell.matrix()
    diff = s - fractional(r, np.asarray(cell.lo), np.linalg.inv(h))
    assert np.abs((diff + 0.5) % 1.0 - 0.5).max() < 1e-12  # the same to round-off (on the torus)
    assert ((s >= 0) & (s < 1)).all()
    back = s @ h + np.asarray(cell.lo)  # the same point up to a lattice vector
    assert np.allclose(cell.minimum_image(back - r), 0.0, atol=1e-9)
    assert cell.volume == pytest.approx(abs(np.linalg.det(h)))


def test_the_affine_carry_moves_points_with_the_flow_and_wraps_them():
    rate, t_ref = 0.5, 2.0
    cell = Cell((0.0, 0.0, 0.0), 6.0, 6.0, 6.0, tilt_at(rate, t_ref, 6.0, 6.0))
    r = np.array([[1.0, 2.0, 3.0], [5.5, 5.9, 0.1], [0.2, 0.0, 4.0]])
    t = np.array([0.5, 1.0, 2.0])
    carried = cell.carry(r, t, rate, t_ref)
    expected = r + np.c_[rate * (t_ref - t) * r[:, 1], 0 * t, 0 * t]
    assert np.allclose(cell.minimum_image(carried - expected), 0.0, atol=1e-12)
    assert np.allclose(cell.wrap(carried)[1], 0)  # inside the cell
    assert np.allclose(carried[2], r[2])  # a point on the bottom plane does not move
    two = cell.carry(r[:, :2], t, rate, t_ref)  # 2D points get z = 0
    assert np.allclose(two[:, :2], cell.carry(np.c_[r[:, :2], 0 * t], t, rate, t_ref)[:, :2])


def test_the_reduced_cell_is_the_same_lattice_with_the_widest_faces():
    rng = np.random.default_rng(3)
    cell = Cell((0.0, 0.0, 0.0), 6.0, 5.0, 4.0, 7.9, 3)  # tilted past L_x (an unflipped import)
    reduced = cell.reduced()
    assert reduced.xy == pytest.approx(7.9 - 6.0) and abs(reduced.xy) <= 0.5 * reduced.lx
    d = rng.uniform(-20, 20, size=(500, 3))
    # the same lattice: the reduced cell's images differ from d by whole vectors of the original cell
    shift = (d - reduced.minimum_image(d)) @ np.linalg.inv(cell.matrix())
    assert np.allclose(shift, np.round(shift), atol=1e-9) and np.abs(shift).max() >= 1
    assert reduced.widths()[0] > cell.widths()[0] and reduced.volume == cell.volume


def test_the_centroid_of_a_set_across_a_face_lies_inside_it():
    """Points split by a face (x near 0 and near L, in a sheared cell) have their centre at the face, not
    half a cell away as the plain mean has; the members drawn about it are one piece."""
    cell = Cell((0.0, 0.0, 0.0), 10.0, 10.0, 10.0, 3.0, 3)
    rng = np.random.default_rng(2)
    blob = np.array([0.2, 5.0, 5.0]) + rng.normal(scale=0.4, size=(200, 3))  # about x = 0.2, so across x = 0
    r, _ = cell.wrap(blob)
    centre = cell.centroid(r)
    assert np.linalg.norm(cell.minimum_image(centre - np.array([0.2, 5.0, 5.0]))) < 0.15
    assert abs(r[:, 0].mean() - 0.2) > 2.0  # the plain mean is far off
    shown = centre + cell.minimum_image(r - centre)
    assert np.ptp(shown[:, 0]) < 4.0  # one blob, not two lobes a cell apart
    flat = Cell((0.0, 0.0, 0.0), 10.0, 10.0, 1.0, 0.0, 2)
    x, y = flat.centroid(np.array([[9.8, 1.0], [0.2, 1.0]]))  # 2D: (n, 2) in, (2,) out; on the face x = 0 = L
    assert min(x, 10.0 - x) < 1e-9 and y == pytest.approx(1.0)
