"""A run directory: its files, its lock, its checkpoints and status.

Layout::

    RUNDIR/config.toml       the resolved, single-rate run spec
    RUNDIR/in.lammps         the rendered LAMMPS input (runnable by the bare lmp binary; engine lammps)
    RUNDIR/manifest.json     versions, seeds, host, command line, input hashes
    RUNDIR/init.data         the initial configuration, when the spec gives one
    RUNDIR/traj.gsd          the trajectory store;  RUNDIR/thermo.csv  the thermo table
    RUNDIR/log.lammps        LAMMPS's own log
    RUNDIR/checkpoint/       step-NNNNNNNNNNNN/{restart.lmp (lammps), state.npz} and latest.json
    RUNDIR/snapshots/        step-NNNNNNNNNNNN/{restart.lmp, state.npz} kept every protocol.snapshot_every samples
    RUNDIR/ice/              isoconfigurational replicas of a cluster (`lmpshear ice`)
    RUNDIR/status.json       running / complete / failed
    RUNDIR/source.json       instead of config.toml and in.lammps: a trajectory imported from elsewhere
    RUNDIR/*.json            analysis products
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmpshear import config
from lmpshear.errors import UserError
from lmpshear.spec import Analysis, RunSpec


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never a partial one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path):
    """A JSON file of lmpshear's, parsed; a damaged one is a UserError that names it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{path} is damaged ({exc}): remove it and make it again (a product: `lmpshear analyze RUNDIR --force`)"
        ) from None


def atomic_write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class RunInfo:
    rate: float
    temperature: float
    steady_strain: float
    steady_time: float  # the steady window starts here
    analysis: Analysis
    name: str
    imported: bool


@dataclass(frozen=True)
class Checkpoint:
    step: int
    frames: int
    directory: Path

    @property
    def restart(self) -> Path:
        return self.directory / "restart.lmp"

    @property
    def state(self) -> Path:
        return self.directory / "state.npz"

    @property
    def store_index(self) -> Path:
        """The store's header, index and namelist as flushed at this checkpoint (lmpshear.integrity)."""
        return self.directory / "store-index.npz"

    @property
    def record(self) -> Path:
        """What it certifies, checksummed (lmpshear.integrity): the digests of the store's frames, of the
        thermo table and of its own files up to it."""
        return self.directory / "frames.json"


@dataclass(frozen=True)
class Product:
    """An analysis stage's product (RUNDIR/NAME.json), the one format every stage writes: the stage
    that made it, the parameters it was made with ([analysis] keys it depends on, its version), and
    its result."""

    stage: str
    params: dict
    result: dict

    def as_dict(self) -> dict:
        return {"stage": self.stage, "params": self.params, "result": self.result}

    @classmethod
    def from_dict(cls, data: dict) -> Product:
        return cls(data["stage"], data["params"], data["result"])

    @classmethod
    def read(cls, path: Path) -> Product:
        data = read_json(path)
        if not (isinstance(data, dict) and {"stage", "params", "result"} <= data.keys()):
            raise UserError(
                f"{path} is not an analysis product (it needs stage, params and result): "
                "make it again with `lmpshear analyze RUNDIR --force`"
            )
        return cls.from_dict(data)

    def write(self, path: Path) -> None:
        atomic_write_json(path, self.as_dict())


