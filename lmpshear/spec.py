"""The run spec's schema: typed, frozen dataclasses for the model liquid (``System``, ``Species``,
``Potential``), the protocol (``Protocol``, ``Rate``), the analysis parameters (``Analysis``) and
the whole spec (``RunSpec``), with every default and the quantities derived from them (volume,
box length, pair cutoffs, step counts, strains). Loading and validation from TOML: config.py.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, dataclass, field, replace
from typing import Any, ClassVar

from lmpshear.errors import UserError

POTENTIAL_STYLES = ("lj", "ipl", "yukawa")
CUTOFF_MODES = ("per_pair", "global")
INIT_MODES = ("random", "file")
DUMP_MODES = ("none", "image", "unwrapped")
ENGINES = ("lammps", "bd")
ENGINE_STYLES = {"lammps": ("lj", "ipl"), "bd": ("yukawa",)}
# protocol keys that only molecular dynamics (LAMMPS) uses
LAMMPS_ONLY = (
    "thermostat_damp",
    "melt_temperature",
    "melt_time",
    "minimize",
    "lammps_dump",
    "store_velocities",
    "max_temperature_ratio",
    "init_file",
    "snapshot_every",
)
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")
SYSTEM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REL_TOL = 1e-9
#: engine bd: the default outer_skin − neighbor_skin
OUTER_MARGIN = 0.5


def _given(value):
    """A value of one of two alternative keys, the other being unset (config checks that one is given)."""
    if value is None:
        raise UserError("internal: neither of two alternative spec keys is set")
    return value


def _toml(value) -> str:
    """A value as TOML writes it (true, 0.25, "blocks")."""
    return ("true" if value else "false") if isinstance(value, bool) else repr(value).replace("'", '"')


def _param(
    default,
    kind: str,
    help: str,
    *,
    required: bool = False,
    positive: bool = False,
    nonnegative: bool = False,
    choices: tuple | None = None,
    below: float | None = None,
    at_least: float | None = None,
    by_dimension: tuple | None = None,
    unset: str = "{}",
):
    """One key of the spec: its default, type ("float", "int", "bool", "str"), bounds and help, in one
    place; config validates from it, and the CLI's --set help and the docs' key tables (docs/hooks.py) are
    made from it. ``required``: the TOML must give it. A default of None means the key is optional
    (unset: a rule the help states). ``by_dimension`` (2D, 3D): what a key left at its default means in each
    dimension, the one home of those numbers; ``unset`` words each for the help."""
    if by_dimension is not None:
        words = [unset.format(_toml(v)) for v in by_dimension]
        help = f"{help}; {'unset' if default is None else _toml(default)}: {words[0]} in 2D, {words[1]} in 3D"
    return field(
        default=MISSING if required else default,  # a required key has no default: its field none either
        metadata={
            "kind": kind,
            "help": help,
            "required": required,
            "positive": positive,
            "nonnegative": nonnegative,
            "choices": choices,
            "below": below,
            "at_least": at_least,
            "by_dimension": by_dimension,
        },
    )


# ----------------------------------------------------------------------------------------------
# Spec dataclasses


@dataclass(frozen=True, kw_only=True)
class Species:
    name: str = _param(
        None,
        "str",
        "a letter, then letters, digits or _ (at most 16); LAMMPS types 1, 2, ... in this order",
        required=True,
    )
    fraction: float = _param(
        None, "float", "number fraction (they sum to 1; counts by largest remainder)", required=True, positive=True
    )
    mass: float = _param(1.0, "float", "mass", positive=True)
    diameter: float = _param(
        None, "float", "diameter (mixing, particle volumes, BD contact)", required=True, positive=True
    )
    diffusion: float | None = _param(
        None, "float", "engine bd: dilute self-diffusion (D_0); unset: Stokes-Einstein d_max/d", positive=True
    )


@dataclass(frozen=True)
class Pair:
    """Interaction between species ``a`` and ``b`` (indices into ``System.species``)."""

    a: int
    b: int
    epsilon: float
    sigma: float
    cutoff: float  # absolute, in length units


@dataclass(frozen=True, kw_only=True)
class SigmaEpsilon:
    """Pair potentials set by a σ and an ε per species pair (MD): "lj" 4ε[(σ/r)^12 − (σ/r)^6], "ipl"
    ε(σ/r)^n; pairs not listed are mixed."""

    style: str = _param(
        None, "str", "lj: 4 eps[(sigma/r)^12 - (sigma/r)^6]; ipl: eps (sigma/r)^n", required=True, choices=("lj", "ipl")
    )
    cutoff: float = _param(None, "float", "pair cutoff (see cutoff_mode)", required=True, positive=True)
    cutoff_mode: str = _param(
        "per_pair", "str", "per_pair: r_c = cutoff sigma_ab; global: r_c = cutoff", choices=CUTOFF_MODES
    )
    shift: bool = _param(True, "bool", "energy shifted to zero at r_c")
    exponent: int = _param(12, "int", "ipl only: n", positive=True)
    mixing: str = _param(
        "additive",
        "str",
        "unlisted pairs: additive (sigma_ab = (d_a + d_b)/2, eps_ab = epsilon) or none (list every pair)",
        choices=("additive", "none"),
    )
    epsilon: float = _param(1.0, "float", "eps of the pairs filled by mixing", nonnegative=True)
    pairs: dict[str, dict[str, float]] = field(default_factory=dict)  # explicit "A-B" -> {epsilon, sigma}

    def pair(self, a: Species, b: Species) -> tuple[float, float, float]:
        """(ε, σ, absolute cutoff) between species a and b."""
        explicit = self.pairs.get(f"{a.name}-{b.name}") or self.pairs.get(f"{b.name}-{a.name}")
        if explicit is not None:
            eps, sig = explicit["epsilon"], explicit["sigma"]
        else:
            eps, sig = self.epsilon, 0.5 * (a.diameter + b.diameter)
        return eps, sig, self.cutoff * sig if self.cutoff_mode == "per_pair" else self.cutoff

    def as_table(self) -> dict[str, Any]:
        table = {
            "style": self.style,
            "cutoff": self.cutoff,
            "cutoff_mode": self.cutoff_mode,
            "shift": self.shift,
            "mixing": self.mixing,
            "epsilon": self.epsilon,
        }
        if self.style == "ipl":
            table["exponent"] = self.exponent
        if self.pairs:
            table["pairs"] = {k: dict(v) for k, v in self.pairs.items()}
        return table


@dataclass(frozen=True, kw_only=True)
class YukawaPotential:
    """Hard-sphere Yukawa (BD): K e^{−z(r − d_ab)}/(r/d_ab) beyond the contact d_ab = (d_a + d_b)/2,
    truncated (not shifted) at an absolute cutoff."""

    style: ClassVar[str] = "yukawa"
    cutoff: float = _param(None, "float", "absolute cutoff (d_0; truncated, not shifted)", required=True, positive=True)
    K: float = _param(9.69, "float", "contact value (k_BT)", nonnegative=True)
    z: float = _param(4.86, "float", "inverse screening length (1/d_0)", positive=True)
    hard_core: bool = _param(True, "bool", "potential-free hard core at r = d_ab")
    overlap_tol: float = _param(
        1e-6, "float", "relative overlap the hard-core step leaves at most", positive=True, below=0.1
    )
    precision: str = _param(
        "mixed", "str", "pair terms in float32 (mixed) or float64 (double)", choices=("mixed", "double")
    )

    def pair(self, a: Species, b: Species) -> tuple[float, float, float]:
        """(contact value K, contact distance d_ab, cutoff) between species a and b."""
        return self.K, 0.5 * (a.diameter + b.diameter), self.cutoff

    def as_table(self) -> dict[str, Any]:
        return {
            "style": self.style,
            "cutoff": self.cutoff,
            "K": self.K,
            "z": self.z,
            "hard_core": self.hard_core,
            "overlap_tol": self.overlap_tol,
            "precision": self.precision,
        }


#: a system's pair potential: σ/ε pair styles (MD) or hard-sphere Yukawa (BD)
Potential = SigmaEpsilon | YukawaPotential


@dataclass(frozen=True, kw_only=True)
class System:
    name: str = _param(None, "str", "letters, digits, _, -, . (at most 64)", required=True)
    dimension: int = _param(None, "int", "2 or 3", required=True, choices=(2, 3))
    n_particles: int = _param(None, "int", "particles", required=True, positive=True)
    temperature: float = _param(
        None, "float", "k_BT of the run (the thermostat's, or BD's)", required=True, positive=True
    )
    species: tuple[Species, ...]  # [[system.species]]
    potential: Potential  # [system.potential]
    number_density: float | None = _param(None, "float", "N/V; or volume_fraction", positive=True)
    volume_fraction: float | None = _param(
        None, "float", "from the species' diameters (below 1); or number_density", positive=True, below=1.0
    )

    # -- derived ---------------------------------------------------------------------------
    def counts(self) -> list[int]:
        """Exact particle numbers per species (largest-remainder rounding of the fractions)."""
        raw = [s.fraction * self.n_particles for s in self.species]
        counts = [math.floor(r) for r in raw]
        order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
        for i in order[: self.n_particles - sum(counts)]:
            counts[i] += 1
        return counts

    def particle_volume(self, diameter: float) -> float:
        if self.dimension == 3:
            return math.pi * diameter**3 / 6.0
        return math.pi * diameter**2 / 4.0

    @property
    def volume(self) -> float:
        """Volume (area in 2D) of the periodic cell."""
        if self.number_density is not None:
            return self.n_particles / self.number_density
        occupied = sum(n * self.particle_volume(s.diameter) for n, s in zip(self.counts(), self.species))
        return occupied / _given(self.volume_fraction)

    def diffusion(self) -> list[float]:
        """Per-species D in units of D_0, the largest particle's: Stokes–Einstein d_max/d unless given."""
        d_max = max(s.diameter for s in self.species)
        return [s.diffusion if s.diffusion is not None else d_max / s.diameter for s in self.species]

    @property
    def box_length(self) -> float:
        """Edge of the cubic (square) cell at the start of shear."""
        return self.volume ** (1.0 / self.dimension)

    @property
    def yukawa(self) -> YukawaPotential:
        """The potential of a BD system (engine bd runs only this one)."""
        if not isinstance(self.potential, YukawaPotential):
            raise TypeError(f"system {self.name} has a {self.potential.style} potential, not yukawa")
        return self.potential

    @property
    def sigma_epsilon(self) -> SigmaEpsilon:
        """The potential of an MD system (lj or ipl)."""
        if not isinstance(self.potential, SigmaEpsilon):
            raise TypeError(f"system {self.name} has a yukawa potential, not lj or ipl")
        return self.potential

    def pairs(self) -> list[Pair]:
        """Every unordered species pair with resolved epsilon, sigma and absolute cutoff."""
        return [
            Pair(i, j, *self.potential.pair(self.species[i], self.species[j]))
            for i in range(len(self.species))
            for j in range(i, len(self.species))
        ]


