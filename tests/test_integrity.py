"""Nothing certified that is not intact (lmpshear.integrity): the records, the store read through a copy
of its index, the thermo table, and resumes that verify first and cut once."""

import hashlib
import json
import shutil

import gsd.fl
import numpy as np
import pytest
from conftest import cli, prepare_and_run, run_and_kill, write_spec

from lmpshear import integrity
from lmpshear.cell import Cell
from lmpshear.rundir import RunDir
from lmpshear.store import StoreWriter, Trajectory


def _store(path, frames=5, n=7, dimension=3):
    rng = np.random.default_rng(1)
    w = StoreWriter(path, ["A", "B"], np.arange(n) % 2, dimension, diameters=[1.0, 0.8], masses=[1.0, 1.0])
    for k in range(frames):
        r = rng.uniform(0, 4, (n, 3))
        w.append(
            k * 10, 0.1 * k, 0.01 * k, Cell((0, 0, 0), 4.0, 4.0, 4.0, 0.1 * k, dimension), r, r - 1, rng.normal(size=n)
        )
    w.close()


def _gsd_digests(path):
    """The same digest through gsd's own reader: every chunk of a frame, by name, its bytes."""
    out = []
    with gsd.fl.open(path, "r") as f:
        names = sorted(f.find_matching_chunk_names(""))
        for k in range(f.nframes):
            h = hashlib.blake2b(digest_size=16)
            for name in names:
                if f.chunk_exists(k, name):
                    h.update(name.encode())
                    h.update(np.ascontiguousarray(f.read_chunk(k, name)).tobytes())
            out.append(h.hexdigest())
    return out


def test_frames_read_through_the_index_copy_are_gsds_frames(tmp_path):
    store = tmp_path / "traj.gsd"
    _store(store)
    copy = integrity.IndexCopy.take(store)
    assert copy.frame_digests(store, 0, 5) == _gsd_digests(store)
    assert copy.frame_digests(store, 2, 4) == _gsd_digests(store)[2:4]
    assert copy.matches(store)
    # a flipped byte in a frame's data changes that frame's digest only
    expected = copy.frame_digests(store, 0, 5)
    entries, names = copy.chunks()
    at = int(entries[(entries["frame"] == 3) & (np.array(names)[entries["id"]] == "particles/position")]["location"][0])
    data = bytearray(store.read_bytes())
    data[at + 5] ^= 0x01
    store.write_bytes(bytes(data))
    got = copy.frame_digests(store, 0, 5)
    assert integrity.leading_matches(got, expected) == 3 and got[4] == expected[4] and got[3] != expected[3]
    assert got == _gsd_digests(store)


def test_a_damaged_index_is_seen_and_written_back_and_a_cut_store_reads_short(tmp_path):
    store = tmp_path / "traj.gsd"
    _store(store)
    expected = _gsd_digests(store)
    copy = integrity.IndexCopy.take(store)
    data = bytearray(store.read_bytes())
    data[copy.index_at + 17] ^= 0xFF  # a location in the store's own index
    store.write_bytes(bytes(data))
    assert not copy.matches(store)
    assert copy.frame_digests(store, 0, 5) == expected  # read through the copy, the frames are whole
    copy.restore(store)
    assert copy.matches(store) and _gsd_digests(store) == expected
    # cut inside frame 3's data: frames 0-2 still read, nothing after
    entries, _ = copy.chunks()
    cut = int(entries[entries["frame"] == 3]["location"].max()) + 1
    with open(store, "r+b") as fh:
        fh.truncate(cut)
    assert copy.frame_digests(store, 0, 5) == expected[:3]


def test_records_certify_only_with_their_checksum(tmp_path):
    path = tmp_path / "frames.json"
    integrity.write_record(path, {"frames": 2, "digests": ["a", "b"]})
    assert integrity.read_record(path)["digests"] == ["a", "b"]
    record = json.loads(path.read_text())
    record["digests"][1] = "c"
    path.write_text(json.dumps(record))
    with pytest.raises(integrity.Damaged, match="does not match its own checksum"):
        integrity.read_record(path)
    path.write_text("{ not json")
    with pytest.raises(integrity.Damaged, match="cannot be read"):
        integrity.read_record(path)
    path.unlink()
    with pytest.raises(integrity.Damaged, match="is missing"):
        integrity.read_record(path)


