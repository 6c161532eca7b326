"""The trajectory store: one GSD file (HOOMD schema) plus a thermo table (CSV).

GSD is read by ovito, freud, MDAnalysis and gsd itself. Each frame is one sample (every Δt of
shear; frame 0 is t = 0, the start of shear) and holds:

=================================  ======================  ==========================================
chunk                              shape, type             meaning
=================================  ======================  ==========================================
configuration/step                 uint64                  MD step since the start of shear
configuration/box                  6 float32               Lx, Ly, Lz, xy/Ly, 0, 0 (HOOMD tilt factor)
configuration/dimensions           uint8                   2 or 3 (2D: Lz = 0, z = 0)
particles/types, typeid            names, (N,) uint32      species, in the order of the spec
particles/position                 (N, 3) float32          inside the cell, centred on the origin
particles/image                    (N, 3) int32            position + image·box = unwrapped (no wrap)
particles/diameter, mass           (N,) float32            per species, from the spec (runs of lmpshear)
log/lmpshear/time, strain          float64                 t and γ̇t (never read from the tilt)
log/lmpshear/origin                3 float64               lab position of the cell's lower corner
log/lmpshear/cell                  4 float64               Lx, Ly, Lz, xy (absolute tilt) exactly
log/particles/lmpshear/unwrapped   (N, 3) float64          continuous lab-frame path, through flips
log/particles/lmpshear/nonaffine   (N, 3) float64          Yamamoto–Onuki r̃(t), r̃(0) = 0
log/particles/lmpshear/virial_xy   (N,) float64            per-particle virial shear stress × volume;
                                                           Σ_i / V = σ_xy^vir = −P_xy^vir
log/particles/lmpshear/velocity    (N, 3) float64          peculiar velocity (if store_velocities)
=================================  ======================  ==========================================

LAMMPS runs: ``virial_xy`` comes from the forces of the sample step, which LAMMPS computes in the cell of
the step before (fix deform moves the box at the end of a step) at the positions it holds; an atom
that crossed a y face since the last neighbour build is held outside the cell there, so for it and
the atoms within the cutoff of it a recomputation at the stored positions differs at O(γ̇Δt·L_y).

ovito shows the ``log/particles`` chunks as particle properties (``lmpshear_nonaffine`` ...) and the
global ones as attributes. Arrays returned by :class:`Trajectory` are (frames, particles, dim).
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import gsd.fl
import gsd.hoomd
import numpy as np

from lmpshear.cell import Cell
from lmpshear.errors import UserError
from lmpshear.rundir import atomic_write_text

PARTICLE_KEYS = ("unwrapped", "nonaffine", "virial_xy", "velocity")
GSD_FLOAT64 = 10  # gsd_type of a double
THERMO_COLUMNS = (
    "step",
    "time",
    "strain",
    "temp",
    "pe",
    "ke",
    "etotal",
    "press",
    "pxy",
    "pxy_virial",
    "lx",
    "ly",
    "lz",
    "xy",
)
# Brownian dynamics: no kinetic energy; pxy = pxy_virial (Yukawa, at the row) + pxy_collision (hard
# core, mean over the steps since the previous row); overlaps and sweeps of the hard core per step.
BD_THERMO_COLUMNS = (
    "step",
    "time",
    "strain",
    "temp",
    "pe",
    "press",
    "pxy",
    "pxy_virial",
    "pxy_collision",
    "overlaps",
    "sweeps",
    "lx",
    "ly",
    "lz",
    "xy",
)


class StoreWriter:
    """Appends frames to a GSD file. ``append=True`` reopens an existing store (resume)."""

    def __init__(
        self,
        path: Path,
        types: list[str],
        typeid: np.ndarray,
        dimension: int,
        *,
        append: bool = False,
        diameters: list[float] | None = None,
        masses: list[float] | None = None,
    ):
        self.path = Path(path)
        self.types = list(types)
        self.typeid = np.ascontiguousarray(typeid, dtype=np.uint32)
        self.dimension = dimension
        # per particle, so that ovito, freud and HOOMD tools see each species' size (GSD's default is 1)
        self.diameter = None if diameters is None else np.asarray(diameters, dtype=np.float32)[self.typeid]
        self.mass = None if masses is None else np.asarray(masses, dtype=np.float32)[self.typeid]
        self._file = gsd.hoomd.open(self.path, "a" if append else "w")

    @classmethod
    def for_system(cls, path: Path, system, typeid: np.ndarray, *, append: bool = False) -> StoreWriter:
        """A writer for a run of ``system`` (a spec's System): its species' names, diameters and masses."""
        return cls(
            path,
            [sp.name for sp in system.species],
            typeid,
            system.dimension,
            append=append,
            diameters=[sp.diameter for sp in system.species],
            masses=[sp.mass for sp in system.species],
        )

    def append(
        self,
        step: int,
        time: float,
        strain: float,
        cell: Cell,
        unwrapped: np.ndarray,
        nonaffine: np.ndarray,
        virial_xy: np.ndarray | None,
        velocity: np.ndarray | None = None,
    ) -> None:
        frame = gsd.hoomd.Frame()
        frame.configuration.step = int(step)
        frame.configuration.dimensions = self.dimension
        lz = cell.lz if self.dimension == 3 else 0.0
        frame.configuration.box = [cell.lx, cell.ly, lz, cell.xy / cell.ly, 0.0, 0.0]
        inside, image = cell.wrap(unwrapped)
        centre = np.asarray(cell.lo) + 0.5 * (np.array([cell.lx + cell.xy, cell.ly, cell.lz]))
        position = inside - centre
        if self.dimension == 2:
            position[:, 2] = 0.0
        frame.particles.N = len(self.typeid)
        frame.particles.types = self.types
        frame.particles.typeid = self.typeid
        frame.particles.position = position.astype(np.float32)
        frame.particles.image = image.astype(np.int32)
        if self.diameter is not None:
            frame.particles.diameter = self.diameter
        if self.mass is not None:
            frame.particles.mass = self.mass
        frame.log["lmpshear/time"] = np.array([time], dtype=np.float64)
        frame.log["lmpshear/strain"] = np.array([strain], dtype=np.float64)
        frame.log["lmpshear/origin"] = np.asarray(cell.lo, dtype=np.float64)
        frame.log["lmpshear/cell"] = np.array([cell.lx, cell.ly, cell.lz, cell.xy], dtype=np.float64)
        frame.log["particles/lmpshear/unwrapped"] = np.ascontiguousarray(unwrapped, dtype=np.float64)
        frame.log["particles/lmpshear/nonaffine"] = np.ascontiguousarray(nonaffine, dtype=np.float64)
        if virial_xy is not None:  # None for trajectories imported from elsewhere
            frame.log["particles/lmpshear/virial_xy"] = np.ascontiguousarray(virial_xy, dtype=np.float64)
        if velocity is not None:
            frame.log["particles/lmpshear/velocity"] = np.ascontiguousarray(velocity, dtype=np.float64)
        self._file.append(frame)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class Trajectory:
    """Read access to a store. Per-particle arrays come as (frames, particles, dim) float64."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"no trajectory store at {self.path}")
        with self._readable():
            self._file = gsd.hoomd.open(self.path, "r")
            self._fl = gsd.fl.open(self.path, "r")  # chunk-level reads: one array without the whole frame
            if len(self._file) == 0:
                raise UserError(f"{self.path} holds no frame")
            first = self._file[0]
            self.dimension = int(first.configuration.dimensions)
            self.types = list(first.particles.types)
            self.typeid = np.asarray(first.particles.typeid, dtype=np.int64)

    @contextlib.contextmanager
    def _readable(self):
        """GSD's errors on a damaged or foreign file become a message that names the file and what to do."""
        try:
            yield
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            raise UserError(
                f"{self.path} cannot be read as a trajectory store ({exc}): it is damaged or not a GSD "
                "file. A run's store is checked and rolled back to its last intact checkpoint by "
                "`lmpshear run RUNDIR`; an imported one: import it again"
            ) from None

    def __len__(self) -> int:
        return len(self._file)

    def close(self) -> None:
        self._file.close()
        self._fl.close()
        if getattr(self, "_raw_file", None) is not None:
            self._raw_file.close()

    def _chunk(self, k: int, name: str, default=None) -> np.ndarray:
        """A chunk of frame k; the HOOMD schema omits values equal to frame 0's or to the default."""
        for frame in (k, 0):
            with self._readable():
                if self._fl.chunk_exists(frame, name):
                    return self._fl.read_chunk(frame, name)
        if default is not None:
            return np.asarray(default)
        raise UserError(f"{self.path}: frame {k} has no chunk '{name}'")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def n_particles(self) -> int:
        return len(self.typeid)

    def _scalars(self, key: str) -> np.ndarray:
        return np.array([float(self._chunk(k, f"log/{key}")[0]) for k in range(len(self))])

    @property
    def steps(self) -> np.ndarray:
        return np.array(
            [int(self._chunk(k, "configuration/step", default=[0])[0]) for k in range(len(self))], dtype=np.int64
        )

    @property
    def times(self) -> np.ndarray:
        return self._scalars("lmpshear/time")

    @property
    def strains(self) -> np.ndarray:
        return self._scalars("lmpshear/strain")

    def cell(self, k: int) -> Cell:
        lx, ly, lz, xy = (float(v) for v in self._chunk(k, "log/lmpshear/cell"))
        x, y, z = (float(v) for v in self._chunk(k, "log/lmpshear/origin"))
        return Cell((x, y, z), lx, ly, lz, xy, self.dimension)

    def particle_array(self, key: str, frames: slice | list[int] | None = None) -> np.ndarray:
        """``key`` in unwrapped, nonaffine, virial_xy, velocity; (frames, N, dim) or (frames, N)."""
        idx = (
            range(len(self))[frames]
            if isinstance(frames, slice)
            else (frames if frames is not None else range(len(self)))
        )
        out = np.empty((len(idx),) + self._particle_shape(key))
        for m, k in enumerate(idx):
            out[m] = self.particle_frame(key, k)
        return out

    def _particle_shape(self, key: str) -> tuple[int, ...]:
        if key not in PARTICLE_KEYS:
            raise ValueError(f"unknown per-particle array {key!r}; one of {PARTICLE_KEYS}")
        return (self.n_particles,) if key == "virial_xy" else (self.n_particles, self.dimension)

    def particle_frame(self, key: str, k: int, rows: slice = slice(None)) -> np.ndarray:
        """``key`` of frame k, (N, dim) or (N,); of the particles ``rows`` only, if given (a step of 1),
        read straight from the chunk's bytes (the store is uncompressed)."""
        shape = self._particle_shape(key)
        chunk = f"log/particles/lmpshear/{key}"
        if not self._fl.chunk_exists(k, chunk):
            raise UserError(f"{self.path}: frame {k} has no '{key}' (was it enabled for this run?)")
        if rows == slice(None):
            arr = np.asarray(self._fl.read_chunk(k, chunk), dtype=np.float64)
        else:
            i0, i1, step = rows.indices(self.n_particles)
            if step != 1:
                raise ValueError("rows: a slice with a step of 1")
            location, columns, kind = self._chunk_locations()[(k, chunk)]
            if kind != GSD_FLOAT64:
                raise UserError(f"{self.path}: '{key}' of frame {k} is not float64")
            fh = self._raw()
            fh.seek(location + i0 * columns * 8)
            arr = np.fromfile(fh, np.float64, count=max(i1 - i0, 0) * columns)
            arr = arr.reshape(-1, columns) if columns > 1 else arr
        return np.ascontiguousarray(arr[:, : shape[1]]) if len(shape) == 2 and arr.shape[1] != shape[1] else arr

    def _raw(self):
        """The store as bytes, opened once (a block of particles is read from every frame)."""
        if getattr(self, "_raw_file", None) is None:
            self._raw_file = open(self.path, "rb")
        return self._raw_file

    def _chunk_locations(self) -> dict:
        """(frame, chunk name) -> (byte offset, columns, GSD type), from the store's own index."""
        if getattr(self, "_locations", None) is None:
            from lmpshear.integrity import IndexCopy

            entries, names = IndexCopy.take(self.path).chunks()
            self._locations = {
                (int(e["frame"]), names[e["id"]]): (int(e["location"]), int(e["M"]), int(e["type"]))
                for e in entries
                if e["id"] < len(names) and names[e["id"]].startswith("log/particles/")
            }
        return self._locations

    def unwrapped(self, frames=None) -> np.ndarray:
        return self.particle_array("unwrapped", frames)

    def nonaffine(self, frames=None) -> np.ndarray:
        return self.particle_array("nonaffine", frames)

    def virial_xy(self, frames=None) -> np.ndarray:
        return self.particle_array("virial_xy", frames)


class FrameCache:
    """Frames read from a store, kept up to ``budget`` bytes; the least recently used go first. Kept
    frames are read-only, so that no kernel can change what another reads."""

    def __init__(self, budget: float):
        self.budget = float(budget)
        self._kept: OrderedDict = OrderedDict()
        self.bytes = 0
        self.peak = 0  # the most bytes ever kept
        self.reads = 0  # frames read from the store

    def get(self, key, read: Callable[[], np.ndarray]) -> np.ndarray:
        arr = self._kept.get(key)
        if arr is not None:
            self._kept.move_to_end(key)
            return arr
        arr = read()
        self.reads += 1
        arr.flags.writeable = False
        if arr.nbytes <= self.budget:
            self._kept[key] = arr
            self.bytes += arr.nbytes
            while self.bytes > self.budget:
                self.bytes -= self._kept.popitem(last=False)[1].nbytes
            self.peak = max(self.peak, self.bytes)
        return arr


class FrameArray:
    """A per-particle array of some frames of a store, (frames, N, dim) or (frames, N), indexed as that
    array but read on demand, so that memory does not grow with the frames:

    - ``a[k]``: frame k (through the window's :class:`FrameCache`);
    - ``a[:, i0:i1]``: particles i0..i1-1 over every frame, read straight from each frame's chunk;
    - ``a[frames, particles]``: points (two index arrays of one length), read frame by frame."""

    dtype = np.dtype(np.float64)

    def __init__(self, traj: Trajectory, key: str, frames: np.ndarray, cache: FrameCache):
        self.traj, self.key, self.frames, self.cache = traj, key, np.asarray(frames, dtype=np.int64), cache
        self.shape = (len(self.frames),) + traj._particle_shape(key)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            k = range(len(self))[index]
            return self.cache.get((self.key, k), lambda: self.traj.particle_frame(self.key, int(self.frames[k])))
        if isinstance(index, tuple) and len(index) == 2:
            frames, particles = index
            if isinstance(frames, slice) and frames == slice(None) and isinstance(particles, slice):
                rows = particles.indices(self.shape[1])
                out = np.empty((len(self), len(range(*rows))) + self.shape[2:])
                for m, k in enumerate(self.frames):
                    out[m] = self.traj.particle_frame(self.key, int(k), slice(*rows))
                return out
            if not isinstance(frames, slice) and not isinstance(particles, slice):
                frames, particles = np.broadcast_arrays(
                    np.asarray(frames, dtype=np.int64), np.asarray(particles, dtype=np.int64)
                )
                out = np.empty(frames.shape + self.shape[2:])
                order = np.argsort(frames, axis=None, kind="stable")
                flat_f, flat_p, flat_out = (
                    frames.ravel()[order],
                    particles.ravel()[order],
                    out.reshape((-1,) + self.shape[2:]),
                )
                bounds = np.flatnonzero(np.diff(flat_f)) + 1
                for run in np.split(np.arange(len(order)), bounds):
                    if len(run):
                        flat_out[order[run]] = self[int(flat_f[run[0]])][flat_p[run]]
                return out
        raise TypeError(
            f"a FrameArray is read by frame (a[k]), particle block (a[:, i0:i1]) or points "
            f"(a[frames, particles]), not {index!r}"
        )

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            f"the window's '{self.key}' is streamed: read it by frame or by particle block, not as one array"
        )


