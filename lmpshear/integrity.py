"""What a run's results depend on, verified: the store's frames, the thermo table and each checkpoint's
own files, against a record whose own checksum is checked. Nothing here writes until a decision is
made from reads alone, so that a resume over damaged files never destroys intact data.

A **record** (``frames.json``: one in each checkpoint, and ``checkpoint/frames.json`` when the run
completes or is imported) holds:

- ``frames`` and ``digests``: a BLAKE2b digest of each store frame's chunks (names and bytes);
- ``thermo``: the length of ``thermo.csv`` then and the digest of those bytes;
- ``files``: the digest of each file beside it (the engine's state, LAMMPS's restart, the copy of the
  store's index);
- ``checksum``: the digest of all of the above. A record that is missing, unreadable or whose
  checksum differs certifies nothing (there is no older format to be lenient with).

The frames are read through the **index copy** kept with the record (the store's GSD header, index and
namelist as flushed then), never through the store's own index: a flipped byte in the store's index
can then neither hide intact frames nor pass as intact, and a store whose data is whole but whose index
is damaged is repaired by writing the copy back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmpshear.errors import RunError
from lmpshear.rundir import Checkpoint, RunDir, atomic_write_json

#: GSD's file layout (gsd 2.x+ files): a 256-byte header whose first fields are the magic number, the
#: index's location and allocated entries (32 bytes each) and the namelist's (null-terminated names
#: packed in order of their id, allocated in units of 64 bytes); data
#: chunks (no headers of their own) are only ever appended, and the index and namelist are written at
#: a flush. So a copy of the header, index and namelist taken right after a flush, with the file's
#: length then, reads the frames as they were then and makes a store cut or damaged later whole again.
GSD_HEADER = np.dtype(
    [("magic", "<u8"), ("index_at", "<u8"), ("index_entries", "<u8"), ("names_at", "<u8"), ("name_entries", "<u8")]
)
GSD_HEADER_BYTES, GSD_NAME_BYTES = 256, 64
GSD_INDEX_ENTRY = np.dtype(
    [("frame", "<u8"), ("N", "<u8"), ("location", "<i8"), ("M", "<u4"), ("id", "<u2"), ("type", "u1"), ("flags", "u1")]
)
#: bytes of one element of each gsd_type (gsd.h: uint8 = 1 ... double = 10, character = 11)
GSD_TYPE_BYTES = np.array([0, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8, 1])


class Damaged(RunError):
    """A file a run depends on does not match its record (the message says which and how). Where it is
    not caught, the run stops with it (exit 3)."""


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def file_digest(path: Path, size: int | None = None) -> str:
    """The digest of a file's first ``size`` bytes (all of it by default), read in pieces."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        left = os.fstat(fh.fileno()).st_size if size is None else size
        while left > 0:
            piece = fh.read(min(left, 1 << 24))
            if not piece:
                raise Damaged(f"{Path(path).name} is shorter than its record ({size} bytes)")
            h.update(piece)
            left -= len(piece)
    return h.hexdigest()


def _checksum(record: dict) -> str:
    return digest(json.dumps({k: v for k, v in record.items() if k != "checksum"}, sort_keys=True).encode())


def write_record(path: Path, record: dict) -> None:
    atomic_write_json(path, {**record, "checksum": _checksum(record)})


def read_record(path: Path) -> dict:
    """A record whose checksum holds; Damaged otherwise (missing, unreadable, or changed)."""
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise Damaged(f"{path} is missing") from None
    except (OSError, ValueError) as exc:
        raise Damaged(f"{path} cannot be read ({exc})") from None
    if not isinstance(record, dict) or record.get("checksum") != _checksum(record):
        raise Damaged(f"{path} does not match its own checksum (changed or damaged)")
    return record


# -- the store, read through a copy of its index ----------------------------------------------------------