@dataclass(frozen=True, kw_only=True)
class Rate:
    rate: float = _param(None, "float", "shear rate, above 0 (1/tau; engine bd: also 0, a run at rest)", required=True)
    sample_interval: float = _param(
        None, "float", "time between frames (a whole number of timesteps)", required=True, positive=True
    )
    thermo_interval: float | None = _param(
        None, "float", "time between thermo rows; divides sample_interval; unset: sample_interval", positive=True
    )
    analysis: tuple = ()  # [analysis] overrides for this rate, as (key, value) pairs (e.g. the paper's L/20 blocks)


@dataclass(frozen=True, kw_only=True)
class Protocol:
    seed: int = _param(
        None, "int", "random seed (below 2^31: LAMMPS seeds are 32-bit)", required=True, positive=True, below=2**31
    )
    timestep: float = _param(None, "float", "integration timestep (tau)", required=True, positive=True)
    thermostat_damp: float | None = _param(
        None, "float", "engine lammps (required): Nose-Hoover damping time (equilibration and SLLOD)", positive=True
    )
    equilibration_time: float = _param(
        None, "float", "time at the target temperature before the shear", required=True, nonnegative=True
    )
    rates: tuple[Rate, ...]  # [[protocol.rates]]
    init: str = _param(
        "random",
        "str",
        "random (insertion and a soft push-off) or file (init_file); engine bd: random",
        choices=INIT_MODES,
    )
    init_file: str | None = _param(None, "str", "init = file: a LAMMPS data file (relative to the spec)")
    melt_temperature: float | None = _param(
        None, "float", "engine lammps: melt at this temperature first (needed when melt_time > 0)", positive=True
    )
    melt_time: float = _param(0.0, "float", "engine lammps: how long the melt runs", nonnegative=True)
    steady_strain: float | None = _param(
        None, "float", "start of the steady window (analysed); or steady_time", nonnegative=True
    )
    steady_time: float | None = _param(
        None, "float", "start of the steady window as a time; or steady_strain", nonnegative=True
    )
    production_strain: float | None = _param(
        None, "float", "length of the steady window; or production_time", positive=True
    )
    production_time: float | None = _param(
        None, "float", "length of the steady window as a time; or production_strain", positive=True
    )
    checkpoint_every: int = _param(100, "int", "samples between checkpoints", positive=True)
    store_velocities: bool = _param(False, "bool", "engine lammps: peculiar velocities in every frame")
    max_temperature_ratio: float = _param(
        2.0, "float", "engine lammps: stop when T exceeds this multiple of the target (above 1)", positive=True
    )
    neighbor_skin: float = _param(0.3, "float", "neighbour-list skin", positive=True)
    outer_skin: float | None = _param(
        None,
        "float",
        "engine bd: skin of the list the pair lists are pruned from "
        f"(at least neighbor_skin); unset: neighbor_skin + {OUTER_MARGIN:g}, shortened to fit the box",
        positive=True,
    )
    minimize: bool = _param(True, "bool", "engine lammps: energy-minimise before giving velocities")
    lammps_dump: str = _param(
        "none",
        "str",
        "engine lammps: also write traj.lammpstrj, image (x y z ix iy iz) or unwrapped (xu yu zu)",
        choices=DUMP_MODES,
    )
    snapshot_every: int = _param(
        0,
        "int",
        "engine lammps: samples between kept full-state snapshots (lmpshear ice), "
        "each at the next set-up boundary; 0: none",
        nonnegative=True,
    )


