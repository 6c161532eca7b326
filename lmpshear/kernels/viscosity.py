"""Shear viscosity from the thermo table (the paper's eq. 1).

η = −⟨P_xy^vir⟩ / γ̇ with P_xy^vir = (1/V) Σ_i r_i,x f_i,y the virial (interaction) part of the
pressure tensor: the paper's eq. 1 counts only the deterministic forces. The kinetic part, from
peculiar velocities (streaming removed), is reported separately as ``eta_total`` (kinetic + virial),
which is what LAMMPS's NEMD examples compute.

The average runs over the steady-state window (strain ≥ steady_strain); its error bar is the
standard error of the mean of ``n_blocks`` contiguous blocks, which accounts for time correlation
as long as a block is longer than the stress correlation time. The window's two halves are also
averaged apart (half the blocks each), and ``drift`` is their difference in units of its error: a
steady state gives |drift| of order 1, a run still ageing or heating several σ (a pure linear ramp
gives 5σ with 10 blocks whatever its slope, since it spreads the block means too: read the halves).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lmpshear.errors import UserError


@dataclass(frozen=True)
class Viscosity:
    rate: float
    eta: float
    eta_error: float
    eta_total: float
    eta_total_error: float
    shear_stress: float  # ⟨σ_xy^vir⟩ = −⟨P_xy^vir⟩
    strain_window: tuple[float, float]
    n_rows: int
    n_blocks: int
    eta_halves: tuple[float, float]  # η over the first and second halves of the window
    drift: float  # (second − first) / the error of that difference

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"eta = {self.eta:.5g} +/- {self.eta_error:.2g} (virial, eq. 1); "
            f"eta_total = {self.eta_total:.5g} +/- {self.eta_total_error:.2g} (kinetic + virial); "
            f"rate {self.rate:g}, strain {self.strain_window[0]:.3g}..{self.strain_window[1]:.3g}, "
            f"{self.n_rows} samples in {self.n_blocks} blocks; halves {self.eta_halves[0]:.5g} / "
            f"{self.eta_halves[1]:.5g} (drift {self.drift:+.1f} sigma)"
        )


def block_average(values: np.ndarray, n_blocks: int) -> tuple[float, float]:
    """Mean and its standard error from ``n_blocks`` equal contiguous blocks."""
    values = np.asarray(values, dtype=np.float64)
    if n_blocks < 2:
        raise UserError("need at least 2 blocks for an error bar")
    if len(values) < n_blocks:
        raise UserError(f"only {len(values)} samples in the steady window, fewer than {n_blocks} blocks")
    usable = len(values) - len(values) % n_blocks
    blocks = values[:usable].reshape(n_blocks, -1).mean(axis=1)
    return float(values.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


def viscosity(thermo, rate: float, steady_strain: float, n_blocks: int = 10) -> Viscosity:
    """η from a thermo table (pandas DataFrame with strain, pxy, pxy_virial columns)."""
    if rate <= 0:
        raise UserError("the shear rate must be positive")
    steady = thermo[thermo["strain"] >= steady_strain - 1e-12]
    if len(steady) == 0:
        raise UserError(
            f"no thermo rows at strain >= {steady_strain:g} (the run reached "
            f"{thermo['strain'].max():.3g}); is it finished?"
        )
    if n_blocks < 4:
        raise UserError(f"need at least 4 blocks (2 per half of the window), got {n_blocks}")
    stress = -steady["pxy_virial"].to_numpy()
    mean_vir, err_vir = block_average(stress, n_blocks)
    mean_tot, err_tot = block_average(-steady["pxy"].to_numpy(), n_blocks)
    (first, e1), (second, e2) = (block_average(h, n_blocks // 2) for h in np.array_split(stress, 2))
    return Viscosity(
        rate=rate,
        eta=mean_vir / rate,
        eta_error=err_vir / rate,
        eta_total=mean_tot / rate,
        eta_total_error=err_tot / rate,
        shear_stress=mean_vir,
        strain_window=(float(steady["strain"].min()), float(steady["strain"].max())),
        n_rows=len(steady),
        n_blocks=n_blocks,
        eta_halves=(first / rate, second / rate),
        drift=(second - first) / float(np.hypot(e1, e2)),
    )
