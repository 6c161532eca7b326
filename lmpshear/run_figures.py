"""One run's figures, from its run directory's products (``lmpshear figures RUNDIR``, and after
``lmpshear analyze``): the run's overview (temperature, energy, stress against strain), its dynamics
(``dynamics.png``: MSD and χ4) and the paper's per-run panels (the same recipes serve the BD figures
and the MD ones, Figs. 5b/d and 6):

- ``fig1b.png``: cage jumps of one window (carried to its end t_ref) in the shear plane, the chosen
  cluster's boundary, and the contrast spheres of that window (dashed: outside every cluster; dotted:
  straddling clusters). In 3D only a slab |z − z_c| < ξ_c about the cluster's centre is drawn.
- ``fig1c.png``: the boundary carried by the affine flow (convective transport and traceback) to the
  trace start, t0, t1, t2, t3 and the trace end, in the lab frame.
- ``fig2.png``: (a) σ_c and γ_c, (b) n_cj, (c) P_ext, (d) R of the chosen cluster with t0..t3;
  (e–h) its cage jumps accumulated from t0 to t' = (t0 + t1)/2, t1, t2 and t3, drawn where the flow
  carries them at t_ref, inside the boundary.
- ``fig2ij.png``: σ and γ of the two contrast spheres (i: outside, j: straddling).
- ``fig3a.png``: P_c(t) and its mean.
- ``fig8.png``: one particle's non-affine path, its colour changing at each cage jump.
- ``fig9.png``: what the sieves see in the cluster's window: its jumps in a slab, the coarse density
  with its local maxima, the clusters after the coarse sieve, the undersize sieve of the cluster.

The figures across rates (``lmpshear report``) are in :mod:`lmpshear.rate_figures`.

The chosen cluster is ``--cluster K`` (a row of the cluster table) or, by default, the yielded cluster
of the median volume: a typical one (``choose_cluster``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmpshear import integrity
from lmpshear.cell import Cell
from lmpshear.drawing import legend_beside, no_data, plain_log_ticks, plt, save_png
from lmpshear.errors import UserError
from lmpshear.kernels.cagejumps import carried_jumps
from lmpshear.kernels.convective import choose_cluster
from lmpshear.kernels.traceback import flat_nodes
from lmpshear.rundir import RunDir
from lmpshear.store import read_thermo

STAGE_COLOURS = {"trace start": "0.6", "t0": "C0", "t1": "C2", "t2": "C3", "t3": "C1", "trace end": "0.3"}


def _node_mask(nodes: list[int], grid: int, dim: int, slab: tuple[float, float] | None) -> np.ndarray:
    """(grid, grid) projection on the shear plane of a region's fine nodes (those in ``slab`` of s_z)."""
    idx = np.array(np.unravel_index(np.asarray(nodes, dtype=np.int64), (grid,) * dim)).T
    if dim == 3 and slab is not None:
        sz = idx[:, 2] / grid
        idx = idx[_in_slab(sz, slab)]
    mask = np.zeros((grid, grid))
    mask[idx[:, 0], idx[:, 1]] = 1.0
    return mask


def _in_slab(sz: np.ndarray, slab: tuple[float, float]) -> np.ndarray:
    centre, half = slab
    d = (sz - centre + 0.5) % 1.0 - 0.5
    return np.abs(d) <= half


def _outline(
    ax, mask: np.ndarray, cell: Cell, rate: float, t_ref: float, t: float, fill: str | None = None, **style
) -> None:
    """The boundary of a projected region at t_ref, carried by the flow to time t (the shear about
    the bottom of ``cell``)."""
    grid = mask.shape[0]
    sx, sy = np.meshgrid(np.arange(grid + 1) / grid, np.arange(grid + 1) / grid, indexing="ij")
    padded = np.pad(mask, ((0, 1), (0, 1)), mode="wrap")  # node grid closed periodically for contouring
    x = cell.lo[0] + sx * cell.lx + sy * cell.xy
    y = cell.lo[1] + sy * cell.ly
    x = x - cell.affine_shift(y, rate, t_ref - t)
    if padded.max() > 0:
        ax.contour(x, y, padded, levels=[0.5], **style)
        if fill:  # shade the inside: a big region's outline alone reads as its holes
            ax.contourf(x, y, padded, levels=[0.5, 1.5], colors=[fill], alpha=0.15)