@dataclass(frozen=True)
class Analysis:
    """Parameters of ``lmpshear analyze`` (the ``[analysis]`` table; every key optional). Each field's
    metadata (``_param``) is the one home of its type, bounds, default and help."""

    blocks: int = _param(
        10,
        "int",
        "viscosity: blocks for the error bar of the time average (half per half window: the drift)",
        positive=True,
        at_least=4,
    )
    overlap_a: float | None = _param(
        None,
        "float",
        "w(r) radius of eq. 14 (the paper's MD values)",
        positive=True,
        at_least=0.01,
        by_dimension=(0.3, 0.25),
    )
    cage_size: float | None = _param(
        None, "float", "l_c^2 for the cage jumps; unset: from the MSD crossover", positive=True
    )
    crossover_fraction: float = _param(
        0.5, "float", "l_c^2 where the MSD log-slope is this far from plateau to diffusion", positive=True, below=1.0
    )
    cage_relative: bool | None = _param(
        None, "bool", "cage-relative MSD for l_c^2 (as the paper)", by_dimension=(True, False)
    )
    max_origins: int = _param(50, "int", "time origins for MSD and S4", positive=True)
    chi4_origins: int = _param(
        400, "int", "time origins for chi4 (a variance: 50 leave it ~20% noisy per lag)", positive=True, at_least=2
    )
    t_chi_fraction: float = _param(
        0.7,
        "float",
        "t_chi: vertex of ln chi4 vs ln t fitted over the peak's lags with "
        "chi4 >= this fraction of its maximum (1: the argmax)",
        positive=True,
    )
    n_lags: int = _param(40, "int", "log-spaced lags for MSD and chi4", positive=True)
    min_segment: int = _param(1, "int", "frames on each side of a cage-jump cut", positive=True)
    structure_frames: int = _param(10, "int", "frames averaged for g(r)", positive=True)
    memory_budget: float = _param(
        4.0,
        "float",
        "GB the steady window's frames may hold (read from the store as "
        "needed beyond it; products do not depend on it)",
        positive=True,
    )
    # the four-point structure factor and its length (lmpshear.kernels.fourpoint)
    s4_q_max: float = _param(
        3.0,
        "float",
        "S4: q-vectors up to this |q| (d0^-1), on each origin's reciprocal lattice "
        "(below 20: past g(r)'s first peaks, and the vectors' count grows as q^D)",
        positive=True,
        below=20.0,
    )
    s4_vectors: int = _param(50, "int", "S4: at most this many q-vectors per |q| bin and origin", positive=True)
    s4_cone: float = _param(
        30.0,
        "float",
        "S4: half-angle (degrees) of the flow/gradient/vorticity direction sets",
        positive=True,
        below=90.0,
    )
    s4_fit_q_max: float = _param(1.5, "float", "S4: the fits for xi_4 use q <= this (d0^-1)", positive=True)
    # the cage jumps' pair correlation (lmpshear.kernels.jumppairs)
    gjj_bin: float = _param(0.25, "float", "g_jj: radial bin (d0)", positive=True)
    gjj_r_max: float = _param(
        10.0, "float", "g_jj: largest distance (d0; at most half the sheared cell's width)", positive=True
    )
    gjj_fit_min: float = _param(
        1.0, "float", "g_jj: the fit of g_jj - 1 = A exp(-r/xi_jj) starts here (d0)", nonnegative=True
    )
    gjj_window: float | None = _param(
        None,
        "float",
        "g_jj: also a window of this fixed time (tau0), the same at every rate; unset: only t_chi and the clusters' W",
        positive=True,
    )
    # dynamic regions and convective clusters (lmpshear.kernels.sieve, .convective)
    cluster_sieve: str = _param(
        "blocks",
        "str",
        "coarse sieve: blocks (jump counts, BD) or kernel (e^{-r/d}, MD presets)",
        choices=("blocks", "kernel"),
    )
    cluster_blocks: int = _param(
        10, "int", "coarse blocks per edge (the paper: 10, or 20 at its highest BD rate)", positive=True
    )
    cluster_block: float | None = _param(
        None, "float", "coarse block edge as a length; wins over cluster_blocks (0: unset)", nonnegative=True
    )
    kernel_scale: float = _param(
        1.0, "float", "kernel sieve: d in units of g(r)'s first minimum (1: the paper)", positive=True, at_least=0.1
    )
    cluster_window: float = _param(1.0, "float", "window length in units of t_chi (the paper: 1) ...", positive=True)
    # the paper's iteration (C = 0.1) on uniform Poisson counts of mean μ per block stops at ρ_th ≈ 0 (μ ≤ 5),
    # 0.2 μ (10), 0.5 μ (25), 0.8 μ (60), 0.9 μ (100): below ~25 jumps per block (or per kernel volume)
    # ρ_th is set by the noise's lower tail rather than by a background level
    # (tests/test_clusters.py::test_background_iteration_on_poisson_counts)
    min_jumps_per_block: float = _param(
        25.0,
        "float",
        "... lengthened to whole t_chi until the coarse sieve sees this many jumps per block (0: never)",
        nonnegative=True,
    )
    cluster_fine: int | None = _param(
        None,
        "int",
        "undersize-sieve nodes per edge (at least 4)",
        positive=True,
        below=513,
        by_dimension=(2.0, 0.9),
        unset="{} d0 apart",
    )
    threshold_tolerance: float = _param(0.1, "float", "C of the background iteration", positive=True)
    cluster_threshold: str = _param(
        "background",
        "str",
        "rho_th: background (the paper's iteration) or significance (nodes significant against unclustered jumps)",
        choices=("background", "significance"),
    )
    cluster_fdr: float = _param(0.05, "float", "the significance rule's false-discovery rate", positive=True, below=1.0)
    stz_diameter: float = _param(3.0, "float", "cage-jump spot size for V_stz", positive=True, at_least=0.1)
    min_stz: float = _param(2.0, "float", "C': clusters below C' V_stz are dropped", nonnegative=True)
    prune_fine: bool = _param(False, "bool", "apply C' V_stz again after the undersize sieve (the paper: coarse only)")
    trace_before: float = _param(2.0, "float", "traceback from t_ref - trace_before W ...", positive=True)
    trace_after: float = _param(0.5, "float", "... to t_ref + trace_after W", nonnegative=True)
    max_windows: int = _param(25, "int", "windows analysed (from the start of the steady window)", positive=True)
    contrast: int = _param(
        1, "int", "contrast spheres per window and kind (outside every cluster; straddling)", nonnegative=True
    )
    p_c_clusters: str = _param(
        "all", "str", "clusters in P_c and eta_c: all traced, or yielded only", choices=("all", "yielded")
    )
    atomic_stress: str = _param(
        "virial",
        "str",
        "eq. 2: virial (pairs split: sums to V sigma) or paper (as printed: 2x)",
        choices=("virial", "paper"),
    )
    # STZs (pseudo-harmonic modes) and facilitation (lmpshear.kernels.phm, .matching, .facilitation)
    phm_clusters: int = _param(
        20, "int", "yielded clusters whose PHMs are computed (spread over the table)", positive=True
    )
    phm_starts: int = _param(
        12, "int", "lowest eigenvectors of the restricted Hessian the PHM iteration starts from", positive=True
    )
    phm_cores: int = _param(3, "int", "softest PHM cores per cluster matched with its cage-jump spots", positive=True)
    core_radius: float = _param(
        1.5, "float", "d0: the core's local strain fit; a frozen particle this close flags the mode", positive=True
    )
    phm_shell: float = _param(
        0.0, "float", "d0: particles this close to a member relax with the cluster (0: frozen)", nonnegative=True
    )
    spot_link: float = _param(1.5, "float", "d0: jumps of [t0, t1) closer than this form one spot", positive=True)
    spot_min_jumps: int = _param(2, "int", "jumps a spot needs (a concentration, not a lone jump)", positive=True)
    orientation_bins: int = _param(
        0,
        "int",
        "facilitation: equal-solid-angle bins (3D: 2 n^2)",
        nonnegative=True,
        at_least=4,
        by_dimension=(16, 32),
    )
    shell_width: float = _param(0.5, "float", "d0: radial bins of g_cj and alpha", positive=True)

    @classmethod
    def unset_default(cls, key: str, dimension: int):
        """What ``key`` left at its default means in this dimension (its ``by_dimension`` declaration)."""
        return cls.__dataclass_fields__[key].metadata["by_dimension"][dimension - 2]

    def value(self, key: str, dimension: int):
        """``key`` as set, or what its default means in this dimension."""
        value = getattr(self, key)
        return self.unset_default(key, dimension) if value == self.__dataclass_fields__[key].default else value


