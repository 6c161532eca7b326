"""Loading and validating run specs (the schema: spec.py) from TOML.

A spec has three parts: ``engine``, ``[system]`` (the model liquid) and ``[protocol]`` (how it is
prepared, sheared and sampled). ``engine = "lammps"`` (molecular dynamics, potentials ``lj`` and
``ipl``) or ``engine = "bd"`` (lmpshear's Brownian dynamics, potential ``yukawa`` with an optional
potential-free hard core; rate 0 allowed; no thermostat or melt keys). A file may start with ``extends =
"PRESET"`` (a name from
``inputs/`` or a path relative to the file) and override any key; tables merge key by key, arrays
(species, rates) are replaced whole.

Loading checks everything at once and reports every problem in one :class:`UserError`: unknown
keys, missing fields, wrong types, non-positive rates, fractions that do not sum to 1, a sampling
interval that is not a whole number of timesteps, and so on.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from lmpshear import shipped
from lmpshear.cell import largest_cutoff
from lmpshear.errors import UserError
from lmpshear.spec import (
    _REL_TOL,
    ENGINE_STYLES,
    ENGINES,
    LAMMPS_ONLY,
    NAME_RE,
    POTENTIAL_STYLES,
    SYSTEM_NAME_RE,
    Analysis,
    Potential,
    Protocol,
    Rate,
    RunSpec,
    SigmaEpsilon,
    Species,
    System,
    YukawaPotential,
    _toml,
)

# ----------------------------------------------------------------------------------------------
# Loading and validation


class Checker:
    """Reads typed values out of nested tables, collecting every error with its key path; ``finish``
    raises one UserError listing them all. Used by run specs, campaign files, imports and analysis options."""

    def __init__(self, source: str, what: str = "run spec"):
        self.source, self.what = source, what
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def table(self, parent: dict, key: str, where: str) -> dict:
        value = parent.get(key)
        if value is None:
            self.error(f"{where}{key}", "missing table")
            return {}
        if not isinstance(value, dict):
            self.error(f"{where}{key}", "must be a table")
            return {}
        return value

    def get(
        self,
        tbl: dict,
        key: str,
        where: str,
        kind: str,
        *,
        required: bool = True,
        default: Any = None,
        positive: bool = False,
        nonnegative: bool = False,
        choices: tuple | None = None,
    ) -> Any:
        path = f"{where}{key}"
        if key not in tbl:
            if required:
                self.error(path, "missing")
            return default
        value = tbl[key]
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.error(path, f"must be a number, got {value!r}")
                return default
            value = float(value)
            if not math.isfinite(value):
                self.error(path, "must be finite")
                return default
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                self.error(path, f"must be an integer, got {value!r}")
                return default
        elif kind == "bool":
            if not isinstance(value, bool):
                self.error(path, f"must be true or false, got {value!r}")
                return default
        elif kind == "str":
            if not isinstance(value, str):
                self.error(path, f"must be a string, got {value!r}")
                return default
        if positive and value <= 0:
            self.error(path, f"must be > 0, got {value!r}")
            return default
        if nonnegative and value < 0:
            self.error(path, f"must be >= 0, got {value!r}")
            return default
        if choices is not None and value not in choices:
            self.error(path, f"must be one of {', '.join(map(str, choices))}; got {value!r}")
            return default
        return value

    def tables(self, parent: dict, key: str, where: str, example: str) -> list[dict]:
        """A non-empty array of tables, or [] after recording the error."""
        value = parent.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            self.error(f"{where}{key}", f"must be a non-empty array of tables ({example})")
            return []
        return value

    def no_extra(self, tbl: dict, allowed: set[str], where: str) -> None:
        import difflib

        for key in tbl:
            if key not in allowed:
                near = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                self.error(f"{where}{key}", "unknown key" + (f"; did you mean {near[0]!r}?" if near else ""))

    def one_of(self, tbl: dict, keys: tuple[str, str], where: str) -> None:
        present = [k for k in keys if k in tbl]
        if len(present) != 1:
            self.error(f"{where}{keys[0]}", f"give exactly one of {keys[0]} or {keys[1]}")

    def finish(self) -> None:
        if self.errors:
            lines = "\n  ".join(self.errors)
            raise UserError(f"invalid {self.what} {self.source}:\n  {lines}")


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (a TOML spec is UTF-8)") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, not a spec file") from None


# Keys that exclude each other: an override giving one drops the other inherited from the base.
_ALTERNATIVES = {
    "steady_strain": "steady_time",
    "steady_time": "steady_strain",
    "production_strain": "production_time",
    "production_time": "production_strain",
    "number_density": "volume_fraction",
    "volume_fraction": "number_density",
}


def merge(base: dict, over: dict) -> dict:
    """``over`` folded into ``base`` as an ``extends`` child is: tables key by key, arrays whole."""
    out = dict(base)
    for key in over:
        if key in _ALTERNATIVES and _ALTERNATIVES[key] not in over:
            out.pop(_ALTERNATIVES[key], None)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """Read a TOML file and fold in the chain of ``extends``."""
    path = path.resolve()
    if path in seen:
        raise UserError(f"{path}: 'extends' forms a cycle")
    data = _read_toml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise UserError(f"{path}: 'extends' must be a preset name or a path")
    candidate = path.parent / parent
    parent_path = candidate if candidate.suffix == ".toml" and candidate.is_file() else shipped.preset_path(parent)
    return merge(_resolve(parent_path, seen + (path,)), data)


def locate(config: str | Path) -> Path:
    """A config argument is a TOML path or the name of a shipped preset."""
    path = Path(config)
    if path.is_file():
        return path
    if path.suffix == ".toml":
        raise UserError(f"config file not found: {path}")
    if path.is_dir() and str(config) not in shipped.preset_names():
        raise UserError(f"{path} is a directory, not a spec file or a preset's name")
    return shipped.preset_path(str(config))  # a directory named like a preset does not hide it


def load(config: str | Path, overrides: dict | None = None, init_file_needed: bool = True) -> RunSpec:
    """Load and validate a run spec from a TOML path or a preset name; ``overrides`` (tables in the
    spec's schema, e.g. from a campaign file) are merged on top as an ``extends`` child would be.
    ``init_file_needed`` false: a started run's spec, whose protocol.init_file has done its work (it
    may have been moved or deleted since) and is only resolved, not read."""
    path = locate(config)
    data = _resolve(path)
    if overrides:
        data = merge(data, overrides)
    spec = load_dict(data, source=str(path) + (" (with the campaign's overrides)" if overrides else ""))
    if spec.protocol.init == "file":
        init = Path(str(spec.protocol.init_file))  # given: init = "file" requires it
        if not init.is_absolute():
            init = (path.parent / init).resolve()
        if init_file_needed:
            if not init.is_file():
                raise UserError(f"{path}: protocol.init_file not found: {init}")
            _check_data_file(init, spec, path)
        spec = replace(spec, protocol=replace(spec.protocol, init_file=str(init)))
    return spec


def _check_data_file(init: Path, spec: RunSpec, source: Path) -> None:
    """The header of a LAMMPS data file (protocol.init_file) against the spec: N atoms, atom types."""
    counts = {}
    try:
        with open(init, errors="replace") as fh:
            for _, text in zip(range(200), fh):
                words = text.split("#")[0].split()
                if len(words) == 2 and words[1] == "atoms" or len(words) == 3 and words[1:] == ["atom", "types"]:
                    counts[" ".join(words[1:])] = int(words[0]) if words[0].isdigit() else -1
    except OSError as exc:
        raise UserError(f"{source}: protocol.init_file {init} cannot be read: {exc}") from None
    if "atoms" not in counts or "atom types" not in counts:
        raise UserError(
            f"{source}: protocol.init_file {init} is not a LAMMPS data file (no 'N atoms' and "
            "'M atom types' in its header)"
        )
    s = spec.system
    if counts["atoms"] != s.n_particles or counts["atom types"] != len(s.species):
        raise UserError(
            f"{source}: protocol.init_file {init} holds {counts['atoms']} atoms of "
            f"{counts['atom types']} types; the spec has {s.n_particles} of {len(s.species)}"
        )


def load_dict(data: dict, source: str = "<dict>") -> RunSpec:
    c = Checker(source)
    c.no_extra(data, {"engine", "system", "protocol", "analysis"}, "")
    engine = c.get(data, "engine", "", "str", required=False, default="lammps", choices=ENGINES)
    system = _load_system(c, c.table(data, "system", ""))
    protocol = _load_protocol(c, c.table(data, "protocol", ""), engine)
    analysis = load_analysis(c, data.get("analysis", {}))
    style = system.potential.style if system is not None else None
    if engine in ENGINE_STYLES and style is not None and style not in ENGINE_STYLES[engine]:
        c.error("system.potential.style", f"engine '{engine}' runs {' or '.join(ENGINE_STYLES[engine])}, not '{style}'")
    c.finish()
    assert system is not None and protocol is not None  # else c.finish() raised
    spec = RunSpec(engine=engine, system=system, protocol=protocol, source=source, analysis=analysis)
    _check_consistency(c, spec)
    c.finish()
    return spec


def read_keys(c: Checker, t: dict, cls, w: str, *, others: tuple = ()) -> dict:
    """The keys of ``cls``'s schema (its fields declared with spec._param) from table ``t``: each one's type,
    bounds and default from its declaration; a key outside the schema and ``others`` (tables the caller
    reads) is refused."""
    schema = [f for f in dataclasses.fields(cls) if f.metadata]
    c.no_extra(t, {f.name for f in schema} | set(others), w)
    values = {}
    for f in schema:
        m = f.metadata
        default = None if f.default is dataclasses.MISSING else f.default
        v = c.get(
            t,
            f.name,
            w,
            m["kind"],
            required=m["required"],
            default=default,
            positive=m["positive"],
            nonnegative=m["nonnegative"],
            choices=m["choices"],
        )
        if v is not None and m["below"] is not None and v >= m["below"]:
            c.error(f"{w}{f.name}", f"must be below {m['below']}")
            v = default
        if v is not None and v != default and m["at_least"] is not None and v < m["at_least"]:
            c.error(f"{w}{f.name}", f"use at least {m['at_least']:g}")
            v = default
        values[f.name] = v
    return values


def _load_system(c: Checker, t: dict) -> System | None:
    w = "system."
    keys = read_keys(c, t, System, w, others=("species", "potential"))
    if keys["name"] is not None and not SYSTEM_NAME_RE.fullmatch(keys["name"]):
        c.error(f"{w}name", "use letters, digits, '_', '-', '.' (at most 64)")
    c.one_of(t, ("number_density", "volume_fraction"), w)

    species = []
    for k, s in enumerate(c.tables(t, "species", w, "[[system.species]]")):
        sw = f"{w}species[{k}]."
        one = Species(**read_keys(c, s, Species, sw))
        if one.name is not None and not NAME_RE.fullmatch(one.name):
            c.error(f"{sw}name", f"{one.name!r} is not a valid species name (a letter, then letters, digits or '_')")
        species.append(one)
    if species and all(s.fraction is not None for s in species):
        total = sum(s.fraction for s in species)
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            c.error(f"{w}species", f"fractions sum to {total:g}, not 1")
    names = [s.name for s in species]
    if len(set(names)) != len(names):
        c.error(f"{w}species", "species names must be distinct")

    potential = _load_potential(c, c.table(t, "potential", w), names)
    if c.errors or potential is None:
        return None
    system = System(**keys, species=tuple(species), potential=potential)
    for count, sp in zip(system.counts(), species):
        if count < 1:
            c.error(
                f"{w}species",
                f"fraction {sp.fraction:g} of species {sp.name} gives no particle at N={keys['n_particles']}",
            )
    return system


def _load_potential(c: Checker, t: dict, names: list[str]) -> Potential | None:
    w = "system.potential."
    style = c.get(t, "style", w, "str", choices=POTENTIAL_STYLES)
    if style is None:  # the error is recorded; the rest of the table depends on the style
        return None
    if style == "yukawa":
        return YukawaPotential(**read_keys(c, t, YukawaPotential, w, others=("style",)))
    keys = read_keys(c, t, SigmaEpsilon, w, others=("pairs",))
    if style == "lj" and "exponent" in t:
        c.error(f"{w}exponent", "only for style 'ipl'")
    pairs: dict[str, dict[str, float]] = {}
    raw_pairs = t.get("pairs", {})
    if not isinstance(raw_pairs, dict):
        c.error(f"{w}pairs", "must be a table of 'A-B' = {epsilon, sigma}")
        raw_pairs = {}
    known = set(names)
    covered = set()
    for key, value in raw_pairs.items():
        pw = f"{w}pairs.{key}."
        parts = key.split("-")
        if len(parts) != 2 or not set(parts) <= known:
            c.error(f"{w}pairs.{key}", f"must name two species as 'A-B' (species: {', '.join(names)})")
            continue
        if not isinstance(value, dict):
            c.error(f"{w}pairs.{key}", "must be a table {epsilon, sigma}")
            continue
        c.no_extra(value, {"epsilon", "sigma"}, pw)
        eps = c.get(value, "epsilon", pw, "float", nonnegative=True)
        sig = c.get(value, "sigma", pw, "float", positive=True)
        pair = frozenset(parts)
        if pair in covered:
            c.error(f"{w}pairs.{key}", "pair given twice")
        covered.add(pair)
        pairs[key] = {"epsilon": eps, "sigma": sig}
    if keys["mixing"] == "none":
        for i, a in enumerate(names):
            for b in names[i:]:
                if frozenset((a, b)) not in covered:
                    c.error(f"{w}pairs", f"mixing = 'none' but pair {a}-{b} is not given")
    return SigmaEpsilon(**keys, pairs=pairs)


def _load_protocol(c: Checker, t: dict, engine: str) -> Protocol | None:
    w = "protocol."
    keys = read_keys(c, t, Protocol, w, others=("rates",))
    if engine == "bd":
        for key in LAMMPS_ONLY:
            if key in t:
                c.error(f"{w}{key}", "only for engine 'lammps' (molecular dynamics); engine 'bd' does not use it")
        if t.get("init", "random") != "random":
            c.error(f"{w}init", "engine 'bd' starts from random insertion (init = 'random')")
    else:
        if "outer_skin" in t:
            c.error(f"{w}outer_skin", "only for engine 'bd' (Brownian dynamics); LAMMPS uses neighbor_skin alone")
        if "thermostat_damp" not in t:
            c.error(f"{w}thermostat_damp", "missing")
    if keys["init"] == "file" and "init_file" not in t:
        c.error(f"{w}init_file", "missing")
    if keys["init"] != "file" and "init_file" in t:
        c.error(f"{w}init_file", "only with init = 'file'")
    if keys["melt_time"] and keys["melt_temperature"] is None:
        c.error(f"{w}melt_temperature", "required when melt_time > 0")
    c.one_of(t, ("steady_strain", "steady_time"), w)
    c.one_of(t, ("production_strain", "production_time"), w)
    if keys["max_temperature_ratio"] is not None and keys["max_temperature_ratio"] <= 1:
        c.error(f"{w}max_temperature_ratio", "must be > 1")
    skin, outer_skin = keys["neighbor_skin"], keys["outer_skin"]
    if skin is not None and outer_skin is not None and outer_skin < skin:
        c.error(f"{w}outer_skin", f"{outer_skin:g} is below neighbor_skin {skin:g}")

    dt = keys["timestep"]
    rates = []
    for k, r in enumerate(c.tables(t, "rates", w, "[[protocol.rates]] rate = ..., sample_interval = ...")):
        rw = f"{w}rates[{k}]."
        one = read_keys(c, r, Rate, rw, others=("analysis",))
        rate, si, ti = one["rate"], one["sample_interval"], one["thermo_interval"]
        if rate is not None and (rate < 0 or rate == 0 and engine == "lammps"):
            c.error(f"{rw}rate", f"must be > 0{'' if engine == 'lammps' else ' (or 0: at rest)'}, got {rate!r}")
        elif rate == 0 and not ("steady_time" in t and "production_time" in t):
            c.error(f"{rw}rate", "rate 0 (no shear) needs steady_time and production_time, not strains")
        overrides = r.get("analysis", {})
        if isinstance(overrides, dict):  # checked like [analysis] and kept as checked; applied by select_rate
            checked = load_analysis(c, overrides, f"{rw}analysis.")
            overrides = {key: getattr(checked, key) for key in overrides if hasattr(checked, key)}
        else:
            c.error(f"{rw}analysis", "must be a table of [analysis] keys")
            overrides = {}
        rates.append(Rate(**one, analysis=tuple(sorted(overrides.items()))))
        if dt is not None:
            for key, value in (("sample_interval", si), ("thermo_interval", ti)):
                if value is not None and not _is_multiple(value, dt):
                    c.error(f"{rw}{key}", f"{value:g} is not a whole number of timesteps ({dt:g})")
            if si is not None and ti is not None and not _is_multiple(si, ti):
                c.error(f"{rw}thermo_interval", f"{ti:g} must divide sample_interval {si:g}")
    values = [r.rate for r in rates if r.rate is not None]
    if len(set(values)) != len(values):
        c.error(f"{w}rates", "a shear rate is listed twice")
    if c.errors:
        return None
    return Protocol(**keys, rates=tuple(rates))


def load_analysis(c: Checker, t: dict, w: str = "analysis.") -> Analysis:
    """The ``[analysis]`` table (or ``--set`` overrides) checked against the schema of :class:`Analysis`:
    each key's type, bounds and default come from its field's metadata."""
    if not isinstance(t, dict):
        c.error(w.rstrip("."), "must be a table")
        return Analysis()
    return Analysis(**read_keys(c, t, Analysis, w))


def analysis_block() -> str:
    """The ``[analysis]`` table with every key at its default and its help (the docs' stages page and the
    CLI's --set help); an optional key that is unset by default is shown commented out."""
    lines = ["[analysis]"]
    for f in dataclasses.fields(Analysis):
        text = "# " + f.name if f.default is None else f"{f.name} = {_toml(f.default)}"
        lines.append(f"{text:<29}# {f.metadata['help']}")
    return "\n".join(lines)


def key_table(cls) -> str:
    """A markdown table of the keys of ``cls``'s schema (key, type, default, meaning): the key tables of
    docs/concepts/run-spec.md, made at docs build (docs/hooks.py)."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        m = f.metadata
        if not m:
            continue
        default = "required" if m["required"] else "unset" if f.default is None else f"`{_toml(f.default)}`"
        kind = m["kind"] + (f": {', '.join(map(str, m['choices']))}" if m["choices"] else "")
        rows.append(f"| `{f.name}` | {kind} | {default} | {m['help'].replace('|', '/')} |")
    return "\n".join(rows)


def _is_multiple(value: float, unit: float) -> bool:
    n = round(value / unit)
    return n >= 1 and abs(n * unit - value) <= _REL_TOL * max(value, unit) * 10


#: cutoff-sized cells a run's box may hold (a neighbour-list bin each, in LAMMPS and in the BD engine)
MAX_NEIGHBOUR_BINS = 1e8


def _check_consistency(c: Checker, spec: RunSpec) -> None:
    s, p = spec.system, spec.protocol
    if spec.engine == "lammps" and any(sp.diffusion is not None for sp in s.species):
        c.error("system.species", "diffusion is for engine 'bd' (Brownian dynamics) only")
    sheared = any(r.rate > 0 for r in p.rates)
    half_width = largest_cutoff(s.box_length, sheared)
    skin_key, skin = ("outer_skin", p.outer_skin) if p.outer_skin is not None else ("neighbor_skin", p.neighbor_skin)
    if spec.engine == "bd" and s.potential.cutoff + skin >= half_width:
        c.error(
            "system.potential.cutoff",
            f"cutoff {s.potential.cutoff:g} + {skin_key} {skin:g} is not "
            f"below half the {'sheared ' if sheared else ''}cell width ({half_width:.4g}): use more particles, "
            "a shorter cutoff or a smaller skin",
        )
    longest = max((pair.cutoff for pair in s.pairs()), default=0.0)
    if spec.engine == "lammps" and longest >= half_width:
        c.error(
            "system.n_particles",
            f"{s.n_particles} particles make a cell of edge {s.box_length:.4g}, whose "
            f"{'sheared ' if sheared else ''}width is below twice the pair cutoff {longest:g}: a particle would "
            "meet its own images; use more particles",
        )
    bins = (s.box_length / max(longest, s.potential.cutoff, 1e-300)) ** s.dimension
    if bins > MAX_NEIGHBOUR_BINS and bins > 1e3 * s.n_particles:  # dilute: a liquid has ~0.05 per particle
        c.error(
            "system.number_density" if s.number_density is not None else "system.volume_fraction",
            f"gives a cell of edge {s.box_length:.4g}, {bins:.3g} pair-cutoff volumes for "
            f"{s.n_particles} particles: the neighbour lists would need more bins than memory holds "
            f"(at most {MAX_NEIGHBOUR_BINS:.0e}); a dilute gas is not what lmpshear runs",
        )
    for r in p.rates:
        if r.rate * r.sample_interval > 0.5:
            c.error(
                "protocol.rates",
                f"rate {r.rate:g} x sample_interval {r.sample_interval:g} = "
                f"{r.rate * r.sample_interval:g} strain per sample; keep it at most 0.5 so that particles can "
                "be followed through the sliding boundary",
            )
    for pair in s.pairs():
        if pair.cutoff <= pair.sigma * 0.5:
            c.error("system.potential.cutoff", f"cutoff {pair.cutoff:g} is shorter than half of sigma {pair.sigma:g}")