@dataclass(frozen=True)
class IndexCopy:
    """A store's header, index and namelist as flushed at some moment, and the store's length then."""

    size: int
    header: bytes
    index_at: int
    index: bytes
    names_at: int
    names: bytes

    @classmethod
    def take(cls, store: Path) -> IndexCopy:
        with open(store, "rb") as fh:
            header = fh.read(GSD_HEADER_BYTES)
            h = np.frombuffer(header, GSD_HEADER, count=1)[0]
            fh.seek(int(h["index_at"]))
            index = fh.read(int(h["index_entries"]) * GSD_INDEX_ENTRY.itemsize)
            fh.seek(int(h["names_at"]))
            names = fh.read(int(h["name_entries"]) * GSD_NAME_BYTES)
            size = os.fstat(fh.fileno()).st_size
        return cls(size, header, int(h["index_at"]), index, int(h["names_at"]), names)

    def save(self, path: Path) -> None:
        tmp = Path(path).with_suffix(".tmp.npz")
        np.savez(
            tmp,
            size=np.int64(self.size),
            header=np.frombuffer(self.header, np.uint8),
            index_at=np.int64(self.index_at),
            index=np.frombuffer(self.index, np.uint8),
            names_at=np.int64(self.names_at),
            names=np.frombuffer(self.names, np.uint8),
        )
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> IndexCopy:
        try:
            with np.load(path) as s:
                return cls(
                    int(s["size"]),
                    s["header"].tobytes(),
                    int(s["index_at"]),
                    s["index"].tobytes(),
                    int(s["names_at"]),
                    s["names"].tobytes(),
                )
        except FileNotFoundError:
            raise Damaged(f"{path} is missing") from None
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise Damaged(f"{path} cannot be read ({exc})") from None

    def chunks(self) -> tuple[np.ndarray, list[str]]:
        """The valid index entries, by frame, and the chunk names by id."""
        entries = np.frombuffer(
            self.index[: len(self.index) // GSD_INDEX_ENTRY.itemsize * GSD_INDEX_ENTRY.itemsize], GSD_INDEX_ENTRY
        )
        entries = entries[entries["location"] > 0]
        names = [name.decode("utf-8", "replace") for name in self.names.split(b"\0")]  # packed, by id
        return entries[np.argsort(entries["frame"], kind="stable")], names

    def frame_digests(self, store: Path, start: int, stop: int) -> list[str]:
        """The digest of each frame in [start, stop) of ``store`` as this copy indexes it (read-only).
        Fewer than asked where the store was cut inside them or the index names too few frames."""
        entries, names = self.chunks()
        bounds = np.searchsorted(entries["frame"], np.arange(start, stop + 1))
        out: list[str] = []
        with open(store, "rb") as fh:
            for k in range(stop - start):
                frame = entries[bounds[k] : bounds[k + 1]]
                if len(frame) == 0:
                    break
                h = hashlib.blake2b(digest_size=16)
                for e in sorted(frame, key=lambda e: names[e["id"]] if e["id"] < len(names) else ""):
                    if e["id"] >= len(names) or e["type"] >= len(GSD_TYPE_BYTES):
                        return out
                    n = int(e["N"]) * int(e["M"]) * int(GSD_TYPE_BYTES[e["type"]])
                    fh.seek(int(e["location"]))
                    data = fh.read(n)
                    if len(data) != n:
                        return out
                    h.update(names[e["id"]].encode())
                    h.update(data)
                out.append(h.hexdigest())
        return out

    def matches(self, store: Path) -> bool:
        """Whether the store's own header, index and namelist are this copy's."""
        try:
            now = IndexCopy.take(store)
        except (OSError, ValueError, IndexError):
            return False
        return (now.header, now.index, now.names) == (self.header, self.index, self.names)

    def restore(self, store: Path) -> None:
        """Make the store what it was when this copy was taken: drop what came later, write the copy back."""
        with open(store, "r+b") as fh:
            fh.truncate(self.size)
            for at, data in ((0, self.header), (self.index_at, self.index), (self.names_at, self.names)):
                fh.seek(at)
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def leading_matches(got: list[str], expected: list[str]) -> int:
    n = 0
    for a, b in zip(got, expected):
        if a != b:
            break
        n += 1
    return n


# -- records: writing ---------------------------------------------------------------------------------------


def seal_checkpoint(rd: RunDir, ckpt: Checkpoint, digests: list[str]) -> list[str]:
    """Write a checkpoint's record after its files and a flushed store and thermo table; returns every
    frame's digest up to it (``digests``, those of earlier frames, extended)."""
    copy = IndexCopy.take(rd.store)
    copy.save(ckpt.store_index)
    digests = digests + copy.frame_digests(rd.store, len(digests), ckpt.frames)
    write_record(
        ckpt.record,
        {
            "step": ckpt.step,
            "frames": ckpt.frames,
            "digests": digests,
            "files": _files_beside(ckpt),
            "thermo": _thermo(rd),
        },
    )
    return digests


def _files_beside(ckpt: Checkpoint) -> dict:
    return {
        p.name: file_digest(p)
        for p in sorted(ckpt.directory.iterdir())
        if p.is_file() and p != ckpt.record and not p.name.startswith(".")
    }


def seal_snapshot(snapshot: Checkpoint) -> None:
    """The record of a snapshot kept for the ICE: the digests of its files."""
    write_record(snapshot.record, {"step": snapshot.step, "files": _files_beside(snapshot)})


def check_snapshot(snapshot: Checkpoint) -> None:
    """Damaged (with what) unless a snapshot's files match its record."""
    _files_intact(snapshot.directory, read_record(snapshot.record))


def seal_completed(rd: RunDir, digests: list[str], frames: int) -> None:
    """The record of a finished (or imported) store and thermo table, checkpoint/frames.json; its files
    (relative to the run directory) are the copy of the store's index and an import's source.json."""
    rd.checkpoints.mkdir(exist_ok=True)
    copy = IndexCopy.take(rd.store)
    copy.save(rd.file("store_index"))
    digests = digests + copy.frame_digests(rd.store, len(digests), frames)
    if len(digests) != frames:
        raise Damaged(f"{rd.store} holds {len(digests)} readable frames, {frames} were written")
    files = [rd.file("store_index")] + ([rd.source] if rd.source.is_file() else [])
    write_record(
        rd.file("digests"),
        {
            "frames": frames,
            "digests": digests,
            "thermo": _thermo(rd),
            "files": {str(f.relative_to(rd.path)): file_digest(f) for f in files},
        },
    )


def _thermo(rd: RunDir) -> dict | None:
    if not rd.thermo.is_file():
        return None  # imported trajectories have none
    size = rd.thermo.stat().st_size
    return {"bytes": size, "digest": file_digest(rd.thermo, size)}


# -- records: checking --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A store and thermo table against a record: how many leading frames are intact, and what is not."""

    what: str  # which record
    total: int  # frames the record covers
    intact: int  # leading frames that match
    problems: tuple[str, ...]  # what is damaged, in words; empty: everything the record covers is intact
    index_only: bool = False  # the data is intact and only the store's own index differs (repairable)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check(rd: RunDir, record: dict, copy: IndexCopy, what: str, whole_thermo: bool) -> Verdict:
    problems = []
    frames = int(record["frames"])
    if not rd.store.is_file():
        return Verdict(what, frames, 0, (f"{rd.store} is missing",))
    intact = leading_matches(copy.frame_digests(rd.store, 0, frames), record["digests"][:frames])
    if intact < frames:
        problems.append(
            f"frames {intact} to {frames - 1} of {rd.store} do not match their digests (damaged, cut or replaced)"
        )
    thermo = record.get("thermo")
    if thermo is not None:
        size = rd.thermo.stat().st_size if rd.thermo.is_file() else -1
        if size < thermo["bytes"] or (whole_thermo and size != thermo["bytes"]):
            problems.append(
                f"{rd.thermo.name} is {'missing' if size < 0 else f'{size} bytes'}, its record "
                f"{thermo['bytes']} (cut or changed)"
            )
        elif file_digest(rd.thermo, thermo["bytes"]) != thermo["digest"]:
            problems.append(f"{rd.thermo.name} does not match its digest (changed)")
    index_only = False
    if not problems and whole_thermo and not copy.matches(rd.store):
        problems.append(
            f"the index of {rd.store.name} is damaged (its frames are intact: `lmpshear run --repair` writes it back)"
        )
        index_only = True
    return Verdict(what, frames, intact, tuple(problems), index_only)


def _files_intact(directory: Path, record: dict) -> None:
    for name, expected in record.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise Damaged(f"{path} is missing")
        if file_digest(path) != expected:
            raise Damaged(f"{path} does not match its digest (changed or damaged)")


def check_completed(rd: RunDir) -> Verdict:
    """A finished (or imported) run's store, index and thermo table against its completion record."""
    path = rd.file("digests")
    what = "the record written when the run completed"
    try:
        record = read_record(path)
        _files_intact(rd.path, record)
        copy = IndexCopy.load(rd.file("store_index"))
    except Damaged as exc:
        return Verdict(what, 0, 0, (f"{exc}: nothing can be certified",))
    return _check(rd, record, copy, what, whole_thermo=True)


def check_checkpoint(rd: RunDir, directory: Path) -> tuple[Checkpoint | None, Verdict]:
    """One checkpoint, read-only: its record and files, and the store's and thermo's bytes up to it."""
    what, files = f"the checkpoint {directory.name}", Checkpoint(0, 0, directory)
    try:
        record = read_record(files.record)
        _files_intact(directory, record)
        if "state.npz" not in record["files"]:
            raise Damaged(f"{directory} holds no engine state")
        if rd.input.is_file() and "restart.lmp" not in record["files"]:
            raise Damaged(f"{directory} holds no LAMMPS restart")
        copy = IndexCopy.load(files.store_index)
    except Damaged as exc:
        return None, Verdict(what, 0, 0, (str(exc),))
    ckpt = Checkpoint(int(record["step"]), int(record["frames"]), directory)
    return ckpt, _check(rd, record, copy, what, whole_thermo=False)


def checkpoint_dirs(rd: RunDir) -> list[Path]:
    """The shear's checkpoint directories, newest first."""
    return sorted((d for d in rd.checkpoints.glob("step-*") if d.is_dir()), reverse=True)


@dataclass(frozen=True)
class Settled:
    checkpoint: Checkpoint | None  # the newest intact one (None: none is)
    intact: int  # the most leading frames any record found intact
    problems: tuple[str, ...]  # why each newer checkpoint was passed over


def newest_intact_checkpoint(rd: RunDir) -> Settled | None:
    """The newest checkpoint whose files, frames and thermo rows are all intact, read-only (None: the
    run has no shear checkpoint yet)."""
    dirs = checkpoint_dirs(rd)
    if not dirs:
        return None
    problems: list[str] = []
    intact = 0
    for d in dirs:
        ckpt, verdict = check_checkpoint(rd, d)
        intact = max(intact, verdict.intact)
        if ckpt is not None and verdict.ok:
            return Settled(ckpt, ckpt.frames, tuple(problems))
        problems.append(f"{d.name}: {'; '.join(verdict.problems)}")
    return Settled(None, intact, tuple(problems))


def roll_back(rd: RunDir, ckpt: Checkpoint) -> bool:
    """Cut the store and the thermo table once, to ``ckpt`` (verified), drop the checkpoints of the
    abandoned trajectory after it, and point ``latest.json`` at it. Whether the store changed."""
    record = read_record(ckpt.record)
    copy = IndexCopy.load(ckpt.store_index)
    changed = rd.store.stat().st_size != copy.size or not copy.matches(rd.store)
    copy.restore(rd.store)
    if record.get("thermo") is not None:
        os.truncate(rd.thermo, record["thermo"]["bytes"])
    for d in checkpoint_dirs(rd):
        if d.name > ckpt.directory.name:
            shutil.rmtree(d, ignore_errors=True)
    rd.point_to(ckpt)
    return changed


def verify(rd: RunDir) -> Verdict | None:
    """A run's store and thermo table against its newest record: the completion record of a finished or
    imported run, else the latest checkpoint's; None where there is none yet (no checkpoint)."""
    if rd.file("digests").exists() or rd.complete():
        return check_completed(rd)
    latest = rd.latest_checkpoint(check=False)
    if latest is None:
        return None
    return check_checkpoint(rd, latest.directory)[1]


def require_intact(rd: RunDir, reading: str | None = None) -> Verdict | None:
    """``verify``, with damage as an error that says what is damaged and the command that repairs it:
    a RunError (exit 3), or, for a reader (``reading``: what it was going to do), a UserError (exit 2)."""
    from lmpshear.errors import UserError

    verdict = verify(rd)
    if verdict is None or verdict.ok:
        return verdict
    if rd.source.is_file():
        advice = "import the trajectory again into a new directory"
    elif rd.complete():
        advice = f"`lmpshear run --repair {rd.path}` " + (
            "writes the index back"
            if verdict.index_only
            else "rolls back to the newest intact checkpoint and runs again from there"
        )
    else:
        advice = f"`lmpshear run {rd.path}` resumes from the newest intact checkpoint"
    message = f"{rd.path} is damaged: {'; '.join(verdict.problems)} (against {verdict.what}); {advice}"
    if reading is None:
        raise RunError(message)
    raise UserError(f"{message}; the run cannot be {reading} as it is")