@dataclass(frozen=True)
class RunSpec:
    engine: str
    system: System
    protocol: Protocol
    source: str = ""  # where it was loaded from (for messages)
    analysis: Analysis = Analysis()

    # -- rate selection --------------------------------------------------------------------
    def rate_values(self) -> list[float]:
        return [r.rate for r in self.protocol.rates]

    def select_rate(self, rate: float | None) -> RunSpec:
        """The spec restricted to one shear rate (which must be listed in the protocol)."""
        rates = self.protocol.rates
        if rate is None:
            if len(rates) == 1:
                return self
            listed = ", ".join(f"{r.rate:g}" for r in rates)
            raise UserError(
                f"{self.source}: the protocol lists {len(rates)} shear rates ({listed}); choose one with --rate"
            )
        for r in rates:
            if math.isclose(r.rate, rate, rel_tol=1e-6):
                return replace(
                    self,
                    protocol=replace(self.protocol, rates=(r,)),
                    analysis=replace(self.analysis, **dict(r.analysis)),
                )
        listed = ", ".join(f"{r.rate:g}" for r in rates)
        raise UserError(f"{self.source}: shear rate {rate:g} is not in the protocol (listed: {listed})")

    @property
    def rate(self) -> Rate:
        if len(self.protocol.rates) != 1:
            raise UserError(f"{self.source}: a run needs exactly one shear rate")
        return self.protocol.rates[0]

    # -- derived step counts (single-rate specs) --------------------------------------------
    def steps(self, interval: float) -> int:
        return int(round(interval / self.protocol.timestep))

    @property
    def sample_steps(self) -> int:
        return self.steps(self.rate.sample_interval)

    @property
    def thermo_steps(self) -> int:
        return self.steps(self.rate.thermo_interval or self.rate.sample_interval)

    @property
    def steady_time(self) -> float:
        p = self.protocol
        return p.steady_time if p.steady_time is not None else _given(p.steady_strain) / self.rate.rate

    @property
    def total_time(self) -> float:
        p = self.protocol
        prod = p.production_time if p.production_time is not None else _given(p.production_strain) / self.rate.rate
        return self.steady_time + prod

    @property
    def steady_strain(self) -> float:
        return self.steady_time * self.rate.rate

    @property
    def total_strain(self) -> float:
        return self.total_time * self.rate.rate

    @property
    def n_samples(self) -> int:
        """Frames after the one at t = 0 (rounded up to whole samples)."""
        return max(1, math.ceil(self.total_time / self.rate.sample_interval - _REL_TOL))

    @property
    def shear_steps(self) -> int:
        return self.n_samples * self.sample_steps

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain dict in the TOML schema; ``load_dict(spec.to_dict())`` gives the spec back."""
        s, p = self.system, self.protocol
        system: dict[str, Any] = {
            "name": s.name,
            "dimension": s.dimension,
            "n_particles": s.n_particles,
            "temperature": s.temperature,
        }
        if s.number_density is not None:
            system["number_density"] = s.number_density
        else:
            system["volume_fraction"] = s.volume_fraction
        system["species"] = [{k: v for k, v in vars(sp).items() if v is not None} for sp in s.species]
        system["potential"] = s.potential.as_table()
        protocol: dict[str, Any] = {}
        for key, value in vars(p).items():
            if key == "rates" or (self.engine == "bd" and key in LAMMPS_ONLY):
                continue
            if value is not None:
                protocol[key] = value
        protocol["rates"] = [
            {k: (dict(v) if k == "analysis" else v) for k, v in vars(r).items() if v is not None and v != ()}
            for r in p.rates
        ]
        analysis = {k: v for k, v in vars(self.analysis).items() if v is not None}
        return {"engine": self.engine, "system": system, "protocol": protocol, "analysis": analysis}