def test_pruning_keeps_the_newest_before_and_nothing_after(tmp_path):
    """An abandoned trajectory's checkpoint (a later step, left by a roll-back) never outlives the valid one."""
    rd = RunDir(tmp_path)
    rd.path.mkdir(exist_ok=True)
    for step in (10, 20, 35):
        rd.new_checkpoint_dir(step)
    rd.new_checkpoint_dir(30)
    rd.commit_checkpoint(30, 4)
    assert sorted(p.name for p in rd.checkpoints.glob("step-*")) == ["step-000000000020", "step-000000000030"]


def _bd_spec(tmp_path):
    return write_spec(tmp_path / "bd.toml", "bd45-tiny", protocol={"production_strain": 1.0, "checkpoint_every": 10})


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _location(run, frame, chunk="log/particles/lmpshear/unwrapped"):
    copy = integrity.IndexCopy.take(run / "traj.gsd")
    entries, names = copy.chunks()
    pick = (entries["frame"] == frame) & (np.array(names)[entries["id"]] == chunk)
    return int(entries[pick]["location"][0])


def _flip(path, at, mask=0x40):
    with open(path, "r+b") as fh:
        fh.seek(at)
        byte = fh.read(1)[0]
        fh.seek(at)
        fh.write(bytes([byte ^ mask]))


@pytest.mark.full
def test_resumes_verify_first_cut_once_and_never_certify_damage(tmp_path):
    """The issue's cases on a killed BD run (checkpoints every 10 samples, two kept):
    - a flipped frame before every kept checkpoint: exit 3, nothing cut, status names the intact frames;
    - a damaged newest record: rolled back to the older checkpoint, never "older version, skip";
    - a changed thermo row after the newest checkpoint and before it: thermo rolled back with the store;
    each resume ends bitwise equal (store and thermo) to a run never stopped."""
    spec = _bd_spec(tmp_path)
    reference = prepare_and_run(tmp_path, spec, "reference")
    victim = tmp_path / "victim"
    cli("prepare", spec, "-o", victim, check=True)
    run_and_kill(
        victim,
        until=lambda: (
            len(list((victim / "checkpoint").glob("step-*/frames.json"))) >= 2
            and RunDir(victim).latest_checkpoint(check=False) is not None
            and RunDir(victim).latest_checkpoint(check=False).frames >= 31
        ),
        timeout=300,
    )
    rd = RunDir(victim)
    kept = integrity.checkpoint_dirs(rd)  # two, or three where the kill came before the pruning
    assert len(kept) >= 2
    newest, older = (integrity.check_checkpoint(rd, d)[0] for d in kept[:2])

    def case(name):
        copy = tmp_path / name
        shutil.copytree(victim, copy, ignore=shutil.ignore_patterns(".lock"))
        return copy

    def finished_like_the_reference(run):
        assert _sha(run / "thermo.csv") == _sha(reference / "thermo.csv")
        with Trajectory(reference / "traj.gsd") as ref, Trajectory(run / "traj.gsd") as got:
            assert len(got) == len(ref)
            for key in ("unwrapped", "nonaffine", "virial_xy"):
                assert np.array_equal(ref.particle_array(key), got.particle_array(key)), key
        assert "intact" in cli("run", run, "--verify", check=True).stdout

    # 1. a frame flipped before both kept checkpoints: nothing intact, nothing cut
    bad = case("flipped")
    _flip(bad / "traj.gsd", _location(bad, 3) + 8)
    before = {p.name: _sha(p) for p in (bad / "traj.gsd", bad / "thermo.csv")}
    out = cli("run", bad)
    assert out.returncode == 3 and "Traceback" not in out.stderr
    assert "nothing was cut, and the first 3 frames of traj.gsd match their digests" in out.stderr
    assert {p.name: _sha(p) for p in (bad / "traj.gsd", bad / "thermo.csv")} == before
    assert len(integrity.checkpoint_dirs(RunDir(bad))) == len(kept)
    assert RunDir(bad).status()["frames"] == 3
    # 2. the newest record damaged (or removed): the older checkpoint, verified, and the newer one goes
    for how in ("damaged", "removed"):
        run = case(f"record-{how}")
        record = run / "checkpoint" / kept[0].name / "frames.json"
        if how == "removed":
            record.unlink()
        else:
            record.write_text(record.read_text().replace('"frames": ', '"frames": 1', 1))
        out = cli("run", run, check=True)
        assert f"rolled back to the checkpoint at step {older.step}" in out.stderr, out.stderr
        finished_like_the_reference(run)
    # 3. thermo: a digit changed in a row that the newest checkpoint covers rolls back to the older one;
    # a row after it (here a half-written one) is cut with the store
    text = (victim / "thermo.csv").read_bytes()
    starts = np.cumsum([0] + [len(line) for line in text.splitlines(keepends=True)])[:-1]
    bytes_at = {c.step: integrity.read_record(c.record)["thermo"]["bytes"] for c in (older, newest)}
    between = int(starts[(starts > bytes_at[older.step]) & (starts < bytes_at[newest.step])][0])
    run = case("thermo-changed")
    _flip(run / "thermo.csv", between + 1, mask=0x01)  # a digit of the step column changes by one
    out = cli("run", run, check=True)
    assert f"rolled back to the checkpoint at step {older.step}" in out.stderr
    finished_like_the_reference(run)
    run = case("thermo-half-row")
    with open(run / "thermo.csv", "ab") as fh:
        fh.write(b"99999,0.12")
    out = cli("run", run, check=True)
    assert "rolled back" not in out.stderr
    finished_like_the_reference(run)