class RunDir:
    #: the run directory's files by their name here: the one home of the names on disk. A stage's
    #: product is RUNDIR/STAGE.json (``product``); ``file`` resolves either kind of name.
    FILES = {
        "config": "config.toml",
        "input": "in.lammps",
        "manifest": "manifest.json",
        "init_data": "init.data",
        "store": "traj.gsd",
        "thermo": "thermo.csv",
        "status": "status.json",
        "checkpoints": "checkpoint",
        "lock": ".lock",
        "status_reserve": ".status-reserve",
        "source": "source.json",
        "ice": "ice",
        "jumps": "cagejumps.csv.gz",  # the cagejumps stage's table, beside its cagejumps.json
        "digests": "checkpoint/frames.json",  # the completed store's record (lmpshear.integrity)
        "store_index": "checkpoint/store-index.npz",  # its index as it completed
        "analysed": "analysis.json",
    }  # written after a full `lmpshear analyze`

    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()

    # -- files ----------------------------------------------------------------------------------
    config = property(lambda self: self.file("config"))
    input = property(lambda self: self.file("input"))
    manifest = property(lambda self: self.file("manifest"))
    init_data = property(lambda self: self.file("init_data"))
    store = property(lambda self: self.file("store"))
    thermo = property(lambda self: self.file("thermo"))
    status_file = property(lambda self: self.file("status"))
    checkpoints = property(lambda self: self.file("checkpoints"))
    lock_file = property(lambda self: self.file("lock"))
    source = property(lambda self: self.file("source"))

    def file(self, name: str) -> Path:
        """A file of the run directory by its name in FILES, or a stage's product by the stage's name."""
        return self.path / self.FILES[name] if name in self.FILES else self.product(name)

    def product(self, stage: str) -> Path:
        """The product of an analysis stage (RUNDIR/STAGE.json)."""
        return self.path / f"{stage}.json"

    def result(self, stage: str) -> dict | None:
        """The result in the product of an analysis stage (e.g. "clusters"), or None where it was not made."""
        path = self.product(stage)
        return Product.read(path).result if path.exists() else None

    def made(self, stage: str) -> dict:
        """The result in the product of an analysis stage that must have been made (UserError saying what to
        run where it was not)."""
        path = self.product(stage)
        if not path.exists():
            raise UserError(f"{path} is missing: run `lmpshear analyze {self.path}` first")
        return Product.read(path).result

    def analysed(self) -> bool:
        """Whether a full ``analyze`` finished after the run's data was last written."""
        record = self.file("analysed")
        return record.exists() and all(
            record.stat().st_mtime >= f.stat().st_mtime for f in (self.store, self.thermo) if f.exists()
        )

    def require_prepared(self) -> None:
        if not self.path.is_dir():
            raise UserError(f"no run directory at {self.path}")
        for f in (self.config,):
            if not f.is_file():
                raise UserError(
                    f"{self.path} is not a prepared run directory (missing {f.name}); "
                    "make one with: lmpshear prepare CONFIG -o RUNDIR"
                )

    def require_run(self) -> None:
        """A prepared run directory or an imported trajectory's."""
        if not self.source.is_file():
            self.require_prepared()

    def spec(self) -> RunSpec:
        self.require_prepared()
        return config.load(self.config, init_file_needed=not self.has_run_data())  # started: read no more

    def info(self) -> RunInfo:
        """What analysis needs to know, from the run spec or, for an imported trajectory, source.json."""
        if self.source.is_file():
            data = read_json(self.source)
            c = config.Checker(str(self.source))
            analysis = config.load_analysis(c, data.get("analysis", {}))
            c.finish()
            return RunInfo(
                data["rate"],
                data["temperature"],
                data["steady_strain"],
                data["steady_time"],
                analysis,
                data.get("name", self.path.name),
                imported=True,
            )
        spec = self.spec()
        return RunInfo(
            spec.rate.rate,
            spec.system.temperature,
            spec.steady_strain,
            spec.steady_time,
            spec.analysis,
            spec.system.name,
            imported=False,
        )

    def has_run_data(self) -> bool:
        return self.store.exists() or self.checkpoints.exists() or self.thermo.exists()

    # -- status -----------------------------------------------------------------------------------
    def complete(self) -> bool:
        """Whether the run finished (or was imported): the one test of it. Whether its files are still
        intact is :func:`lmpshear.integrity.verify`'s question."""
        return self.status().get("state") == "complete"

    def status(self) -> dict:
        if not self.status_file.exists():
            return {"state": "prepared"}
        return read_json(self.status_file)

    #: bytes kept free for status.json beside it (RUNDIR/.status-reserve), so that a full disk can still
    #: take the final status: the reserve is given up for it
    STATUS_RESERVE = 16384

    def set_status(self, **fields) -> None:
        text = json.dumps(fields, indent=2, sort_keys=True) + "\n"
        reserve = self.file("status_reserve")
        try:
            atomic_write_text(self.status_file, text)
        except OSError as exc:
            if exc.errno != errno.ENOSPC or not reserve.exists():
                raise
            reserve.unlink()  # a full disk: the room kept for this moment
            atomic_write_text(self.status_file, text)
            return
        if not reserve.exists():
            try:
                reserve.write_bytes(b"\0" * self.STATUS_RESERVE)
            except OSError:  # no room for it now: the next status tries again
                reserve.unlink(missing_ok=True)

    # -- lock -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self):
        """Exclusive lock for a run; released by the kernel if the process dies (kill -9 safe)."""
        fh = open(self.lock_file, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise UserError(f"{self.path} is already being run by {holder}; refusing to start a second run") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    def running_by(self) -> str | None:
        """Who holds the run lock now (None: nobody), without taking it."""
        if not self.lock_file.exists():
            return None
        with open(self.lock_file, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                return fh.read().strip() or "another process"
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return None

    # -- checkpoints --------------------------------------------------------------------------------
    def latest_checkpoint(self, check: bool = True) -> Checkpoint | None:
        """The checkpoint ``latest.json`` points at (``check=False``: None where the pointer is damaged,
        and the checkpoint even if it is incomplete, instead of an error)."""
        pointer = self.checkpoints / "latest.json"
        if not pointer.exists():
            return None
        try:
            data = json.loads(pointer.read_text())
            ckpt = Checkpoint(int(data["step"]), int(data["frames"]), self.checkpoints / data["directory"])
        except (ValueError, KeyError, TypeError) as exc:
            if not check:
                return None
            raise ValueError(f"the checkpoint pointer {pointer} is damaged ({exc!r})") from None
        if not ckpt.state.is_file() and check:
            raise UserError(f"checkpoint {ckpt.directory} is incomplete; cannot resume")
        return ckpt

    def point_to(self, ckpt: Checkpoint) -> None:
        """Make ``ckpt`` the one a resume starts from."""
        atomic_write_json(
            self.checkpoints / "latest.json",
            {"step": ckpt.step, "frames": ckpt.frames, "directory": ckpt.directory.name},
        )

    def new_checkpoint_dir(self, step: int) -> Path:
        d = self.checkpoints / f"step-{step:012d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def snapshot_dir(self, step: int, create: bool = True) -> Path:
        """Where the full state at ``step`` is kept for `lmpshear ice` (protocol.snapshot_every)."""
        d = self.path / "snapshots" / f"step-{step:012d}"
        if create:
            d.mkdir(parents=True, exist_ok=True)
        return d

    def snapshots(self) -> list[Checkpoint]:
        """Complete snapshots, by step."""
        out = []
        for d in sorted((self.path / "snapshots").glob("step-*")):
            if (d / "state.npz").is_file() and (d / "restart.lmp").is_file():
                with np.load(d / "state.npz") as state:
                    out.append(Checkpoint(int(state["step"]), int(state["frames"]), d))
        return out

    def commit_checkpoint(self, step: int, frames: int, keep: int = 2) -> None:
        """Point ``latest.json`` at a complete checkpoint, then prune: the ``keep - 1`` newest before it
        stay, and none after it (a later step can only be left from an abandoned trajectory)."""
        name = f"step-{step:012d}"
        self.point_to(Checkpoint(step, frames, self.checkpoints / name))
        self.set_status(state="running", phase="shear", step=step, frames=frames)
        others = sorted(p for p in self.checkpoints.glob("step-*") if p.is_dir() and p.name != name)
        before = [p for p in others if p.name < name]
        for p in before[: max(0, len(before) - (keep - 1))] + [p for p in others if p.name > name]:
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def working_directory(path: Path):
    """LAMMPS reads and writes files by fixed relative names inside the run directory."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def completion(frames: int, final_step: int, wall: float, steps: int, particles: int) -> dict:
    """The status of a finished run: frames, last step, wall time and throughput of this call."""
    return {
        "state": "complete",
        "frames": frames,
        "final_step": final_step,
        "wall_seconds": wall,
        "shear_steps_this_call": steps,
        "matom_steps_per_second": particles * steps / wall / 1e6 if wall > 0 else None,
    }
