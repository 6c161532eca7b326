"""The steady window streams: products do not depend on the memory budget, and the analysis's peak
memory does not grow with the frames when the budget is smaller than the window (issue 37)."""

import gzip
import json
import shutil
import tracemalloc
import warnings

import numpy as np
import pytest
from conftest import prepare_and_run, write_spec

import lmpshear
from lmpshear.store import FrameArray, FrameCache, Trajectory

PRODUCTS = ("viscosity", "structure", "msd", "overlap", "cagejumps", "s4", "clusters", "gjj")


def _products(rundir) -> dict:
    out = {}
    for name in PRODUCTS:
        data = json.loads((rundir / f"{name}.json").read_text())
        out[name] = data["result"]
    out["jumps"] = gzip.open(rundir / "cagejumps.csv.gz").read()
    return out


def test_a_frame_array_reads_what_the_whole_array_holds(tiny_run):
    """Frames, particle blocks (straight from the chunks' bytes) and points equal the array read at once;
    the cache keeps no more than its budget and hands out read-only frames."""
    with Trajectory(tiny_run / "traj.gsd") as traj:
        frames = np.arange(3, len(traj))
        whole = traj.unwrapped(list(frames))
        cache = FrameCache(budget=3 * whole[0].nbytes)  # three frames
        lazy = FrameArray(traj, "unwrapped", frames, cache)
        assert lazy.shape == whole.shape and len(lazy) == len(whole)
        for k in (0, 5, len(frames) - 1, -1, 2, 5):
            assert np.array_equal(lazy[k], whole[k])
        assert cache.peak <= cache.budget and not lazy[5].flags.writeable
        assert np.array_equal(lazy[:, 17:101], whole[:, 17:101])
        rng = np.random.default_rng(1)
        f, p = rng.integers(0, len(frames), 500), rng.integers(0, traj.n_particles, 500)
        assert np.array_equal(lazy[f, p], whole[f, p])
        virial = FrameArray(traj, "virial_xy", frames, cache)
        assert np.array_equal(virial[:, 40:60], traj.virial_xy(list(frames))[:, 40:60])
        with pytest.raises(TypeError, match="streamed"):
            np.asarray(lazy)


def test_products_do_not_depend_on_the_memory_budget(tmp_path, tiny_run):
    """A budget of 1 kB (no frame kept, cage jumps one particle at a time) makes every product and the
    jump table byte for byte what a budget holding the whole window makes."""
    runs = {}
    for name, budget in (("whole", 4.0), ("streamed", 1e-6)):
        runs[name] = tmp_path / name
        shutil.copytree(tiny_run, runs[name])
        for product in runs[name].glob("*.json"):
            if product.name not in ("status.json", "manifest.json"):
                product.unlink()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lmpshear.LmpshearWarning)
            lmpshear.analyze(runs[name], only=list(PRODUCTS), set={"memory_budget": budget}, progress=False)
    whole, streamed = _products(runs["whole"]), _products(runs["streamed"])
    assert json.loads((runs["whole"] / "cagejumps.json").read_text())["result"]["jumps"] > 20
    for name in whole:
        assert whole[name] == streamed[name], name


@pytest.mark.full
def test_peak_memory_stays_within_the_budget_with_five_times_the_frames(tmp_path):
    """ka3d-tiny at N = 1000 with 1x and 5x the production frames, analysed in-process under tracemalloc
    (numpy's arrays are traced). With a budget below the window the peak grows by far less than the
    window's arrays (what still grows is the products: the jump table, the thermo table's rows); with a
    budget that holds the window it grows by the arrays, which shows the measure sees them. Both analyse
    two cluster windows (max_windows): the clusters product grows with the windows it traces, by design."""
    peaks, frames = {}, {}
    for scale in (1, 5):
        spec = write_spec(
            tmp_path / f"x{scale}.toml",
            "ka3d-tiny",
            system={"n_particles": 1000},
            protocol={"production_strain": 0.2 * scale},
        )
        run = prepare_and_run(tmp_path, spec, name=f"x{scale}")
        for budget in (1e-4, 4.0):
            for product in run.glob("*.json"):
                if product.name not in ("status.json", "manifest.json"):
                    product.unlink()
            tracemalloc.start()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", lmpshear.LmpshearWarning)
                made = lmpshear.analyze(
                    run, only=list(PRODUCTS), set={"memory_budget": budget, "max_windows": 2}, progress=False
                )
            peaks[scale, budget] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        first, last = made["cagejumps"].data["frames"]
        frames[scale] = last - first + 1
    assert frames[5] > 4.5 * frames[1]
    arrays = (frames[5] - frames[1]) * 1000 * (3 + 3 + 1) * 8  # unwrapped, nonaffine, virial_xy of the extra frames
    assert peaks[5, 4.0] - peaks[1, 4.0] > 0.8 * arrays, (peaks, arrays)  # the measure sees the arrays
    assert peaks[5, 1e-4] - peaks[1, 1e-4] < 0.25 * arrays, (peaks, arrays)
