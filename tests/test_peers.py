"""Our kernels against peers used as references here and in benchmarks/bench_scaling.py only: g(r) and
the MSD against freud (freud-analysis) on a real LAMMPS run, the self overlap's χ4 against atooms-pp
on a BD run at rest."""

import sys

import numpy as np
import pytest
from conftest import REPO, prepare_and_run, write_spec

from lmpshear.kernels.msd import mean_square_displacement
from lmpshear.kernels.overlap import susceptibility
from lmpshear.kernels.structure import pair_distribution
from lmpshear.store import Trajectory

sys.path.insert(0, str(REPO / "benchmarks"))


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


@pytest.mark.full
def test_self_overlap_chi4_at_rest_equals_atooms_pp(tmp_path):
    """A BD run at rest (where atooms-pp's conventions apply: no shear, unfolded paths): χ4 of the self
    overlap over every origin equals atooms-pp's Chi4SelfOverlap, var(Q_s)/N, lag by lag."""
    import atooms.postprocessing as pp
    from bench_scaling import atooms_xyz  # the conversion lives with the benchmark, which uses it too

    spec = write_spec(
        tmp_path / "rest.toml",
        "bd45-tiny",
        protocol={"steady_time": 0.005, "production_time": 0.2},
        rates=[{"rate": 0.0, "sample_interval": 0.002}],
    )
    run = prepare_and_run(tmp_path, spec, rate=0)
    with Trajectory(run / "traj.gsd") as traj:
        x, nonaffine, times = traj.unwrapped(), traj.nonaffine(), traj.times
        cells = [traj.cell(k) for k in range(len(traj))]
        path = atooms_xyz(traj, tmp_path / "rest.xyz")
    assert cells[0].xy == cells[-1].xy == 0.0 and len(x) > 100
    a, lags, n = 0.25, np.arange(1, 40), x.shape[1]
    ours = susceptibility(x, nonaffine, cells, times, 1.0, a, np.arange(len(x) - 1), lags)
    theirs = pp.Chi4SelfOverlap(path, tgrid=list(times[lags] - times[0]), a=a, norigins=-1)  # every origin
    theirs.compute()
    assert np.allclose(theirs.grid, times[lags] - times[0])
    var_self = ours.chi4_self * 1.0 * n * n / cells[0].volume  # undo βV/N²
    assert ours.q_self[-1] < 0.7 and np.allclose(var_self / n, theirs.value, rtol=1e-9, atol=0)
