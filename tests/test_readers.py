"""ovito readers against the native store of the same real LAMMPS run, and their errors."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from conftest import cli, prepare_and_run, write_spec

from lmpshear.readers import read_trajectory
from lmpshear.store import Trajectory

RATE, DT = 0.2, 0.005


_RUNS: dict = {}


@pytest.fixture(scope="module")
def dumped(tmp_path_factory):
    """dumped(mode): a tiny KA run sampled every MD step (so both r̃ integrals are the same trapezoid),
    through a box flip, with LAMMPS also writing a text dump ("image" or "unwrapped") of every frame."""

    def make(mode: str):
        if mode not in _RUNS:
            tmp = tmp_path_factory.mktemp(f"dump-{mode}")
            spec = write_spec(
                tmp / "spec.toml",
                "ka3d-tiny",
                protocol={"lammps_dump": mode, "steady_strain": 0.0, "production_strain": 0.6},
                rates=[{"rate": RATE, "sample_interval": DT}],
            )
            _RUNS[mode] = prepare_and_run(tmp, spec)
        return _RUNS[mode], mode

    return make


@pytest.mark.full
@pytest.mark.parametrize("mode", ["image", "unwrapped"])
def test_ovito_reader_gives_the_native_path_and_nonaffine_displacement(dumped, mode, tmp_path):
    rundir, mode = dumped(mode)
    dump = rundir / "traj.lammpstrj"
    if mode == "image":  # read the gzipped copy: ovito decompresses on the fly
        with open(dump, "rb") as src, gzip.open(tmp_path / "traj.lammpstrj.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        dump = tmp_path / "traj.lammpstrj.gz"
    ext = read_trajectory(dump, RATE, timestep=DT)
    with Trajectory(rundir / "traj.gsd") as native:
        assert len(ext) == len(native) == 601
        np.testing.assert_allclose(ext.times, native.times, rtol=0, atol=1e-12)
        na_native, un_native = native.nonaffine(), native.unwrapped()
        y = un_native[:, :, 1]
        ly = native.cell(0).ly
        crossed = np.any(np.floor((y - native.cell(0).lo[1]) / ly) != 0, axis=0)
        assert crossed.sum() >= 5  # particles went through the sliding boundary
        assert abs(native.cell(len(native) - 1).xy - native.cell(0).xy) < 0.5 * native.cell(0).lx  # flipped
    np.testing.assert_allclose(ext.nonaffine(), na_native, rtol=0, atol=1e-11)
    np.testing.assert_allclose(ext.unwrapped(), un_native, rtol=0, atol=1e-11)
    assert ext.types == ["1", "2"] and np.array_equal(np.bincount(ext.typeid), [200, 50])


@pytest.mark.full
def test_import_then_analyze(dumped, tmp_path):
    rundir, mode = dumped("unwrapped")
    out = tmp_path / "imported"
    proc = cli(
        "import",
        rundir / "traj.lammpstrj",
        "-o",
        out,
        "--rate",
        RATE,
        "--temperature",
        0.45,
        "--timestep",
        DT,
        check=True,
    )
    assert "601 frames, 250 particles, 3D" in proc.stdout
    proc = cli("analyze", out, "--cage-size", 0.05, check=True)
    assert "viscosity: skipped, no thermo table" in proc.stdout
    for product in ("structure.json", "msd.json", "overlap.json", "cagejumps.json", "cagejumps.csv.gz"):
        assert (out / product).is_file()
    # the import's tables name the source's units, its dimension filled in
    import lmpshear

    jumps = lmpshear.Run(out).jumps
    assert jumps.attrs["column"]["dx"] == "dx [source length]" and len(jumps) > 0
    assert lmpshear.Run(out).units["volume"] == "source length^3"
    # the same analysis of the native run gives the same overlap (same r̃, same cells)
    cli("analyze", rundir, "--only", "overlap", "--no-figures", check=True)
    import json

    a = json.loads((out / "overlap.json").read_text())["result"]
    b = json.loads((rundir / "overlap.json").read_text())["result"]
    assert a["q"] == b["q"] and a["chi4"] == pytest.approx(b["chi4"], rel=1e-12)
    # an import records its digests: `run --verify` checks it, and a changed source.json or a flipped
    # byte in the store is found and refused by analyze
    assert "intact" in cli("run", out, "--verify", check=True).stdout
    source = (out / "source.json").read_text()
    (out / "source.json").write_text(source.replace('"temperature": 0.45', '"temperature": 0.5'))
    bad = cli("run", out, "--verify")
    assert bad.returncode == 3 and "source.json does not match its digest" in bad.stderr
    assert "import the trajectory again" in bad.stderr and "Traceback" not in bad.stderr
    (out / "source.json").write_text(source)
    store = bytearray((out / "traj.gsd").read_bytes())
    store[len(store) // 3] ^= 0x10
    (out / "traj.gsd").write_bytes(bytes(store))
    refused = cli("analyze", out, "--only", "msd", "--no-figures")
    assert refused.returncode == 2 and "do not match their digests" in refused.stderr
    # refuses to overwrite
    proc = cli("import", rundir / "traj.lammpstrj", "-o", out, "--rate", RATE, "--temperature", 0.45, "--timestep", DT)
    assert proc.returncode == 2 and "not empty" in proc.stderr and "Traceback" not in proc.stderr


def _frames(text: str) -> list[str]:
    parts = text.split("ITEM: TIMESTEP\n")
    return ["ITEM: TIMESTEP\n" + p for p in parts[1:]]


@pytest.mark.full
def test_reader_errors(dumped, tmp_path):
    rundir, mode = dumped("image")
    frames = _frames((rundir / "traj.lammpstrj").read_text())[:6]
    # truncated in the middle of a frame
    cut = "".join(frames[:4]) + frames[4][: len(frames[4]) // 2]
    (tmp_path / "cut.lammpstrj").write_text(cut)
    # a frame with one particle fewer
    lines = frames[3].splitlines()
    lines[3] = str(int(lines[3]) - 1)
    (tmp_path / "count.lammpstrj").write_text("".join(frames[:3]) + "\n".join(lines[:-1]) + "\n" + "".join(frames[4:]))
    # no box at all
    (tmp_path / "nobox.xyz").write_text("2\nno lattice here\nA 0 0 0\nA 1 1 1\n" * 2)
    cases = {"cut.lammpstrj": "cannot be read", "count.lammpstrj": "particle count must not change", "nobox.xyz": "box"}
    for name, message in cases.items():
        args = ["--timestep", DT] if name.endswith("lammpstrj") else ["--sample-interval", 0.1]
        proc = cli(
            "import", tmp_path / name, "-o", tmp_path / f"out-{name}", "--rate", RATE, "--temperature", 1.0, *args
        )
        assert proc.returncode == 2, (name, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, (name, proc.stderr)
        assert not (tmp_path / f"out-{name}").exists()  # nothing half-written
    # a 3D dump imported as 2D would silently lose z
    proc = cli(
        "import",
        rundir / "traj.lammpstrj",
        "-o",
        tmp_path / "flat",
        "--rate",
        RATE,
        "--temperature",
        1.0,
        "--timestep",
        DT,
        "--dimension",
        2,
    )
    assert proc.returncode == 2 and "this is a 3D trajectory" in proc.stderr and not (tmp_path / "flat").exists()


def test_ovito_reader_of_the_native_gsd(dumped):
    """GSD keeps the box centred (HOOMD): its corner moves with the tilt and jumps at the flip (at
    frame 500 here). In the corner's frame the reader gets the store's r̃ back to float32 precision."""
    rundir, _ = dumped("image")
    ext = read_trajectory(rundir / "traj.gsd", RATE, timestep=DT)
    with Trajectory(rundir / "traj.gsd") as native:
        na = native.nonaffine()
    assert np.abs(ext.nonaffine() - na).max() < 2e-5
    assert np.abs(na).max() > 0.1  # r̃ is not trivially small


@pytest.mark.full
def test_the_box_tilt_gives_the_rate_and_a_rate_that_disagrees_is_refused(dumped, tmp_path):
    """Through a flip, the tilt's growth gives the run's rate; --rate 5 of this 0.2 run is refused (exit 2)
    unless forced, and without --rate the import uses the tilt's."""
    from lmpshear.cell import rate_from_tilts

    rundir, _ = dumped("image")
    with Trajectory(rundir / "traj.gsd") as native:
        cells = [native.cell(k) for k in range(len(native))]
        assert rate_from_tilts(cells, native.times) == pytest.approx(RATE, rel=1e-9)
    ext = read_trajectory(rundir / "traj.lammpstrj", None, timestep=DT)
    assert ext.rate == pytest.approx(RATE, rel=1e-9)
    bad = cli(
        "import",
        rundir / "traj.lammpstrj",
        "-o",
        tmp_path / "bad",
        "--rate",
        5,
        "--temperature",
        0.45,
        "--timestep",
        DT,
    )
    assert bad.returncode == 2 and "box tilt grows at 0.2" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad").exists()
    close = cli(
        "import",
        rundir / "traj.lammpstrj",
        "-o",
        tmp_path / "close",
        "--rate",
        0.2 * 1.005,
        "--temperature",
        0.45,
        "--timestep",
        DT,
    )
    assert close.returncode == 0, close.stderr  # within 1%
    forced = cli(
        "import",
        rundir / "traj.lammpstrj",
        "-o",
        tmp_path / "forced",
        "--rate",
        5,
        "--force-rate",
        "--temperature",
        0.45,
        "--timestep",
        DT,
    )
    assert forced.returncode == 0, forced.stderr
    inferred = cli(
        "import",
        rundir / "traj.lammpstrj",
        "-o",
        tmp_path / "inferred",
        "--temperature",
        0.45,
        "--timestep",
        DT,
        check=True,
    )
    assert "imported" in inferred.stdout
    from lmpshear.rundir import RunDir

    assert RunDir(tmp_path / "inferred").info().rate == pytest.approx(RATE, rel=1e-9)


