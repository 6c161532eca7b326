"""Trajectories made elsewhere, read through ovito, behind the same interface as the native store.

ovito reads LAMMPS text dumps (gzipped too), LAMMPS data files, GSD and extended XYZ. Whatever a
file holds (wrapped positions, positions plus image flags, or unwrapped positions), the unwrapped
path and the non-affine displacement r̃ are rebuilt with :class:`lmpshear.unwrap.LeesEdwardsUnwrapper`,
the runner's own code, from the shear rate and the time between frames. Its streaming profile is
u_x = γ̇ (y − y_lo), zero at the bottom of the cell, as with LAMMPS's ``fix deform ... remap v``.
Every frame is first moved so that its cell corner stays where it was in the first frame: LAMMPS
keeps the corner fixed anyway, while GSD (HOOMD) centres the box, so its corner moves with the
tilt and jumps by L_x/2 at a flip; in the corner's frame the lattice is continuous through flips
and the flow is zero at the bottom.

Frame times: the file's timestep counter × ``timestep`` when given (LAMMPS dumps, GSD), else
frame index × ``sample_interval``. Repeated timesteps (a resumed LAMMPS run appends frames again)
keep the later copy. Particles are matched across frames by their identifier when there is one.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from lmpshear.cell import Cell, rate_from_tilts, tilt_strains
from lmpshear.errors import UserError
from lmpshear.unwrap import LeesEdwardsUnwrapper

if TYPE_CHECKING:
    from lmpshear.rundir import RunDir


@dataclass
class MemoryTrajectory:
    """The :class:`lmpshear.store.Trajectory` interface over arrays held in memory."""

    path: Path
    dimension: int
    types: list[str]
    typeid: np.ndarray
    steps: np.ndarray
    times: np.ndarray
    strains: np.ndarray
    cells: list[Cell]
    _unwrapped: np.ndarray  # (frames, N, 3)
    _nonaffine: np.ndarray

    def __len__(self) -> int:
        return len(self.times)

    @property
    def rate(self) -> float:
        """The shear rate the trajectory was unwrapped with."""
        return float(self.strains[-1] / self.times[-1]) if len(self.times) > 1 and self.times[-1] > 0 else 0.0

    @property
    def n_particles(self) -> int:
        return len(self.typeid)

    def cell(self, k: int) -> Cell:
        return self.cells[k]

    def _select(self, arr: np.ndarray, frames) -> np.ndarray:
        picked = arr if frames is None else arr[frames]
        return picked[..., : self.dimension]

    def unwrapped(self, frames=None) -> np.ndarray:
        return self._select(self._unwrapped, frames)

    def nonaffine(self, frames=None) -> np.ndarray:
        return self._select(self._nonaffine, frames)

    def virial_xy(self, frames=None) -> np.ndarray:
        raise UserError(f"{self.path} has no per-particle stress (only lmpshear's own runs store it)")

    def close(self) -> None: ...


@contextlib.contextmanager
def _stderr_captured():
    """Collect what C++ code writes to file descriptor 2 (ovito reports a truncated file there)."""
    captured: list[str] = []
    with tempfile.TemporaryFile(mode="w+") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.append(tmp.read())


def _cell_of(data, dimension: int, source: str, frame: int) -> Cell:
    cell = data.cell
    if cell is None:
        raise UserError(f"{source}: frame {frame} has no simulation box; a periodic cell is needed to unwrap")
    m = np.asarray(cell[...], dtype=np.float64)
    a, b, c, origin = m[:, 0], m[:, 1], m[:, 2], m[:, 3]
    lx, ly = a[0], b[1]
    lz = c[2] if dimension == 3 else 1.0
    if lx <= 0 or ly <= 0 or (dimension == 3 and lz <= 0):
        raise UserError(f"{source}: frame {frame} has no (or a degenerate) simulation box")
    if abs(a[1]) + abs(a[2]) + abs(b[2]) + abs(c[0]) + abs(c[1]) > 1e-9 * lx:
        raise UserError(
            f"{source}: frame {frame}: only cells tilted in xy (simple shear along x, gradient y) are supported"
        )
    return Cell(tuple(origin), lx, ly, lz, b[0], dimension)


#: how far a given shear rate may differ from the one the box tilt implies (relative)
RATE_TOLERANCE = 0.01
#: a tilt whose strain strays from steady growth by more than this share of its largest value reverses
REVERSAL_TOLERANCE = 0.05


def read_trajectory(
    path: str | Path,
    rate: float | None,
    *,
    timestep: float | None = None,
    sample_interval: float | None = None,
    dimension: int | None = None,
    force_rate: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> MemoryTrajectory:
    """Read a trajectory through ovito and rebuild unwrapped positions and r̃ (Lees–Edwards aware). The
    rate is the one the box tilt implies (``rate`` None); a given one that differs by more than 1% is
    refused unless ``force_rate``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    if rate is not None and rate < 0:
        raise UserError("the shear rate must be >= 0")
    if (timestep is None) == (sample_interval is None):
        raise UserError(
            "give exactly one of timestep (the file's step counter x dt gives the time) or "
            "sample_interval (the time between frames)"
        )
    from ovito.io import import_file

    source = str(path)
    try:
        with _stderr_captured() as messages:
            pipeline = import_file(source)
            n_frames = pipeline.source.num_frames  # type: ignore[union-attr]  # import_file gives a source
    except Exception as exc:  # ovito raises RuntimeError with its parser's message
        raise UserError(f"{source}: ovito cannot read it: {exc}") from None
    # ovito drops a truncated last frame with only a warning: that is an error here
    for message in messages[0].splitlines():
        if "aborted prematurely" in message or "error" in message.lower():
            raise UserError(
                f"{source}: the file cannot be read to its end (truncated or corrupt file?): {message.strip()}"
            )
    frames: dict[int, tuple] = {}  # step -> (positions, cell); later copies replace earlier ones
    order: list[int] = []
    types, n_particles, typeid, dim, origin = None, None, None, dimension, None  # set by the first frame
    for k in range(n_frames):
        try:
            data = pipeline.compute(k)
        except Exception as exc:
            raise UserError(f"{source}: frame {k} cannot be read (truncated or corrupt file?): {exc}") from None
        particles = data.particles
        if particles is None or particles.count == 0:
            raise UserError(f"{source}: frame {k} holds no particles")
        if n_particles is None:
            n_particles = particles.count
        elif particles.count != n_particles:
            raise UserError(
                f"{source}: frame {k} has {particles.count} particles, frame 0 has {n_particles}; "
                "the particle count must not change"
            )
        ids = np.asarray(particles["Particle Identifier"]) if "Particle Identifier" in particles else None
        sort = np.argsort(ids, kind="stable") if ids is not None else np.arange(particles.count)
        if ids is not None and k == 0:
            first_ids = ids[sort]
        elif ids is not None and not np.array_equal(ids[sort], first_ids):
            raise UserError(f"{source}: frame {k} holds other particle identifiers than frame 0")
        if k == 0:
            pos0 = np.asarray(particles.positions)
            flat = (data.cell is not None and data.cell.is2D) or np.ptp(pos0[:, 2]) == 0.0
            if dim == 2 and not flat:
                raise UserError(
                    f"{source}: --dimension 2, but the particles' z spans {np.ptp(pos0[:, 2]):.4g}: "
                    "this is a 3D trajectory (dropping z would change it)"
                )
            if dim == 3 and flat:
                raise UserError(
                    f"{source}: --dimension 3, but every particle lies in one plane (z spans 0"
                    f"{', and the cell is 2D' if data.cell is not None and data.cell.is2D else ''}): "
                    "this is a 2D trajectory; import it with --dimension 2 (or leave --dimension out)"
                )
            dim = dim or (2 if flat else 3)
        cell = _cell_of(data, cast(int, dim), source, k)  # set at frame 0, above
        r = np.array(particles.positions, dtype=np.float64)[sort]
        if "Periodic Image" in particles:
            r += np.asarray(particles["Periodic Image"], dtype=np.float64)[sort] @ cell.matrix()
        if origin is None:
            origin = np.array(cell.lo)
        r -= np.array(cell.lo) - origin  # the corner's frame (see the module docstring)
        cell = Cell(tuple(origin), cell.lx, cell.ly, cell.lz, cell.xy, cell.dimension)
        if dim == 2:
            r[:, 2] = 0.0
        if types is None:
            ptypes = particles.particle_types
            typeid_raw = np.asarray(ptypes)[sort]
            names = {t.id: (t.name or str(t.id)) for t in ptypes.types}
            ids_present = sorted(set(typeid_raw.tolist()))
            types = [names.get(t, str(t)) for t in ids_present]
            typeid = np.searchsorted(ids_present, typeid_raw)
        step = int(data.attributes.get("Timestep", k)) if timestep is not None else k
        if step not in frames:
            order.append(step)
        frames[step] = (r, cell)
        if progress:
            progress(k + 1, n_frames)
    steps = np.array(sorted(order), dtype=np.int64)
    if (
        np.any(np.diff(steps) <= 0)
        or len(steps) < 1
        or dim is None
        or types is None
        or typeid is None
        or n_particles is None
    ):
        raise UserError(f"{source}: no frames")
    times = (steps - steps[0]) * timestep if timestep is not None else (steps - steps[0]) * sample_interval
    tilted = rate_from_tilts([frames[int(k)][1] for k in steps], times)
    if len(steps) > 1 and not force_rate:
        strain = tilt_strains([frames[int(k)][1] for k in steps])
        off = np.abs(strain - tilted * times).max()
        if off > REVERSAL_TOLERANCE * np.abs(strain).max():
            raise UserError(
                f"{source}: the box tilt does not grow steadily (its strain strays {off:.4g} from "
                f"a steady {tilted:.4g} per unit time, and reaches {np.abs(strain).max():.4g}): "
                "oscillatory or reversing shear is not supported; lmpshear analyses steady shear"
            )
    if rate is None:
        rate = tilted if len(steps) > 1 else 0.0
    elif not force_rate and abs(rate - abs(tilted)) > RATE_TOLERANCE * max(rate, abs(tilted)):
        raise UserError(
            f"{source}: --rate {rate:g}, but the box tilt grows at {tilted:.6g} per unit time "
            f"({len(steps)} frames): leave --rate out to use the tilt's rate, or pass --force-rate "
            "if the box does not carry the shear"
        )
    else:
        rate = math.copysign(rate, tilted)  # the sign of the shear is the tilt's (--rate gives its size)
    first_r, first_cell = frames[int(steps[0])]
    # the path starts at the image inside the cell, as in lmpshear's own runs (under shear, images
    # stream at different speeds, so the starting image matters for the lab-frame path, not for r̃)
    unwrapper = LeesEdwardsUnwrapper(rate, first_cell.lo[1], first_cell.wrap(first_r)[0])
    unwrapped = np.empty((len(steps), n_particles, 3))
    nonaffine = np.empty_like(unwrapped)
    cells = []
    for k, step in enumerate(steps):
        r, cell = frames[int(step)]
        if k:
            try:
                unwrapper.advance(r, cell, float(times[k] - times[k - 1]))
            except Exception as exc:
                raise UserError(f"{source}: cannot follow particles to frame {k} (step {step}): {exc}") from None
        unwrapped[k], nonaffine[k] = unwrapper.unwrapped, unwrapper.nonaffine
        cells.append(cell)
    return MemoryTrajectory(
        path, dim, types, typeid, steps - steps[0], times, rate * times, cells, unwrapped, nonaffine
    )


