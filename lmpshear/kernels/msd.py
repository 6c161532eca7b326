"""Mean-square displacements of the non-affine path r̃, the cage-relative MSD, and the cage size.

MSD(t) = ⟨|r̃_i(t0 + t) − r̃_i(t0)|²⟩ over particles (per species and all) and time origins t0.

Cage-relative MSD (the paper's eq. 12–13, for 2D, where long-wavelength fluctuations blur the
plateau): δr_i^CR = Δr̃_i − (1/N_nn) Σ_{j ∈ nn(i)} Δr̃_j, with nn(i) the particles within r_nn
(the first minimum of g(r)) of i at the origin t0.

Cage size l_c² (the threshold of the cage-jump detection): the MSD at the crossover from the
plateau to diffusion. Criterion (the paper gives none): the local log-slope
α(t) = d ln MSD / d ln t, smoothed over three lags, has its minimum α_min on the plateau; l_c² is
the MSD where α, after that minimum, first reaches α_min + f (1 − α_min), i.e. the fraction
f = ``crossover_fraction`` (default 1/2) of the way from the plateau to diffusion, interpolated in
ln t. A deep plateau (α_min ≈ 0) gives the usual "slope 1/2"; a shallow one under fast shear still
has a crossover. Without a plateau (α_min > 0.8) there is no cage and it is an error, unless a
value is given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lmpshear.cell import Cell
from lmpshear.errors import UserError
from lmpshear.neighbors import CellGrid, pairs_within


def neighbour_pairs(positions: np.ndarray, cell: Cell, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.zeros((positions.shape[0], 3))
    r[:, : positions.shape[1]] = positions
    grid = CellGrid.for_cell(cell, cutoff, max_bins=len(positions))
    return pairs_within(r, grid.h, grid.h_inv, grid.lo, grid.n, grid.periodic_z, float(cutoff))


def cage_relative(displacement: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Eq. 12: each displacement minus the mean of its neighbours' (unchanged if it has none)."""
    i, j = pairs
    n = displacement.shape[0]
    count = np.bincount(i, minlength=n).astype(np.float64)
    mean = np.zeros_like(displacement)
    for k in range(displacement.shape[1]):
        mean[:, k] = np.bincount(i, weights=displacement[j, k], minlength=n)
    has = count > 0
    mean[has] /= count[has, None]
    return displacement - mean


@dataclass(frozen=True)
class MeanSquareDisplacement:
    lags: np.ndarray
    times: np.ndarray
    msd: np.ndarray  # all particles
    msd_species: np.ndarray  # (species, lags)
    msd_cage_relative: np.ndarray | None
    species: tuple[str, ...]
    neighbour_cutoff: float | None

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}


def mean_square_displacement(
    nonaffine: np.ndarray,
    times: np.ndarray,
    typeid: np.ndarray,
    species: list[str],
    origins: np.ndarray,
    lags: np.ndarray,
    positions: np.ndarray | None = None,
    cells: list[Cell] | None = None,
    neighbour_cutoff: float | None = None,
) -> MeanSquareDisplacement:
    """MSD over the given origins and lags; the cage-relative MSD too when ``neighbour_cutoff`` is set
    (then ``positions`` and ``cells`` give the neighbours at each origin)."""
    n_frames = nonaffine.shape[0]
    typeid = np.asarray(typeid)
    pairs = {}
    if neighbour_cutoff is not None:
        assert positions is not None and cells is not None, "the cage-relative MSD needs positions and cells"
        pairs = {int(o): neighbour_pairs(positions[o], cells[o], neighbour_cutoff) for o in origins}
    kept, total, per, cr = [], [], [], []
    for lag in lags:
        use = origins[origins + lag < n_frames]
        if len(use) == 0:
            continue
        sq = np.zeros(nonaffine.shape[1])
        sq_cr = np.zeros(nonaffine.shape[1])
        for o in use:
            d = nonaffine[o + lag] - nonaffine[o]
            sq += (d * d).sum(axis=1)
            if pairs:
                dc = cage_relative(d, pairs[int(o)])
                sq_cr += (dc * dc).sum(axis=1)
        sq /= len(use)
        kept.append(lag)
        total.append(sq.mean())
        per.append([sq[typeid == k].mean() if np.any(typeid == k) else np.nan for k in range(len(species))])
        cr.append(sq_cr.mean() / len(use))
    lags_kept = np.array(kept)
    return MeanSquareDisplacement(
        lags_kept,
        times[lags_kept] - times[0],
        np.array(total),
        np.array(per).T,
        np.array(cr) if pairs else None,
        tuple(species),
        neighbour_cutoff,
    )


@dataclass(frozen=True)
class CageSize:
    value: float  # l_c²
    time: float  # where the criterion was met
    criterion: str


#: the smallest MSD log-slope that still counts as a plateau
MAX_PLATEAU_SLOPE = 0.8


def cage_size(times: np.ndarray, msd: np.ndarray, crossover_fraction: float = 0.5) -> CageSize:
    """l_c² from an MSD curve by the crossover criterion in the module docstring."""
    t, m = np.asarray(times, dtype=float), np.asarray(msd, dtype=float)
    ok = (t > 0) & (m > 0)
    t, m = t[ok], m[ok]
    if len(t) < 5:
        raise UserError("too few MSD points to locate the cage plateau")
    lt, lm = np.log(t), np.log(m)
    slope = np.gradient(lm, lt)
    slope = np.convolve(np.pad(slope, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    low = int(np.argmin(slope))
    if slope[low] > MAX_PLATEAU_SLOPE:
        raise UserError(
            f"the MSD shows no cage plateau (its log-slope never drops below {MAX_PLATEAU_SLOPE:g}); "
            "give the cage size l_c^2 explicitly ([analysis] cage_size)"
        )
    level = slope[low] + crossover_fraction * (1.0 - slope[low])
    after = np.nonzero(slope[low:] >= level)[0]
    if len(after) == 0:
        raise UserError(
            "the MSD does not leave its plateau within the lags computed (run longer, or give [analysis] cage_size)"
        )
    k = low + int(after[0])
    # interpolate ln t where the slope crosses the level, and ln MSD there
    f = (level - slope[k - 1]) / (slope[k] - slope[k - 1])
    lt_x = lt[k - 1] + f * (lt[k] - lt[k - 1])
    value = float(np.exp(np.interp(lt_x, lt, lm)))
    return CageSize(
        value,
        float(np.exp(lt_x)),
        f"MSD where its log-slope reaches {level:.3g}, "
        f"{crossover_fraction:g} of the way from the plateau ({slope[low]:.3g}) to diffusion (1)",
    )