def _synthetic_dump(path, rate, tilt=None, dimension=3, frames=21, interval=0.1, n=40, seed=3):
    """A LAMMPS text dump of particles that stream with the shear (u_x = rate (y - y_lo)) plus a known
    random walk, in a cell tilted by ``tilt(t)`` (default: rate t L_y, flipped at |xy| > L_x/2); returns
    the walk (the non-affine displacement r̃ the import must rebuild)."""
    rng = np.random.default_rng(seed)
    box = 8.0
    start = rng.uniform(0, box, (n, 3))
    walk = np.cumsum(np.concatenate([np.zeros((1, n, 3)), rng.normal(0, 0.05, (frames - 1, n, 3))]), axis=0)
    if dimension == 2:
        start[:, 2], walk[:, :, 2] = 0.0, 0.0
    tilt = tilt or (lambda t: rate * t * box)
    lines, flow = [], np.zeros(n)
    for k in range(frames):
        t = k * interval
        if k:
            y_before = start[:, 1] + walk[k - 1, :, 1]
            y_now = start[:, 1] + walk[k, :, 1]
            flow += rate * interval * 0.5 * (y_before + y_now)  # the trapezoid the importer integrates
        r = start + walk[k]
        r[:, 0] += flow
        xy = float(tilt(t))
        xy -= box * round(xy / box)  # the flip LAMMPS makes
        frac_y = np.floor(r[:, 1] / box)
        r[:, 1] -= frac_y * box
        r[:, 0] -= frac_y * xy
        r[:, 0] -= box * np.floor((r[:, 0] - r[:, 1] / box * xy) / box)
        if dimension == 3:
            r[:, 2] -= box * np.floor(r[:, 2] / box)
        lo, hi = min(0.0, xy), max(0.0, xy)
        lines += [
            "ITEM: TIMESTEP",
            str(k),
            "ITEM: NUMBER OF ATOMS",
            str(n),
            "ITEM: BOX BOUNDS xy xz yz pp pp pp",
            f"{lo!r} {box + hi!r} {xy!r}",
            f"0.0 {box!r} 0.0",
            f"{-0.5 if dimension == 2 else 0.0} {0.5 if dimension == 2 else box} 0.0",
            "ITEM: ATOMS id type x y z",
        ]
        lines += [f"{i + 1} {1 + i % 2} {x:.17g} {y:.17g} {z:.17g}" for i, (x, y, z) in enumerate(r)]
    path.write_text("\n".join(lines) + "\n")
    return walk