# ----------------------------------------------------------------------------------------------
# Thermo table


class ThermoWriter:
    """Appends rows to ``thermo.csv`` and flushes each one (the table survives a kill)."""

    def __init__(self, path: Path, append: bool = False, columns: tuple[str, ...] = THERMO_COLUMNS):
        self.path = Path(path)
        self.columns = columns
        new = not (append and self.path.exists())
        self._fh = open(self.path, "w" if new else "a", newline="")
        self._writer = csv.writer(self._fh)
        if new:
            self._writer.writerow(columns)
            self._fh.flush()

    def append(self, row: dict) -> None:
        self._writer.writerow([repr(int(row[c])) if c == "step" else repr(float(row[c])) for c in self.columns])
        self._fh.flush()

    def flush(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def read_thermo(path: Path):
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise UserError(f"no thermo table at {path}")
    return pd.read_csv(path)


def write_lammps_data(path: Path, traj: Trajectory, frame: int, masses: list[float]) -> None:
    """A LAMMPS data file (atom_style atomic) of one stored frame, positions wrapped into the cell."""
    r = np.zeros((traj.n_particles, 3))
    r[:, : traj.dimension] = traj.unwrapped([frame])[0]
    write_configuration(
        path, r, traj.typeid, len(traj.types), traj.cell(frame), masses, f"{traj.path.name} frame {frame}"
    )


def write_configuration(
    path: Path, positions: np.ndarray, typeid: np.ndarray, n_types: int, cell, masses, origin: str
) -> None:
    """A LAMMPS data file (atom_style atomic, no force field, no velocities) of positions (N, 3)
    wrapped into ``cell``; ids in the order given, types typeid + 1."""
    inside, _ = cell.wrap(positions)
    lo = [float(v) for v in cell.lo]
    zlo, zhi = (lo[2], lo[2] + cell.lz) if cell.dimension == 3 else (-0.5, 0.5)
    f = lambda v: repr(float(v))  # noqa: E731 - full double precision, plain Python float text
    lines = [
        f"LAMMPS data file written by lmpshear from {origin}",
        "",
        f"{len(positions)} atoms",
        f"{n_types} atom types",
        "",
        f"{f(lo[0])} {f(lo[0] + cell.lx)} xlo xhi",
        f"{f(lo[1])} {f(lo[1] + cell.ly)} ylo yhi",
        f"{f(zlo)} {f(zhi)} zlo zhi",
        f"{f(cell.xy)} 0.0 0.0 xy xz yz",
        "",
        "Masses",
        "",
    ]
    lines += [f"{k + 1} {f(m)}" for k, m in enumerate(masses)]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{i + 1} {t + 1} {f(x)} {f(y)} {f(z)}" for i, (t, (x, y, z)) in enumerate(zip(typeid, inside))]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def close_writers(*writers, quietly: bool = False) -> None:
    """Close the store and thermo writers that are open (None: not opened). ``quietly``: after a
    file-system error, where a full disk may refuse the last flush (the frames after the last
    checkpoint are dropped at resume anyway), OS errors are ignored."""
    for writer in writers:
        if writer is not None:
            try:
                writer.close()
            except OSError:
                if not quietly:
                    raise