def import_run(
    path: str | Path,
    out: str | Path,
    rate: float | None,
    temperature: float,
    *,
    timestep: float | None = None,
    sample_interval: float | None = None,
    dimension: int | None = None,
    steady_strain: float = 0.0,
    analysis: dict | None = None,
    force_rate: bool = False,
    echo: Callable[[str], None] = print,
) -> RunDir:
    """Make a run directory from a trajectory made elsewhere: RUNDIR/{traj.gsd, source.json, status.json}.

    ``lmpshear analyze`` then works on it as on a native run (stages that need the thermo table or
    per-particle stresses are not available)."""
    from lmpshear import config, integrity
    from lmpshear.rundir import RunDir, atomic_write_json
    from lmpshear.store import StoreWriter

    if not (math.isfinite(temperature) and temperature > 0):
        raise UserError(f"--temperature {temperature:g}: must be a positive number (χ4 needs β = 1/k_BT)")
    if rate is not None and not (math.isfinite(rate) and rate >= 0):
        raise UserError(f"--rate {rate:g}: must be a number >= 0")
    for name, value in (("--timestep", timestep), ("--sample-interval", sample_interval)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UserError(f"{name} {value:g}: must be a positive number")
    if not str(out).strip():
        raise UserError("-o/--out is empty: name the run directory to create")
    c = config.Checker("analysis options")
    config.load_analysis(c, analysis or {})
    c.finish()
    rd = RunDir(out)
    if rd.path.exists() and any(rd.path.iterdir()):
        raise UserError(f"{rd.path} exists and is not empty; choose a new directory for the import")
    traj = read_trajectory(
        path, rate, timestep=timestep, sample_interval=sample_interval, dimension=dimension, force_rate=force_rate
    )
    rate = traj.rate
    steady_time = steady_strain / abs(rate) if rate else 0.0
    if steady_time > traj.times[-1]:
        raise UserError(
            f"the steady window would start at t = {steady_time:g}, after the last frame (t = {traj.times[-1]:g})"
        )
    rd.path.mkdir(parents=True, exist_ok=True)
    writer = StoreWriter(rd.store, traj.types, traj.typeid, traj.dimension)
    for k in range(len(traj)):
        writer.append(
            int(traj.steps[k]),
            float(traj.times[k]),
            float(traj.strains[k]),
            traj.cells[k],
            traj._unwrapped[k],
            traj._nonaffine[k],
            None,
        )
    writer.close()
    atomic_write_json(
        rd.source,
        {
            "file": str(Path(path).resolve()),
            "rate": rate,
            "temperature": temperature,
            "timestep": timestep,
            "sample_interval": sample_interval,
            "steady_strain": steady_strain,
            "steady_time": steady_time,
            "analysis": analysis or {},
            "name": Path(path).name,
            "frames": len(traj),
            "particles": traj.n_particles,
            "dimension": traj.dimension,
        },
    )
    integrity.seal_completed(rd, [], len(traj))
    rd.set_status(state="complete", frames=len(traj), imported=True)
    echo(
        f"imported {path}: {len(traj)} frames, {traj.n_particles} particles, {traj.dimension}D, "
        f"t = 0..{traj.times[-1]:g} -> {rd.path}"
    )
    return rd