def test_imports_take_the_shear_s_sign_from_the_tilt_refuse_reversals_and_2d_as_3d(tmp_path):
    """A negative shear is unwrapped with its sign (r̃ is the walk, not the walk plus twice the flow);
    a tilt that grows and shrinks back is refused as oscillatory; a flat trajectory is refused as 3D."""
    for rate in (0.05, -0.05):
        walk = _synthetic_dump(tmp_path / "neg.lammpstrj", rate)
        traj = read_trajectory(tmp_path / "neg.lammpstrj", None, sample_interval=0.1)
        assert traj.rate == pytest.approx(rate, rel=1e-9)
        np.testing.assert_allclose(traj.nonaffine(), walk, atol=1e-9)
        # --rate gives the size; the sign is the tilt's
        assert read_trajectory(tmp_path / "neg.lammpstrj", 0.05, sample_interval=0.1).rate == pytest.approx(rate)
    _synthetic_dump(tmp_path / "osc.lammpstrj", 0.0, tilt=lambda t: 0.8 * np.sin(2 * np.pi * t / 2.0))
    with pytest.raises(Exception, match="does not grow steadily .* oscillatory or reversing shear is not supported"):
        read_trajectory(tmp_path / "osc.lammpstrj", None, sample_interval=0.1)
    _synthetic_dump(tmp_path / "flat.lammpstrj", 0.05, dimension=2)
    with pytest.raises(Exception, match="--dimension 3, but every particle lies in one plane"):
        read_trajectory(tmp_path / "flat.lammpstrj", None, sample_interval=0.1, dimension=3)
    assert read_trajectory(tmp_path / "flat.lammpstrj", None, sample_interval=0.1).dimension == 2
