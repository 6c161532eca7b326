"""``lmpshear prepare``: turn a run spec into a run directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import tomli_w

from lmpshear import config, manifest
from lmpshear.engines.lammps_input import render_input
from lmpshear.errors import UserError
from lmpshear.rundir import RunDir, atomic_write_json, atomic_write_text
from lmpshear.spec import RunSpec

#: what prepare writes (and run adds before its data): a directory holding only these may be re-prepared
OWN_FILES = {"config.toml", "in.lammps", "manifest.json", "init.data", "status.json", ".lock", ".status-reserve"}


#: bytes per particle per frame in traj.gsd: float32 position, int32 image, float64 path, r̃ and virial
STORE_BYTES_PER_PARTICLE = 3 * 4 + 3 * 4 + 2 * 3 * 8 + 8
#: measured on this project's 2-core machine: particle-steps per second. LAMMPS (one rank): the KA runs
#: of analysis/results/ka3d-N16500 (N = 16500, shear 1.1e9 particle-steps in 2902 s) and the demo
#: (N = 2000, 0.34e6 alone); BD: docs/validation.md
NOMINAL_SPEED = {"lammps": 3.5e5, "bd": 5e5}
#: runs past these are refused: they cannot finish (about 50 years at the nominal speed) or fit
MAX_PARTICLE_STEPS = 1e15
MAX_PARTICLES = 10**8
#: ... and past these a warning says what the run will take
WARN_HOURS, WARN_STORE_BYTES = 24.0, 20e9


def estimate(spec: RunSpec) -> dict:
    """What a run will need: steps, frames, particle-steps, the store's size and hours at the nominal speed."""
    n = spec.system.n_particles
    p = spec.protocol
    steps = spec.steps(p.equilibration_time) + (spec.steps(p.melt_time) if p.melt_time else 0) + spec.shear_steps
    frames = spec.n_samples + 1
    per_particle = STORE_BYTES_PER_PARTICLE + (24 if spec.protocol.store_velocities else 0)
    return {
        "particles": n,
        "steps": steps,
        "frames": frames,
        "particle_steps": float(n) * steps,
        "store_bytes": float(frames) * n * per_particle,
        "hours": float(n) * steps / NOMINAL_SPEED[spec.engine] / 3600,
    }


def check_feasible(spec: RunSpec, out: Path, warn=None) -> dict:
    """Refuse a run that cannot work (too many particles or particle-steps, a store larger than the
    free disk), with the numbers; warn above thresholds a user can raise knowingly."""
    e = estimate(spec)
    source = spec.source
    if spec.system.n_particles > MAX_PARTICLES:
        raise UserError(
            f"{source}: {spec.system.n_particles:.3g} particles is beyond what one run can hold "
            f"(at most {MAX_PARTICLES:.0e})"
        )
    if e["particle_steps"] > MAX_PARTICLE_STEPS:
        raise UserError(
            f"{source}: {e['steps']:.3g} steps x {e['particles']:.3g} particles = {e['particle_steps']:.3g} "
            f"particle-steps, about {e['hours'] / 24 / 365:.3g} years at {NOMINAL_SPEED[spec.engine]:.0e} "
            "particle-steps/s: check timestep, strains and times"
        )
    parent = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    free = shutil.disk_usage(parent).free
    if e["store_bytes"] > free:
        raise UserError(
            f"{source}: {e['frames']:.3g} frames of {e['particles']:.3g} particles need about "
            f"{e['store_bytes'] / 1e9:.3g} GB for traj.gsd, more than the {free / 1e9:.3g} GB free at "
            f"{parent}: sample less often (sample_interval) or run a shorter production"
        )
    if warn is not None and (e["hours"] > WARN_HOURS or e["store_bytes"] > WARN_STORE_BYTES):
        warn(
            f"warning: this run needs about {e['hours']:.3g} hours at {NOMINAL_SPEED[spec.engine]:.0e} "
            "particle-steps/s "
            f"(2 cores) and {e['store_bytes'] / 1e9:.3g} GB for traj.gsd"
        )
    return e