@pytest.mark.full
def test_a_finished_run_damaged_is_refused_everywhere_and_repaired(tmp_path):
    """After completion: a changed thermo value, a flipped frame and a flipped index byte are each
    found by `run --verify` (exit 3 naming the repair) and refused by analyze; `run --repair` writes a
    damaged index back, or rolls back to the newest intact checkpoint and runs again, to the reference."""
    spec = _bd_spec(tmp_path)
    reference = prepare_and_run(tmp_path, spec, "reference")
    n = RunDir(reference).status()["frames"]

    def damaged(name, how):
        run = tmp_path / name
        shutil.copytree(reference, run)
        how(run)
        out = cli("run", run, "--verify")
        assert out.returncode == 3 and f"lmpshear run --repair {run}" in out.stderr and "Traceback" not in out.stderr
        refused = cli("analyze", run, "--only", "viscosity", "--no-figures")
        assert refused.returncode == 2 and "cannot be analysed as it is" in refused.stderr
        assert "already complete" in cli("run", run, check=True).stdout  # a plain run changes nothing
        assert "repaired" in cli("run", run, "--repair", check=True).stdout
        assert _sha(run / "thermo.csv") == _sha(reference / "thermo.csv")
        with Trajectory(reference / "traj.gsd") as ref, Trajectory(run / "traj.gsd") as got:
            assert np.array_equal(ref.particle_array("unwrapped"), got.particle_array("unwrapped"))
        assert "nothing to repair" in cli("run", run, "--repair", check=True).stdout
        return out.stderr

    last_row = (reference / "thermo.csv").stat().st_size - 5  # a digit of the last row's last value
    assert "thermo.csv does not match its digest" in damaged(
        "thermo", lambda run: _flip(run / "thermo.csv", last_row, 1)
    )
    assert f"frames {n - 2} to {n - 1} of" in damaged(
        "frame", lambda run: _flip(run / "traj.gsd", _location(run, n - 2))
    )
    index_at = integrity.IndexCopy.take(reference / "traj.gsd").index_at
    message = damaged("index", lambda run: _flip(run / "traj.gsd", index_at + 32 * 7 + 20))
    assert "the index of traj.gsd is damaged" in message and "writes the index back" in message
