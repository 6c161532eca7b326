"""Render ``templates/shear.lmp`` from a validated run spec.

Rendering accepts only typed values: numbers (written in shortest round-trip form), and tokens
that match a strict pattern. Multi-line blocks are assembled here from those same values. No text
taken from a config can reach LAMMPS's parser as a command (LAMMPS has ``shell``): a value that is
not a number or a plain token is refused.
"""

from __future__ import annotations

import re
import string

from lmpshear import __version__, shipped
from lmpshear.errors import UserError
from lmpshear.spec import RunSpec

TEMPLATE = "shear.lmp"
SECTION_RE = re.compile(r"^# ==== section: (\w+) ====[ \t]*$", re.M)
SECTIONS_FRESH = ("header", "create", "constraints", "pushoff", "interactions", "equilibrate", "shear")
SECTIONS_RESUME = ("constraints", "interactions", "shear")  # after header + read_restart
_TOKEN = re.compile(r"^[A-Za-z0-9_.+/\-]{1,64}$")
PUSHOFF_PREFACTOR = 50.0  # soft-potential height for removing overlaps of random insertion


class Block(str):
    """LAMMPS lines assembled by this module from already rendered values."""


def value(v) -> str:
    """Format one typed value for LAMMPS, or refuse it."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise UserError(f"refusing to render a non-finite number into a LAMMPS input: {v}")
        return repr(v)
    if isinstance(v, str) and _TOKEN.fullmatch(v):
        return v
    raise UserError(
        f"refusing to render {v!r} into a LAMMPS input: only numbers and plain tokens "
        "(letters, digits, '_', '.', '+', '-', '/') are allowed"
    )


def render(template: str, values: dict) -> str:
    safe = {k: (v if isinstance(v, Block) else value(v)) for k, v in values.items()}
    try:
        return string.Template(template).substitute(safe)
    except KeyError as exc:
        raise UserError(f"template placeholder ${exc.args[0]} has no value") from None


def line(*words) -> str:
    """One command: the first word padded as in the templates, then the values."""
    head, *rest = words
    return f"{head:<15} " + " ".join(value(w) for w in rest) if rest else str(head)


def split_sections(text: str) -> dict[str, str]:
    """Section name -> its commands, from the markers in a rendered input."""
    marks = list(SECTION_RE.finditer(text))
    return {
        m.group(1): text[m.end() : marks[k + 1].start() if k + 1 < len(marks) else len(text)]
        for k, m in enumerate(marks)
    }


# ----------------------------------------------------------------------------------------------


def _pair_block(spec: RunSpec, pair_style: str | None = None) -> list[str]:
    s = spec.system
    pot = s.sigma_epsilon
    pairs = s.pairs()
    rmax = max(p.cutoff for p in pairs)
    if pot.style == "lj":
        lines = [line("pair_style", "lj/cut", rmax)]
        lines += [line("pair_coeff", p.a + 1, p.b + 1, p.epsilon, p.sigma, p.cutoff) for p in pairs]
    else:  # inverse power law eps (sigma/r)^n through the lepton expression pair style
        lines = [line("pair_style", "lepton", rmax)]
        for p in pairs:
            expr = f'"{value(p.epsilon)}*({value(p.sigma)}/r)^{value(pot.exponent)}"'
            lines.append(f"{'pair_coeff':<15} {p.a + 1} {p.b + 1} {expr} {value(p.cutoff)}")
    lines.append(line("pair_modify", "shift", pot.shift))
    return lines


def _create_block(spec: RunSpec) -> list[str]:
    s, p = spec.system, spec.protocol
    if p.init == "file":
        return [
            "# initial configuration copied into the run directory by `lmpshear prepare`",
            line("read_data", "init.data"),
        ]
    L = s.box_length
    zlo, zhi = (0.0, L) if s.dimension == 3 else (-0.5, 0.5)
    out = [
        line("region", "lmps_box", "prism", 0.0, L, 0.0, L, zlo, zhi, 0.0, 0.0, 0.0),
        line("create_box", len(s.species), "lmps_box"),
    ]
    apart = insertion_distance(s)
    for k, (sp, n) in enumerate(zip(s.species, s.counts())):
        out.append(f"# type {k + 1} = species {value(sp.name)}")
        out.append(
            line("create_atoms", k + 1, "random", n, p.seed + 101 * (k + 1), "NULL", "overlap", apart, "maxtry", 1000)
        )
    return out


def insertion_distance(s) -> float:
    """The closest two particles may be inserted: 0.7 of the smallest pair diameter, or less where
    random sequential insertion at that distance would cover more than a fifth of space (it jams at
    0.547 in 2D and 0.38 in 3D, so every particle then finds room within a few tries). A pair
    inserted nearly on top of each other is one the soft push-off cannot part (its force vanishes
    at r = 0)."""
    room = (0.2 * s.volume / (s.n_particles * s.particle_volume(1.0))) ** (1 / s.dimension)
    return round(min(0.7 * min(p.sigma for p in s.pairs()), room), 3)


def _masses(spec: RunSpec) -> list[str]:
    return [line("mass", k + 1, sp.mass) for k, sp in enumerate(spec.system.species)]


def _pushoff_block(spec: RunSpec) -> list[str]:
    if spec.protocol.init == "file":
        return ["# none: the initial configuration is read from a file"]
    pairs = spec.system.pairs()
    reach = pushoff_reach(spec.system)
    out = [f"# remove the overlaps of random insertion with a bounded soft potential reaching {value(reach)} sigma_ij"]
    out.append(line("pair_style", "soft", round(reach * max(p.sigma for p in pairs), 6)))
    out += [line("pair_coeff", p.a + 1, p.b + 1, PUSHOFF_PREFACTOR, round(reach * p.sigma, 6)) for p in pairs]
    out.append(line("minimize", 0.0, 0.0, 5000, 50000))
    return out


#: packing fraction at which random disks (spheres) jam
JAMMING = {2: 0.84, 3: 0.64}


def pushoff_reach(s) -> float:
    """How far, in σ_ij, the push-off's soft repulsion reaches: 1, or less where disks (spheres) of
    the species' diameters would fill more than half the jamming fraction. A bounded repulsion above
    jamming has its minima with particles merged (a cluster phase), so the dense soft disks (σ-disks
    fill 0.93) ended their push-off with two particles at one point; below jamming it has
    overlap-free minima, which the minimiser finds."""
    filled = sum(n * s.particle_volume(sp.diameter) for n, sp in zip(s.counts(), s.species)) / s.volume
    return round(min(1.0, (0.5 * JAMMING[s.dimension] / filled) ** (1 / s.dimension)), 3)


def _equilibrate_block(spec: RunSpec) -> list[str]:
    s, p = spec.system, spec.protocol
    out = [line("minimize", 1.0e-6, 1.0e-8, 2000, 20000)] if p.minimize else []
    melt_steps = spec.steps(p.melt_time) if p.melt_time else 0
    equil_steps = spec.steps(p.equilibration_time) if p.equilibration_time else 0
    t_start = p.melt_temperature if melt_steps else s.temperature
    # loop all: the same velocities whatever the number of MPI ranks
    out.append(line("velocity", "all", "create", t_start, p.seed, "dist", "gaussian", "mom", "yes", "loop", "all"))
    if melt_steps:
        out.append(line("fix", "lmps_nvt", "all", "nvt", "temp", t_start, t_start, p.thermostat_damp))
        out.append(line("run", melt_steps))
        out.append(line("unfix", "lmps_nvt"))
    if equil_steps:
        out.append(line("fix", "lmps_nvt", "all", "nvt", "temp", s.temperature, s.temperature, p.thermostat_damp))
        out.append(line("run", equil_steps))
        out.append(line("unfix", "lmps_nvt"))
    return out


DUMP_NAME = "lmps_text"
DUMP_COLUMNS = {"image": ("x", "y", "z", "ix", "iy", "iz"), "unwrapped": ("xu", "yu", "zu")}


def _dump_block(spec: RunSpec) -> list[str]:
    mode = spec.protocol.lammps_dump
    if mode == "none":
        return ['# no LAMMPS dump (protocol.lammps_dump = "none")']
    return [
        "# a LAMMPS text dump of every sample, for other tools (protocol.lammps_dump)",
        line(
            "dump", DUMP_NAME, "all", "custom", spec.sample_steps, "traj.lammpstrj", "id", "type", *DUMP_COLUMNS[mode]
        ),
        f"{'dump_modify':<15} {DUMP_NAME} sort id format float %.17g",
    ]


def render_input(spec: RunSpec) -> str:
    """The complete in.lammps of a single-rate spec."""
    s, p = spec.system, spec.protocol
    constraints = [line("fix", "lmps_2d", "all", "enforce2d")] if s.dimension == 2 else ["# none in 3D"]
    values = {
        "version": __version__,
        "system_name": s.name,
        "rate": spec.rate.rate,
        "dimension": s.dimension,
        "create_block": Block("\n".join(_create_block(spec) + _masses(spec))),
        "constraints_block": Block("\n".join(constraints)),
        "pushoff_block": Block("\n".join(_pushoff_block(spec))),
        "pair_block": Block("\n".join(_pair_block(spec))),
        "skin": p.neighbor_skin,
        "timestep": p.timestep,
        "equilibrate_block": Block("\n".join(_equilibrate_block(spec))),
        "temperature": s.temperature,
        "tdamp": p.thermostat_damp,
        "sample_steps": spec.sample_steps,
        "thermo_steps": spec.thermo_steps,
        "shear_steps": spec.shear_steps,
        "dump_block": Block("\n".join(_dump_block(spec))),
    }
    return render(shipped.template_text(TEMPLATE), values)
