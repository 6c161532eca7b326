"""g(r) and the MSD against freud (freud-analysis, a peer used as a reference here and in
benchmarks/bench_scaling.py only), on the frames of a real LAMMPS run."""

import numpy as np

from lmpshear.kernels.msd import mean_square_displacement
from lmpshear.kernels.structure import pair_distribution
from lmpshear.store import Trajectory


def test_g_of_r_equals_freuds_rdf_in_the_sheared_cell(tiny_run):
    """Same bins, frames and triclinic cells; freud's finite-size normalisation is ours (N(N-1) pairs).
    freud computes in float32, so the two agree to ~1e-5, not to the last bit."""
    import freud

    with Trajectory(tiny_run / "traj.gsd") as traj:
        picks = list(range(5, len(traj), 7))
        r, cells = traj.unwrapped(picks), [traj.cell(k) for k in picks]
        assert len({c.xy for c in cells}) == len(cells)  # the tilt differs in every frame
        ours = pair_distribution(r, cells, traj.typeid, traj.types, 2.5, 100)
        rdf = freud.density.RDF(bins=100, r_max=2.5, normalization_mode="finite_size")
        for x, cell in zip(r, cells):
            box = freud.box.Box(cell.lx, cell.ly, cell.lz, cell.xy / cell.ly, 0, 0, cell.dimension == 2)
            centre = np.asarray(cell.lo) + 0.5 * cell.matrix().sum(axis=0)  # freud's box is centred on 0
            rdf.compute((box, (cell.wrap(x)[0] - centre).astype(np.float32)), reset=False)
    assert np.allclose(ours.r, rdf.bin_centers, atol=1e-6)
    assert ours.total.max() > 2.5 and np.abs(ours.total - rdf.rdf).max() < 1e-4


def test_msd_over_every_origin_equals_freuds_window_msd(tiny_run):
    """Every origin and every lag: ours by direct sums, freud's by FFT (float32: ~1e-6 relative)."""
    import freud

    with Trajectory(tiny_run / "traj.gsd") as traj:
        x, times = traj.nonaffine(), traj.times
        ours = mean_square_displacement(x, times, traj.typeid, traj.types, np.arange(len(x) - 1), np.arange(1, len(x)))
    theirs = freud.msd.MSD(mode="window").compute(x).msd[1:]
    assert len(ours.msd) == len(x) - 1 and theirs[-1] > 10 * theirs[0]
    assert np.abs(ours.msd - theirs).max() < 1e-5 * theirs.max()
