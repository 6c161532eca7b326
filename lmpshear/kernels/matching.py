"""Do the soft spots (PHM cores) predict where a cluster yields? The paper matches PHM cores with
the cage-jump spots of [t0, t1] (≈ 3 d0 across) and finds ≈ 75% matched, without a tolerance. Here
the match is a distance: a spot is matched when a core lies within ``radius`` of its centre, and the
ratio is reported as a function of the radius beside a null model (the same number of cores placed
on random particles of the cluster), so that chance is visible.

Spots: the jumps of [t0, t1], carried by the affine flow to the cell at t0 (Cell.carry), linked when
closer than ``link`` (single linkage); a spot is a group of at least ``min_jumps`` (a concentration of
jumps, as the paper's Fig. 2f marks them), its centre the mean of its jumps' minimum images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from lmpshear.cell import Cell


def spots(jumps: np.ndarray, cell: Cell, link: float, min_jumps: int = 1) -> list[np.ndarray]:
    """Centres (D,) of the groups of at least ``min_jumps`` jump positions (n, D) linked by separations
    below ``link``."""
    n = len(jumps)
    if n == 0:
        return []
    i, j = np.triu_indices(n, 1)
    close = np.linalg.norm(cell.minimum_image(jumps[j] - jumps[i]), axis=1) < link
    graph = scipy.sparse.coo_matrix((np.ones(close.sum()), (i[close], j[close])), shape=(n, n))
    count, label = scipy.sparse.csgraph.connected_components(graph, directed=False)
    centres = []
    for k in range(count):
        members = jumps[label == k]
        if len(members) < min_jumps:
            continue
        centres.append(members[0] + cell.minimum_image(members - members[0]).mean(axis=0))
    return centres


def nearest(points: np.ndarray, to: np.ndarray, cell: Cell) -> np.ndarray:
    """Distance from each of ``points`` to the nearest of ``to`` (minimum image); inf if ``to`` is empty."""
    if len(to) == 0:
        return np.full(len(points), np.inf)
    d = (points[:, None, :] - to[None, :, :]).reshape(-1, points.shape[1])
    return np.linalg.norm(cell.minimum_image(d), axis=1).reshape(len(points), len(to)).min(axis=1)


@dataclass(frozen=True)
class Match:
    radius: np.ndarray
    spots_matched: np.ndarray  # fraction of spots with a core within the radius (the paper's ratio)
    cores_matched: np.ndarray  # fraction of cores with a spot within the radius
    chance: np.ndarray  # spots matched by as many cores on random particles of the cluster (mean)
    chance_sd: np.ndarray
    n_spots: int
    n_cores: int

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}


def match(
    cores: np.ndarray,
    spot_centres: np.ndarray,
    candidates: np.ndarray,
    cell: Cell,
    radii: np.ndarray,
    trials: int = 200,
    seed: int = 0,
) -> Match:
    """Matching ratios at each radius; ``candidates`` (the cluster's particle positions) are where the
    null model puts its random cores."""
    radii = np.asarray(radii, dtype=float)
    spot_d = nearest(spot_centres, cores, cell)
    core_d = nearest(cores, spot_centres, cell)
    rng = np.random.default_rng(seed)
    null = np.empty((trials, len(radii)))
    for t in range(trials):
        fake = candidates[rng.choice(len(candidates), size=len(cores), replace=False)]
        d = nearest(spot_centres, fake, cell)
        null[t] = (d[:, None] < radii[None, :]).mean(axis=0) if len(d) else np.nan
    frac = lambda d: (d[:, None] < radii[None, :]).mean(axis=0) if len(d) else np.full(len(radii), np.nan)  # noqa: E731
    return Match(radii, frac(spot_d), frac(core_d), null.mean(axis=0), null.std(axis=0), len(spot_centres), len(cores))


def pooled(rows: list[dict], radii: np.ndarray, n_cores: int) -> dict:
    """The matching ratios of several clusters pooled (each cluster weighted by its spots: the ratio of
    every spot of every cluster), beside the null model's, and the statistics of the cores. ``rows``
    are per-cluster dicts with ``match`` (the softest ``n_cores`` cores) and ``match_all`` (every core;
    Match.as_dict), and ``modes`` (core dicts); a skipped cluster carries ``skipped`` instead."""
    radii = np.asarray(radii, dtype=float)
    sums: dict[str, dict] = {
        key: {"spots": 0, "matched": np.zeros(len(radii)), "chance": np.zeros(len(radii))} for key in ("", "_all")
    }
    for row in rows:
        for key, acc in sums.items():
            if "match" + key in row:
                m = row["match" + key]
                acc["spots"] += m["n_spots"]
                acc["matched"] += np.array(m["spots_matched"]) * m["n_spots"]
                acc["chance"] += np.array(m["chance"]) * m["n_spots"]
    n_spots = sums[""]["spots"]
    spots = max(n_spots, 1)
    modes = [m for r in rows for m in r.get("modes", [])]
    angles = [m["extension_angle"] for r in rows for m in r.get("modes", [])[:n_cores]]
    at = int(np.argmin(np.abs(radii - 1.5)))
    ratio = {f"{what}{key}": acc[what] / spots for key, acc in sums.items() for what in ("matched", "chance")}
    return {
        "clusters": rows,
        "radii": radii.tolist(),
        **{k: v.tolist() for k, v in ratio.items()},
        "spots": n_spots,
        "core_angles": angles,
        "summary": {
            "clusters": len(rows),
            "spots": n_spots,
            **{f"{k}_at_1.5": float(v[at]) for k, v in ratio.items()},
            # with the sign fixed by ε_xy ≥ 0 the axis lies in [0°, 90°]: chance is 1/2
            "cores_within_22.5_of_45": float(np.mean([abs(x - 45) < 22.5 for x in angles])) if angles else None,
            "modes_touching_frozen": float(np.mean([m["touches_frozen"] for m in modes])) if modes else None,
            "shell_weight": float(np.mean([m["shell_weight"] for m in modes])) if modes else None,
            "skipped": sum("skipped" in r for r in rows),
        },
    }