def prepare(
    config_arg: str | Path,
    out: str | Path,
    rate: float | None = None,
    command: list[str] | None = None,
    force: bool = False,
    warn=None,
    overrides: dict | None = None,
) -> RunDir:
    """Validate, select one shear rate, and write config.toml, manifest.json and (engine lammps) in.lammps.

    Refuses a directory that a run is using (its lock is held), that holds run data, that holds a
    prepared run (unless ``force``: replace the spec of a run that has not started), or that holds
    files which are not lmpshear's. ``overrides`` are spec tables merged over the spec (campaigns)."""
    if not str(out).strip():
        raise UserError("-o/--out is empty: name the run directory to create")
    spec = config.load(config_arg, overrides).select_rate(rate)
    rd = RunDir(out)
    if rd.path.exists() and not rd.path.is_dir():
        raise UserError(f"{rd.path} exists and is not a directory")
    if rd.path.is_dir():
        holder = rd.running_by()
        if holder:
            raise UserError(f"{rd.path} is being run now ({holder}); prepare into another directory")
        if rd.has_run_data():
            raise UserError(
                f"{rd.path} already holds a run (trajectory, thermo or checkpoints); "
                "prepare into a new directory so that no data is overwritten"
            )
        foreign = sorted(p.name for p in rd.path.iterdir() if p.name not in OWN_FILES)
        if foreign:
            raise UserError(
                f"{rd.path} is not empty ({', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}): "
                "prepare into a new or empty directory"
            )
        if rd.config.exists() and not force:
            raise UserError(
                f"{rd.path} already holds a prepared run ({rd.config.name}); prepare into a new directory, "
                "or give --force to replace its spec (it has not started: nothing is lost)"
            )
    # Everything that can fail is computed before anything is written.
    check_feasible(spec, rd.path, warn)
    text = render_input(spec) if spec.engine == "lammps" else None
    resolved = spec.to_dict()
    config.load_dict(resolved, source=f"the resolved spec of {spec.source}")  # what run will read back
    if spec.protocol.init == "file":
        resolved["protocol"]["init_file"] = "init.data"
    header = (
        f"# Resolved run spec written by lmpshear prepare from {spec.source}\n"
        f"# (single shear rate; 'extends' folded in). Edit the source and prepare again rather than this file.\n"
    )
    rd.path.mkdir(parents=True, exist_ok=True)
    if force and rd.status_file.exists():
        rd.status_file.unlink()  # a stale "running" (killed before any data) would describe the old spec
    files = []
    if spec.protocol.init == "file":
        _copy_configuration(Path(str(spec.protocol.init_file)), rd.init_data)
        files.append(rd.init_data)
    atomic_write_text(rd.config, header + tomli_w.dumps(resolved))
    files.append(rd.config)
    if text is not None:
        atomic_write_text(rd.input, text)
        files.append(rd.input)
    seeds: dict[str, int | list[int]] = {"protocol": spec.protocol.seed}
    if spec.engine == "lammps":
        seeds["create_atoms"] = [spec.protocol.seed + 101 * (k + 1) for k in range(len(spec.system.species))]
    atomic_write_json(rd.manifest, manifest.build(files, seeds, command))
    return rd


FORCE_FIELD_SECTIONS = {"Pair Coeffs", "PairIJ Coeffs"}


def _copy_configuration(source: Path, target: Path) -> None:
    """A LAMMPS data file without its force-field sections: the spec defines the interactions (and a
    Pair Coeffs section before pair_style is an error in LAMMPS), so files written by `write_data`
    in another LAMMPS run can start a run as they are."""
    out, state = [], None  # None: copying; "title": after a skipped title; "rows": in its rows
    for text in source.read_text().splitlines():
        keyword = text.split("#")[0].strip()
        if keyword in FORCE_FIELD_SECTIONS:
            state = "title"
        elif state == "title" and keyword:
            state = "rows"
        elif state == "rows" and not keyword:
            state = None  # the blank line that ends the section goes with it
        elif state is None:
            out.append(text)
    atomic_write_text(target, "\n".join(out) + "\n")