def _cell_edges(ax, cell: Cell, **style) -> None:
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=float)
    x = cell.lo[0] + corners[:, 0] * cell.lx + corners[:, 1] * cell.xy
    y = cell.lo[1] + corners[:, 1] * cell.ly
    ax.plot(x, y, **style)


def contrast_verdict(rise: dict) -> str:
    """Whether the clusters' stress builds up more than spheres of their size elsewhere (the paper's
    Fig. 2i-j contrast), from the mean largest run-ups over the run, not from the one cluster drawn."""
    means = (
        f"mean largest run-ups: clusters {rise['clusters']:.3g}, outside {rise['quiet']:.3g}, "
        f"straddling {rise['straddling']:.3g}"
    )
    if not all(np.isfinite(rise[k]) for k in ("clusters", "quiet", "straddling")):
        return means
    if rise["clusters"] > max(rise["quiet"], rise["straddling"]):
        return f"{means}: the clusters' stress builds up most, as in the paper"
    return f"{means}: no contrast at this size (the paper's clusters build up the most stress)"


class RunFigures:
    """What the recipes share: the cluster table and series, the window's jumps and cell at t_ref."""

    def __init__(self, rundir: str | Path, cluster: int | None = None):
        import pandas as pd

        from lmpshear.store import Trajectory

        self.rd = RunDir(rundir)
        if not self.rd.path.is_dir():
            raise UserError(f"no run directory at {self.rd.path}")
        self.rd.made("clusters")  # says what to run where it is missing, before any check of the store
        integrity.require_intact(self.rd, reading="drawn")
        self.result = self.rd.made("clusters")
        self.info = self.rd.info()
        self.rate = self.info.rate
        self.k = choose_cluster(self.result, cluster)
        self.row, self.series = self.result["clusters"][self.k], self.result["series"][self.k]
        summary = self.result["summary"]
        self.grid, self.t_chi, self.t_ref = summary["grid"], summary["t_chi"], self.row["t_ref"]
        with Trajectory(self.rd.store) as traj:
            self.dim = traj.dimension
            k_ref = int(np.argmin(np.abs(traj.times - self.t_ref)))
            self.cell = traj.cell(k_ref)
        self.axes = ["x", "y", "z"][: self.dim]
        self.jumps = pd.read_csv(self.rd.file("jumps"))
        centre = self.cell.fractional(np.array([self.row["centre"] + [0.0] * (3 - self.dim)]))[0]
        self.slab = (centre[2], self.row["xi"] / self.cell.lz) if self.dim == 3 else None
        # drawn in a copy of the cell with the cluster in its middle (whole, not cut by the periodic edges)
        self.n0 = np.rint(centre[:2] * self.grid).astype(int) - self.grid // 2
        self.view = Cell((0.0, 0.0, 0.0), self.cell.lx, self.cell.ly, self.cell.lz, self.cell.xy, self.dim)
        self.mask = self.node_mask(self.series["nodes"])

    # -- helpers --------------------------------------------------------------------------------
    def node_mask(self, nodes: list[int]) -> np.ndarray:
        return np.roll(_node_mask(nodes, self.grid, self.dim, self.slab), tuple(-self.n0), axis=(0, 1))

    def plane(self, r: np.ndarray) -> np.ndarray:
        """Points of the cell at t_ref in the view: shear-plane coordinates (n, 2)."""
        s = (self.cell.fractional(r)[:, :2] - self.n0 / self.grid) % 1.0
        return np.stack([s[:, 0] * self.cell.lx + s[:, 1] * self.cell.xy, s[:, 1] * self.cell.ly], axis=1)

    def carried(self, t_from: float, t_to: float) -> tuple[np.ndarray, np.ndarray]:
        """Jumps in [t_from, t_to) (in the slab) carried to t_ref: their positions and times."""
        r, rows = carried_jumps(self.jumps, t_from, t_to, self.cell, self.rate, self.t_ref)
        times = rows.time.to_numpy()
        keep = np.ones(len(r), dtype=bool)
        if self.slab is not None:
            keep = _in_slab(self.cell.fractional(r)[:, 2], self.slab)
        return r[keep], times[keep]

    def inside(self, r: np.ndarray) -> np.ndarray:
        s = self.cell.fractional(r)
        idx = (np.rint(s[:, :2] * self.grid).astype(np.int64) - self.n0) % self.grid
        return self.mask[idx[:, 0], idx[:, 1]] > 0

    def times(self) -> dict[str, float]:
        t = self.series["t"]
        marks = {"trace start": t[0]}
        marks |= {name: self.row[name] for name in ("t0", "t1", "t2", "t3") if name in self.row}
        marks["trace end"] = t[-1]
        return marks

    def title(self) -> str:
        return (
            f"{self.info.name}, rate {self.rate:g}: cluster {self.k} (window {self.row['window']}, "
            rf"$\xi_c$ = {self.row['xi']:.2g})"
        )

    # -- panels ---------------------------------------------------------------------------------
    def fig1b(self, out: Path) -> Path:
        fig, ax = plt.subplots(figsize=(8.5, 5), constrained_layout=True)  # the legend beside the cell
        r, _ = self.carried(self.t_ref - self.t_chi, self.t_ref - 1e-12)
        ins, p = self.inside(r), self.plane(r)
        ax.plot(p[~ins, 0], p[~ins, 1], ".", color="0.6", ms=2, label="cage jumps in the window")
        ax.plot(p[ins, 0], p[ins, 1], ".", color="C3", ms=3, label="inside the cluster")
        _outline(ax, self.mask, self.view, self.rate, self.t_ref, self.t_ref, fill="C3", colors="C3", linewidths=1.5)
        w = self.row["window"]
        styles = {"quiet": dict(colors="C2", linestyles="dashed"), "straddling": dict(colors="C0", linestyles="dotted")}
        names = {"quiet": "contrast sphere outside every cluster", "straddling": "contrast sphere straddling clusters"}
        drawn = set()
        for row, ser in zip(self.result.get("contrast", []), self.result.get("contrast_series", [])):
            if row["window"] == w:
                _outline(
                    ax,
                    self.node_mask(ser["nodes"]),
                    self.view,
                    self.rate,
                    self.t_ref,
                    self.t_ref,
                    linewidths=1.2,
                    **styles[row["kind"]],
                )
                drawn.add(row["kind"])
        ax.plot([], [], color="C3", lw=1.5, label="cluster boundary")
        for kind in sorted(drawn):  # only what is drawn (no sphere fits outside clusters that fill the cell)
            ax.plot([], [], color=styles[kind]["colors"], ls=styles[kind]["linestyles"], label=names[kind])
        _cell_edges(ax, self.view, color="k", lw=0.6)
        ax.set_aspect("equal")
        ax.set_xlabel("x (flow)")
        ax.set_ylabel("y (gradient)")
        legend_beside(ax, markerscale=3)
        slab = f"; slab |z - z_c| < {self.row['xi']:.2g}" if self.dim == 3 else ""
        ax.set_title(
            rf"{self.title()}" + "\n" + rf"jumps of the window $[t_\mathrm{{ref}} - W, t_\mathrm{{ref}})$ at "
            rf"$t_\mathrm{{ref}}$ = {self.t_ref:.4g}{slab}",
            fontsize=8,
        )
        return save_png(fig, out)

    def fig1c(self, out: Path) -> Path:
        fig, ax = plt.subplots(figsize=(7, 5), constrained_layout=True)
        for name, t in self.times().items():
            _outline(ax, self.mask, self.view, self.rate, self.t_ref, t, colors=STAGE_COLOURS[name], linewidths=1.2)
            ax.plot([], [], color=STAGE_COLOURS[name], label=f"{name} = {t:.4g}")
        ax.set_aspect("equal")
        ax.set_xlabel("x (flow, lab frame)")
        ax.set_ylabel("y (gradient)")
        legend_beside(ax)  # beside, not over, the boundaries
        ax.set_title(
            f"{self.title()}\nboundary carried by the flow from t_ref = {self.t_ref:.4g}", fontsize=8, wrap=True
        )
        return save_png(fig, out)

    def fig2(self, out: Path) -> Path:
        ser, row = self.series, self.row
        t = np.array(ser["t"])
        fig, axes = plt.subplots(2, 4, figsize=(16, 7), constrained_layout=True)
        a = axes[0, 0]
        a.plot(t, ser["sigma"], "C3", lw=1)
        a.set_ylabel(r"$\sigma_c$ (eq. 4)", color="C3")
        if "strain" in ser:
            a2 = a.twinx()
            a2.plot(t, ser["strain"], "C0", lw=1)
            a2.set_ylabel(r"$\gamma_c$ from $t_0$ (eq. 5–7)", color="C0")
        axes[0, 1].bar(t, ser["n_cj"], width=np.diff(t).mean() if len(t) > 1 else 1.0, color="C2")
        axes[0, 1].set_ylabel(r"$n_{cj}$")
        axes[0, 2].plot(t, np.array(ser["p_ext"], dtype=float), "o-", ms=2, lw=0.6, color="C4")
        axes[0, 2].axhline(0.5, color="k", lw=0.6)
        axes[0, 2].set_ylabel(r"$P_{ext}$")
        if "exchange" in ser:
            axes[0, 3].plot(t, ser["exchange"], "C5")
        axes[0, 3].set_ylabel(r"$R = 1 - N_{res}(t)/N_{res}(t_0)$")
        for a, label in zip(axes[0], "abcd"):
            a.set_xlabel("t")
            a.set_title(f"({label})", loc="left", fontsize=9)
            marks = [(name, tm) for name, tm in self.times().items() if name in ("t0", "t1", "t2", "t3")]
            for level, (name, tm) in enumerate(marks):
                a.axvline(tm, color="0.5", ls="--", lw=0.7)
                a.text(  # inside the top, one height each: close times never print over each other
                    tm,
                    0.97 - 0.07 * level,
                    f" {name}",
                    transform=a.get_xaxis_transform(),
                    ha="left",
                    va="top",
                    fontsize=7,
                    color="0.3",
                )
        if "t0" in row:
            moments = {"t'": 0.5 * (row["t0"] + row["t1"]), "t1": row["t1"], "t2": row["t2"], "t3": row["t3"]}
            r, times = self.carried(row["t0"], row["t3"])
            ins, p = self.inside(r), self.plane(r)
            for a, (name, tm), label in zip(axes[1], moments.items(), "efgh"):
                now = ins & (times <= tm)
                a.plot(p[now, 0], p[now, 1], ".", color="C3", ms=3)
                _outline(
                    a, self.mask, self.view, self.rate, self.t_ref, self.t_ref, fill="C3", colors="k", linewidths=1
                )
                a.set_aspect("equal")
                a.set_title(f"({label}) jumps in the cluster, t0..{name} = {tm:.4g}", loc="left", fontsize=9)
                a.set_xlabel(r"x at $t_\mathrm{ref}$")
                a.set_ylabel(r"y at $t_\mathrm{ref}$")
        else:
            for a in axes[1]:
                a.set_visible(False)
        fig.suptitle(self.title())
        return save_png(fig, out)

    def fig2ij(self, out: Path) -> Path | None:
        rows, series = self.result.get("contrast", []), self.result.get("contrast_series", [])
        if not rows:
            return None
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
        for a, kind, label in zip(
            axes, ("quiet", "straddling"), ("(i) outside every cluster", "(j) straddling clusters")
        ):
            picks = [k for k, r in enumerate(rows) if r["kind"] == kind]
            if not picks:
                a.set_visible(False)
                continue
            k = next((k for k in picks if rows[k]["window"] == self.row["window"]), picks[0])
            t = np.array(series[k]["t"])
            a.plot(t, series[k]["sigma"], "C3", lw=1)
            a.set_ylabel(r"$\sigma$ of the sphere", color="C3")
            a2 = a.twinx()
            a2.plot(t, series[k]["strain"], "C0", lw=1)
            a2.set_ylabel(r"$\gamma$ from the trace start", color="C0")
            a.set_xlabel("t")
            a.set_title(
                f"{label}: window {rows[k]['window']}, radius {rows[k]['radius']:.2g}, "
                f"largest stress run-up {rows[k]['stress_rise']:.3g}",
                loc="left",
                fontsize=9,
            )
        fig.suptitle(
            f"{self.info.name}: contrast regions (cluster run-up {self.row['stress_rise']:.3g})\n"
            + contrast_verdict(self.result["summary"]["stress_rise"]),
            fontsize=10,
        )
        return save_png(fig, out)

    def fig3a(self, out: Path) -> Path:
        s = self.result["summary"]
        whole = self.result["P_c"].get("all")
        fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
        if whole:  # the whole steady window, both readings; the averaged span shaded
            ax.plot(
                whole["t"],
                whole["all"],
                "C0",
                lw=0.8,
                alpha=0.5 if s["p_c_clusters"] != "all" else 1,
                label=rf"all traced clusters: $\bar P_c$ = {s['P_c_mean_all']:.2f}",
            )
            ax.plot(
                whole["t"],
                whole["yielded"],
                "C1",
                lw=0.8,
                alpha=0.5 if s["p_c_clusters"] != "yielded" else 1,
                label=rf"yielded clusters [t0, t3]: $\bar P_c$ = {s['P_c_mean_yielded']:.2f}",
            )
            if s.get("P_c_span"):
                ax.axvspan(
                    *s["P_c_span"], color="0.9", zorder=0, label="averaged (every window that can reach t was analysed)"
                )
        else:
            ax.plot(self.result["P_c"]["t"], self.result["P_c"]["P_c"], "C0", lw=1)
        ax.axhline(
            s["P_c_mean"], color="k", ls="--", lw=0.8, label=rf"$\bar P_c$ = {s['P_c_mean']:.2f} (used for $\eta_c$)"
        )
        ax.set_xlabel("t")
        ax.set_ylabel(r"$P_c(t)$")
        ax.set_ylim(0, max(1.0, ax.get_ylim()[1]))
        legend_beside(ax)
        ax.set_title(rf"{self.info.name}: rate {self.rate:g}, $\eta_c$ = {s['eta_c']:.3g}", fontsize=9)
        return save_png(fig, out)

    def fig8(self, out: Path, jumps_shown: int = 3) -> Path | None:
        """Fig. 8: one particle's non-affine path r̃(t) in the shear plane, its colour changing at each cage
        jump: ``jumps_shown`` jumps (four segments) of the particle whose jump count is the median among
        those with that many in the steady window."""
        from lmpshear.store import Trajectory

        counts = self.jumps.groupby("particle").size()
        many = counts[counts >= jumps_shown]
        if many.empty:
            return None
        particle = int(many.index[np.argsort(many.to_numpy(), kind="stable")[len(many) // 2]])
        frames = np.sort(self.jumps.loc[self.jumps.particle == particle, "frame"].to_numpy())[:jumps_shown]
        gap = int(max(np.diff(frames).mean() if len(frames) > 1 else 10, 2))
        with Trajectory(self.rd.store) as traj:
            span = np.arange(max(frames[0] - gap, 0), min(frames[-1] + gap, len(traj.times)))
            path = traj.nonaffine(list(span))[:, particle, :]
            times = traj.times[span]
        path = path - path[0]
        fig, ax = plt.subplots(figsize=(5.5, 5), constrained_layout=True)
        cuts = [0, *np.searchsorted(span, frames), len(span)]
        for k in range(len(cuts) - 1):
            piece = slice(max(cuts[k] - 1, 0), cuts[k + 1])  # joined to the previous segment's last frame
            ax.plot(
                path[piece, 0],
                path[piece, 1],
                "-o",
                ms=2,
                lw=1,
                color=f"C{k}",
                label=f"cage {k + 1}: t = {times[max(cuts[k], 0)]:.4g} to {times[cuts[k + 1] - 1]:.4g}",
            )
        ax.set_aspect("equal")
        ax.set_xlabel(r"$\tilde x - \tilde x(t_{start})$ (flow)")
        ax.set_ylabel(r"$\tilde y - \tilde y(t_{start})$ (gradient)")
        legend_beside(ax)
        ax.set_title(
            f"{self.info.name}, rate {self.rate:g}: particle {particle}, non-affine path\n"
            "the colour changes at each cage jump",
            fontsize=8,
        )
        return save_png(fig, out)

    def fig9(self, out: Path, thickness: float = 1.5) -> Path:
        """Fig. 9: what the sieves see in the chosen cluster's window: (a) its cage jumps in a slab of
        ``thickness`` d0 through the cluster's centre (3D), (b) the coarse density field of the layer of
        blocks (or kernel nodes) holding that centre, local maxima framed, (c) the clusters after the coarse
        sieve in that layer, (d) the undersize sieve of the cluster: its fine nodes, coloured by the jump
        density around them. The sieve is run again on the window's jumps with the product's parameters
        and the window's ρ_th."""
        from lmpshear.kernels.sieve import demarcate
        from lmpshear.rundir import Product

        s, params = self.result["summary"], Product.read(self.rd.product("clusters")).params
        w, W = self.row["window"], s["window"]
        cell, dim = self.cell, self.dim
        events, _ = carried_jumps(self.jumps, self.t_ref - W, self.t_ref, cell, self.rate, self.t_ref)
        coarse = int(round(cell.lx / s["coarse_block"]))
        threshold = self.result["sieve"][w].get("threshold", s["threshold"])
        regions, fields = demarcate(
            events,
            cell,
            coarse,
            threshold=threshold,
            fine=params["cluster_fine"],
            tolerance=params["threshold_tolerance"],
            kernel_length=s.get("kernel_length"),
            stz_diameter=params["stz_diameter"],
            min_stz=params["min_stz"],
            prune_fine=params["prune_fine"],
        )
        centre = cell.fractional(np.array([self.row["centre"] + [0.0] * (3 - dim)]))[0]
        layer = int(centre[2] * coarse) % coarse if dim == 3 else None
        fig, axes = plt.subplots(2, 2, figsize=(10, 9.5), constrained_layout=True)
        frac = cell.fractional(events)
        keep = (
            np.ones(len(events), bool)
            if dim == 2
            else np.abs((frac[:, 2] - centre[2] + 0.5) % 1.0 - 0.5) * cell.lz <= thickness / 2
        )

        def to_plane(sx, sy):
            return cell.lo[0] + sx * cell.lx + sy * cell.xy, cell.lo[1] + sy * cell.ly

        x, y = to_plane(frac[keep, 0], frac[keep, 1])
        axes[0, 0].plot(x, y, ".", ms=2, color="0.3")
        axes[0, 0].set_title(
            f"(a) cage jumps of the window (W = {W:.3g})" + (f" in a slab of {thickness:g} d0" if dim == 3 else ""),
            fontsize=9,
        )
        grid = np.arange(coarse + 1) / coarse
        gx, gy = to_plane(*np.meshgrid(grid, grid, indexing="ij"))
        rho = fields["rho"] if dim == 2 else fields["rho"][:, :, layer]
        mesh = axes[0, 1].pcolormesh(gx, gy, rho, cmap="hot_r", shading="flat")
        fig.colorbar(mesh, ax=axes[0, 1], label="jumps per block" if not s.get("kernel_length") else "smoothed density")
        shifted = [np.roll(rho, shift, axis=a) for a in (0, 1) for shift in (-1, 1)]
        peaks = np.argwhere((rho >= np.max(shifted, axis=0)) & (rho >= fields["threshold"]))
        for i, j in peaks:
            px, py = to_plane(np.array([i, i + 1, i + 1, i, i]) / coarse, np.array([j, j, j + 1, j + 1, j]) / coarse)
            axes[0, 1].plot(px, py, color="C0", lw=1)
        axes[0, 1].set_title(
            rf"(b) coarse density ($\rho_\mathrm{{th}}$ = {fields['threshold']:.3g}); local maxima framed", fontsize=9
        )
        labels = fields["coarse_labels"] if dim == 2 else fields["coarse_labels"][:, :, layer]
        shown = np.where(labels > 0, labels % 10, np.nan)
        axes[1, 0].pcolormesh(gx, gy, shown, cmap="tab10", vmin=0, vmax=10, shading="flat")
        stz = params["stz_diameter"] / 2
        cx, cy = to_plane(np.array([0.08]), np.array([0.08]))
        axes[1, 0].add_patch(plt.Circle((cx[0] + stz, cy[0] + stz), stz, color="k"))
        axes[1, 0].set_title("(c) clusters after the coarse sieve (black disc: the STZ diameter)", fontsize=9)
        # the chosen cluster among the regions found again: the one sharing most fine nodes with it (labels
        # may differ: the window's first and last jumps sit within a frame of its edges)
        stored = set(self.series["nodes"])
        mine = max(regions, key=lambda r: (len(stored.intersection(flat_nodes(r, fields["fine"]))), r.volume))
        node_frac = mine.nodes / fields["fine"]
        near = (
            np.ones(len(node_frac), bool)
            if dim == 2
            else np.abs((node_frac[:, 2] - centre[2] + 0.5) % 1.0 - 0.5) * cell.lz <= thickness / 2
        )
        nx, ny = to_plane(node_frac[near, 0], node_frac[near, 1])
        density = mine.node_density if mine.node_density is not None else np.zeros(len(node_frac))
        dots = axes[1, 1].scatter(nx, ny, c=density[near], cmap="viridis_r", s=25)
        fig.colorbar(dots, ax=axes[1, 1], label="jump density around the node")
        axes[1, 1].set_title(
            rf"(d) undersize sieve of the cluster (region {mine.label}, $\xi$ = {mine.radius:.3g})", fontsize=9
        )
        for ax in axes.ravel():
            _cell_edges(ax, cell, color="k", lw=0.6)
            ax.set_aspect("equal")
            ax.set_xlabel("x (flow)")
            ax.set_ylabel("y (gradient)")
        fig.suptitle(rf"{self.title()}: the sieves of window {w} ($t_\mathrm{{ref}}$ = {self.t_ref:.4g})", fontsize=10)
        return save_png(fig, out)


def run_overview(rundir: str | Path, out: str | Path, eta: dict | None = None) -> Path:
    """Temperature, potential energy and shear stress against strain, steady window shaded."""
    rd = RunDir(rundir)
    spec = rd.spec()
    th = read_thermo(rd.thermo)
    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True, constrained_layout=True)
    strain = th["strain"]
    axes[0].plot(strain, th["temp"], lw=0.8)
    axes[0].axhline(spec.system.temperature, color="k", ls="--", lw=0.8, label="target")
    axes[0].set_ylabel("T (peculiar)")
    legend_beside(axes[0])
    axes[1].plot(strain, th["pe"], lw=0.8, color="C2")
    axes[1].set_ylabel("potential energy / N")
    axes[2].plot(strain, -th["pxy_virial"], lw=0.6, color="C3", label=r"$\sigma_{xy}$ virial (eq. 1)")
    axes[2].plot(strain, -th["pxy"], lw=0.6, color="C0", alpha=0.6, label=r"$\sigma_{xy}$ kinetic + virial")
    if eta is not None:
        axes[2].axhline(
            eta["shear_stress"],
            color="k",
            lw=1.0,
            label=rf"steady mean: $\eta$ = {eta['eta']:.3g} $\pm$ {eta['eta_error']:.2g}",
        )
    axes[2].set_ylabel(r"shear stress $-P_{xy}$")
    axes[2].set_xlabel(r"strain $\dot\gamma t$")
    legend_beside(axes[2])
    for ax in axes:
        ax.axvspan(spec.steady_strain, strain.max(), color="0.9", zorder=0)
    fig.suptitle(
        f"{spec.system.name}: N = {spec.system.n_particles}, T = {spec.system.temperature:g}, "
        rf"$\dot\gamma$ = {spec.rate.rate:g} (shaded: steady window)"
    )
    return save_png(fig, out)


def dynamics(rundir: str | Path, out: str | Path) -> Path:
    """MSD (with the cage size) and χ4(t) (with t_χ) of one analysed run."""

    rd = RunDir(rundir)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    m, o = rd.result("msd"), rd.result("overlap")
    if m is None:
        no_data(axes[0], "no msd product")
    else:
        ax = axes[0]
        for name, curve in zip(m["species"], m["msd_species"]):
            ax.loglog(m["times"], curve, lw=1, label=f"MSD of r̃, {name}")
        if m.get("msd_cage_relative"):
            ax.loglog(m["times"], m["msd_cage_relative"], "k--", lw=1, label="cage-relative MSD")
        if m.get("cage_size"):
            ax.axhline(m["cage_size"], color="C3", lw=0.8, label=rf"$l_c^2$ = {m['cage_size']:.3g}")
        ax.set_xlabel("t")
        ax.set_ylabel("MSD")
        plain_log_ticks(ax)
        legend_beside(ax, fontsize=8)
    if o is None:
        no_data(axes[1], "no overlap product")
    else:
        ax = axes[1]
        ax.errorbar(
            o["times"],
            o["chi4"],
            yerr=o.get("chi4_error"),
            fmt="C0-o",
            ms=3,
            capsize=2,
            label=r"$\chi_4$ collective (eq. 14), jackknife errors",
        )
        ax.errorbar(
            o["times"],
            o["chi4_self"],
            yerr=o.get("chi4_self_error"),
            fmt="C1-s",
            ms=3,
            capsize=2,
            label=r"$\chi_4$ self",
        )
        ax.set_xscale("log")
        ax.axvline(
            o["t_chi"],
            color="C0",
            ls=":",
            label=rf"$t_\chi$ = {o['t_chi']:.3g} $\pm$ {o.get('t_chi_error', float('nan')):.2g}",
        )
        ax.set_xlabel("t")
        ax.set_ylabel(r"$\chi_4$")
        plain_log_ticks(ax)
        legend_beside(ax, fontsize=8)
    info = rd.info()
    fig.suptitle(f"{info.name} at rate {info.rate:g}: steady-state dynamics ({rd.path.name})")
    return save_png(fig, out)


def run_figures(rundir: str | Path, out: str | Path | None = None, cluster: int | None = None) -> list[Path]:
    """Every per-run panel, as PNG files in ``out`` (default: the run directory)."""
    figs = RunFigures(rundir, cluster)
    out = Path(out) if out is not None else figs.rd.path
    out.mkdir(parents=True, exist_ok=True)
    made = [
        figs.fig1b(out / "fig1b.png"),
        figs.fig1c(out / "fig1c.png"),
        figs.fig2(out / "fig2.png"),
        figs.fig2ij(out / "fig2ij.png"),
        figs.fig3a(out / "fig3a.png"),
        figs.fig8(out / "fig8.png"),
        figs.fig9(out / "fig9.png"),
    ]
    if (phm := figs.rd.result("phm")) is not None:
        made.append(fig4a(phm, out / "fig4a.png"))
    return [p for p in made if p is not None]


def fig4a(stz: dict, out: Path, slab: float = 2.0) -> Path | None:
    """Fig. 4a: the softest PHMs of a cluster at t0 in the shear plane (arrows π_k, largest first; the
    core ringed), its members (the cluster at t0) and the cage jumps of [t0, t1] (crosses). The
    cluster shown is a typical one: of those with spots, the one whose size is nearest the median.
    In 3D only a slab |z − z_core| < ``slab`` about each mode's core is drawn."""
    shown = [c for c in stz["clusters"] if c.get("soft_modes") and c.get("spots")]
    if not shown:
        return None
    sizes = np.array([c["members"] for c in shown])
    c = shown[int(np.argmin(np.abs(sizes - np.median(sizes))))]
    pos = np.array(c["positions"])
    centre = pos.mean(axis=0)
    jumps = np.array(c["jumps"]).reshape(-1, pos.shape[1])
    fig, axes = plt.subplots(
        1, len(c["soft_modes"]), figsize=(4.6 * len(c["soft_modes"]), 4.4), constrained_layout=True, squeeze=False
    )
    for k, (ax, pi) in enumerate(zip(axes[0], c["soft_modes"])):
        pi = np.array(pi)
        mode = c["modes"][k]
        core = pos[c["members_list"].index(mode["particle"])]
        near = np.abs(pos[:, 2] - core[2]) < slab if pos.shape[1] == 3 else np.ones(len(pos), bool)
        jump_near = np.abs(jumps[:, 2] - core[2]) < slab if pos.shape[1] == 3 else np.ones(len(jumps), bool)
        p, q = pos[near] - centre, pi[near]
        ax.scatter(p[:, 0], p[:, 1], s=12, color="0.8", label="members at $t_0$")
        size = np.linalg.norm(q[:, :2], axis=1)
        strong = size >= 0.05 * size.max()  # the paper keeps the projections of significant magnitude
        scale = 1.5 / size.max()  # the largest arrow 1.5 d0 long
        ax.quiver(
            p[strong, 0],
            p[strong, 1],
            scale * q[strong, 0],
            scale * q[strong, 1],
            angles="xy",
            scale_units="xy",
            scale=1,
            width=0.005,
            color="C0",
            label="PHM (largest 1.5 $d_0$)",
        )
        ax.plot(core[0] - centre[0], core[1] - centre[1], "o", ms=14, mfc="none", mec="C3", mew=1.5, label="core")
        if jump_near.any():
            d = jumps[jump_near] - centre  # stored beside the members (phm stage)
            ax.plot(d[:, 0], d[:, 1], "x", color="C1", ms=5, label=r"cage jumps in $[t_0, t_1]$")
        ax.set_aspect("equal")
        ax.set(xlabel="x − x_c", ylabel="y − y_c")
        ax.set_title(
            f"PHM {k + 1}: κ = {mode['stiffness']:.3g}, e = {mode['participation']:.3f}, "
            f"extension at {mode['extension_angle']:.0f}°",
            loc="left",
            fontsize=9,
        )
        if k == len(c["soft_modes"]) - 1:  # one legend, beside the last panel
            legend_beside(ax)
    where = f", slab |z − z_core| < {slab:g}" if pos.shape[1] == 3 else ""
    fig.suptitle(
        f"window {c['window']}, region {c['region']}: {c['members']} particles, {len(c['spots'])} spots{where}",
        fontsize=9,
    )
    return save_png(fig, out)
