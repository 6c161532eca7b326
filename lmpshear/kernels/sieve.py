"""The sieve: dynamic regions, clusters of cage jumps, by the paper's coarse and undersize sieves
(Methods); its two null models and the significance rule beside the paper's ρ_th (:class:`Sieve`).

Reference frame. The cage jumps of a window of length t_χ happen at different times; each is carried
affinely to a common reference time t_ref (the window's end), x ← x + γ̇ (t_ref − t)(y − y_lo), and
wrapped into the Lees–Edwards cell at t_ref. All grids are grids of that cell's *fractional*
coordinates: blocks are parallelepipeds of the sheared cell, so their periodic neighbours are
exactly the sliding images and no cluster is cut at the boundary.

Coarse sieve. ρ is the count of jumps per block of edge L/n (``blocks``; the paper's BD choice, n =
10, or 20 at the highest rate), or (``kernel``) jumps convolved with e^{−r/d}, d = first minimum of
g(r) (the paper's MD choice), evaluated on the same grid. The background ρ_th comes from the
paper's iteration (:func:`background_threshold`). Each local maximum of ρ is a centre; a cluster
grows outwards from it while ρ ≥ ρ_th (and ρ > 0: a block without jumps is never in a region).
Where the regions of two centres meet, each block goes to the centre its steepest ascent leads to
(watershed basins; adjacent maxima of equal value are one centre). A basin smaller than C'·V_stz
joins, smallest first, the neighbouring basin it touches most (faces, edges and corners counted:
noise maxima inside one region must not cut it up); clusters still below C'·V_stz are dropped (C' = 2; V_stz
the volume of a cage-jump spot of
diameter ``stz_diameter``, 3 d_0 from the paper's Fig. 2f). This is the paper's lower limit, applied
where its Fig. 9c applies it: to the coarse clusters. Pruning again after the undersize sieve
(``prune_fine``) is an option, off by default.

Undersize sieve. A fine grid of spacing d' over each coarse cluster: a node is kept when the jump
density within √2 d'/2 of it is at least ρ_th (per volume). The paper takes d' = L/30 (3D) or L/80
(2D), "close to d_0" at its sizes (0.9 d_0 and 2 d_0); the default (spec.Analysis.cluster_fine) keeps those
spacings at any box size (L/30 of a small box would leave the spheres almost empty), ``fine`` sets nodes per
edge. The kept nodes are
the cluster; V_c = nodes × node volume, ξ_c = (3V_c/4π)^{1/3} (3D) or (V_c/π)^{1/2} (2D).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numba
import numpy as np
from scipy import ndimage

from lmpshear.cell import Cell, circular_mean
from lmpshear.kernels.cagejumps import null_jumps
from lmpshear.neighbors import CellGrid, bin_of, binned, fractional, minimum_image
from lmpshear.spec import Analysis


def grid_shape(dimension: int, n: int) -> tuple[int, ...]:
    return (n,) * dimension


def block_counts(s: np.ndarray, dimension: int, n: int) -> np.ndarray:
    """Jumps per block of an n^D grid of fractional coordinates s (wrapped in [0, 1))."""
    idx = np.minimum((s[:, :dimension] * n).astype(np.int64), n - 1)
    counts = np.zeros(grid_shape(dimension, n))
    np.add.at(counts, tuple(idx.T), 1.0)
    return counts


def kernel_density(s: np.ndarray, cell: Cell, n: int, d: float) -> np.ndarray:
    """Jumps convolved with e^{−r/d} (r the minimum-image distance in the sheared cell), on the
    nodes of an n^D fractional grid: circular convolution by FFT, exact for the periodic lattice."""
    dim = cell.dimension
    counts = block_counts(s, dim, n)
    offsets = np.stack(np.meshgrid(*[np.fft.fftfreq(n, 1.0 / n) / n] * dim, indexing="ij"), axis=-1)
    frac = np.zeros(offsets.shape[:-1] + (3,))
    frac[..., :dim] = offsets
    cart = frac.reshape(-1, 3) @ cell.matrix()
    dist = np.linalg.norm(cell.minimum_image(cart), axis=1).reshape(offsets.shape[:-1])
    kernel = np.exp(-dist / d)
    return np.real(np.fft.ifftn(np.fft.fftn(counts) * np.fft.fftn(kernel)))


def background_threshold(rho: np.ndarray, tolerance: float, max_iter: int = 1000) -> float:
    """The paper's iteration: ρ_0 = max ρ; ρ_{i+1} = mean of ρ below ρ_i, until |ρ_{i+1} − ρ_i|/ρ_{i+1} < C."""
    values = np.asarray(rho, dtype=np.float64).ravel()
    current = values.max()
    for _ in range(max_iter):
        below = values[values < current]
        if len(below) == 0:
            return float(current)
        avg = below.mean()
        if avg == 0 or abs(avg - current) / avg < tolerance:
            return float(avg)
        current = avg
    return float(current)


def periodic_label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (faces and edges: full connectivity) of a periodic boolean grid."""
    structure = np.ones((3,) * mask.ndim, dtype=bool)
    labels, n = ndimage.label(mask, structure=structure)
    parent = np.arange(n + 1)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for axis in range(mask.ndim):  # merge labels that touch across each periodic face (and its edges)
        first = np.take(labels, 0, axis=axis)
        last = np.take(labels, -1, axis=axis)
        for shift in _face_shifts(mask.ndim - 1):
            moved = np.roll(last, shift, axis=tuple(range(mask.ndim - 1))) if shift else last
            both = (first > 0) & (moved > 0)
            for a, b in zip(first[both], moved[both]):
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(a) for a in range(n + 1)])
    _, compact = np.unique(roots, return_inverse=True)
    return compact[labels], int(compact.max())


def _neighbour_shifts(ndim: int) -> np.ndarray:
    return np.stack(np.meshgrid(*[[-1, 0, 1]] * ndim, indexing="ij"), -1).reshape(-1, ndim)


def watershed_basins(rho: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label each block of ``mask`` with the local maximum of ρ that its steepest ascent reaches
    (periodic grid, full neighbourhood; ties go to the lower flat index). 0 outside the mask."""
    flat_index = np.arange(rho.size).reshape(rho.shape)
    best_value, best_index = rho.copy(), flat_index.copy()
    for shift in _neighbour_shifts(rho.ndim):
        if not shift.any():
            continue
        v = np.roll(rho, tuple(shift), axis=tuple(range(rho.ndim)))
        i = np.roll(flat_index, tuple(shift), axis=tuple(range(rho.ndim)))
        better = (v > best_value) | ((v == best_value) & (i < best_index) & (v > rho))
        best_value = np.where(better, v, best_value)
        best_index = np.where(better, i, best_index)
    peak = best_value == rho  # no neighbour higher: a local maximum (plateaus included)
    centres, _ = periodic_label(peak & mask)
    pointer = np.where(peak, flat_index, best_index).ravel()
    while True:  # pointer jumping to the maximum at the end of each ascent
        nxt = pointer[pointer]
        if np.array_equal(nxt, pointer):
            break
        pointer = nxt
    labels = centres.ravel()[pointer].reshape(rho.shape)
    labels[~mask] = 0
    _, compact = np.unique(labels, return_inverse=True)
    compact = compact.reshape(rho.shape)
    return compact, int(compact.max())


def merge_small(labels: np.ndarray, min_blocks: float) -> tuple[np.ndarray, int]:
    """Merge each basin of fewer than ``min_blocks`` blocks, smallest first (ties: lower label), into the
    neighbouring basin it touches most (ties: lower label; periodic, full neighbourhood); relabel 1..n.

    The contacts (block, neighbouring block of another basin) are counted once and carried through
    the merges, so that thousands of noise basins cost one pass over the grid rather than one each."""
    labels = np.asarray(labels)
    n = int(labels.max()) if labels.size else 0
    sizes = np.bincount(labels.ravel(), minlength=n + 1).astype(np.int64)
    contact: list[dict[int, int]] = [{} for _ in range(n + 1)]
    flat = labels.ravel().astype(np.int64)
    for shift in _neighbour_shifts(labels.ndim):
        if not shift.any():
            continue
        other = np.roll(labels, tuple(shift), axis=tuple(range(labels.ndim))).ravel()
        both = (flat > 0) & (other > 0) & (flat != other)
        pairs, counts = np.unique(flat[both] * (n + 1) + other[both], return_counts=True)
        for pair, count in zip(pairs.tolist(), counts.tolist()):
            a, b = divmod(pair, n + 1)
            contact[a][b] = contact[a].get(b, 0) + count
    into = np.arange(n + 1)  # the basin each label went into (followed to the end below)
    queue = [(int(sizes[k]), k) for k in range(1, n + 1) if 0 < sizes[k] < min_blocks]
    heapq.heapify(queue)
    while queue:
        size, k = heapq.heappop(queue)
        if into[k] != k or sizes[k] != size or not contact[k]:
            continue  # merged, grown since (a newer entry is queued), or touching no basin (never will)
        j = min(contact[k], key=lambda m: (-contact[k][m], m))
        for m, count in contact[k].items():  # j's contacts become those of k and j together
            if m != j:
                contact[j][m] = contact[j].get(m, 0) + count
                contact[m][j] = contact[m].get(j, 0) + contact[m].pop(k)
        del contact[j][k]
        contact[k] = {}
        sizes[j] += sizes[k]
        sizes[k] = 0
        into[k] = j
        if sizes[j] < min_blocks:
            heapq.heappush(queue, (int(sizes[j]), j))
    while True:  # a label merged into one that merged later: follow to the end
        nxt = into[into]
        if np.array_equal(nxt, into):
            break
        into = nxt
    _, compact = np.unique(into[labels], return_inverse=True)
    compact = compact.reshape(labels.shape)
    return compact, int(compact.max())


def _face_shifts(ndim: int) -> list:
    """Diagonal neighbours across a periodic face: every shift in {−1, 0, 1}^ndim."""
    return [tuple(v) for v in _neighbour_shifts(ndim)] if ndim else [()]


@dataclass
class Region:
    """One dynamic region at t_ref: its fine-grid nodes (fractional index triples) and size."""

    label: int
    nodes: np.ndarray  # (m, D) int indices into the fine grid
    volume: float
    radius: float
    centre: np.ndarray  # (3,) Cartesian, inside the cell at t_ref
    jumps: int  # jumps inside its coarse cluster
    node_density: np.ndarray | None = None  # jumps per volume around each node (the undersize sieve's field)


@numba.njit(parallel=True, cache=True)
def _count_within(nodes, events, h, h_inv, lo, n, periodic_z, radius):
    """For each node, the number of events closer than ``radius`` (minimum image)."""
    s, order, start, table = binned(events, lo, h_inv, n)
    sn = fractional(nodes, lo, h_inv)
    out = np.zeros(nodes.shape[0], dtype=np.int64)
    r2 = radius * radius
    for k in numba.prange(nodes.shape[0]):
        here = bin_of(sn[k, 0], sn[k, 1], sn[k, 2], n)
        # the cell-list walk (lmpshear.neighbors says why each kernel writes its own)
        for t in range(table.shape[1]):
            c = table[here, t]
            for m in range(start[c], start[c + 1]):
                j = order[m]
                dx, dy, dz = minimum_image(s[j, 0] - sn[k, 0], s[j, 1] - sn[k, 1], s[j, 2] - sn[k, 2], h, periodic_z)
                if dx * dx + dy * dy + dz * dz < r2:
                    out[k] += 1
    return out


def coarse_field(events: np.ndarray, cell: Cell, coarse: int, kernel_length: float | None) -> np.ndarray:
    """The coarse sieve's density field: jump counts in coarse blocks, or the jumps smoothed by e^{−r/d}
    (``kernel_length`` d) on nodes 1/coarse apart, both on the sheared cell's fractional grid."""
    s = cell.fractional(events)
    return kernel_density(s, cell, coarse, kernel_length) if kernel_length else block_counts(s, cell.dimension, coarse)


def demarcate(
    events: np.ndarray,
    cell: Cell,
    coarse: int,
    *,
    fine: int | None,
    threshold: float | None,
    tolerance: float,
    kernel_length: float | None,
    stz_diameter: float,
    min_stz: float,
    prune_fine: bool,
) -> tuple[list[Region], dict]:
    """Dynamic regions from cage-jump positions ``events`` (already carried into ``cell``).

    ``coarse``: blocks per edge; ``kernel_length``: e^{−r/d} smoothing (MD) instead of block counts;
    ``threshold``: ρ_th in jumps per coarse block (None: :func:`background_threshold` of this field).
    ``prune_fine``: drop clusters below C'·V_stz after the undersize sieve too (the paper prunes the
    coarse clusters only). Returns the regions and a dict of the intermediate fields (rho, threshold,
    coarse labels) and the sieve's diagnostics (mean jumps per block, kept volume fraction)."""
    dim = cell.dimension
    fine = fine or max(4, round(cell.lx / Analysis.unset_default("cluster_fine", dim)))  # nodes that far apart
    rho = coarse_field(events, cell, coarse, kernel_length)
    rho_th = background_threshold(rho, tolerance) if threshold is None else float(threshold)
    volume = cell.volume
    block_volume = volume / coarse**dim
    if kernel_length:  # the kernel's integral turns the smoothed field into jumps per block
        rho_per_volume = rho_th / kernel_integral(kernel_length, dim)
    else:
        rho_per_volume = rho_th / block_volume
    labels, n_labels = watershed_basins(rho, (rho >= rho_th) & (rho > 0))
    stz = np.pi / 6 * stz_diameter**3 if dim == 3 else np.pi / 4 * stz_diameter**2
    labels, n_labels = merge_small(labels, min_stz * stz / block_volume)
    # fine grid nodes (vertices of boxes of edge L/fine) whose coarse block belongs to a cluster
    axes = np.meshgrid(*[np.arange(fine)] * dim, indexing="ij")
    node_idx = np.stack([a.ravel() for a in axes], axis=1)
    node_frac = np.zeros((len(node_idx), 3))
    node_frac[:, :dim] = node_idx / fine
    coarse_of_node = labels[tuple(np.minimum((node_frac[:, :dim] * coarse).astype(int), coarse - 1).T)]
    h = cell.matrix()
    lo = np.asarray(cell.lo, dtype=np.float64)
    node_cart = lo + node_frac @ h
    node_volume = volume / fine**dim
    radius = np.sqrt(2.0) * (volume ** (1.0 / dim) / fine) / 2.0
    sphere = np.pi * 4 / 3 * radius**3 if dim == 3 else np.pi * radius**2
    candidates = coarse_of_node > 0
    ev = np.zeros((len(events), 3))
    ev[:, :dim] = events[:, :dim]
    grid = CellGrid.for_cell(cell, radius, max_bins=max(len(events), 1))
    counts = np.zeros(len(node_idx), dtype=np.int64)
    if candidates.any() and len(events):
        counts[candidates] = _count_within(
            np.ascontiguousarray(node_cart[candidates]),
            ev,
            grid.h,
            grid.h_inv,
            grid.lo,
            grid.n,
            grid.periodic_z,
            radius,
        )
    keep = candidates & (counts / sphere >= rho_per_volume)
    regions: list[Region] = []
    blocks = np.bincount(labels.ravel(), minlength=n_labels + 1)
    jumps_in = np.bincount(labels.ravel(), weights=rho.ravel(), minlength=n_labels + 1)
    kept_nodes = np.flatnonzero(keep)
    by_label = np.argsort(coarse_of_node[kept_nodes], kind="stable")
    kept_nodes = kept_nodes[by_label]
    bounds = np.searchsorted(coarse_of_node[kept_nodes], np.arange(n_labels + 2))
    for label in range(1, n_labels + 1):
        if blocks[label] * block_volume < min_stz * stz:
            continue
        mine = kept_nodes[bounds[label] : bounds[label + 1]]
        if not len(mine) or (prune_fine and len(mine) * node_volume < min_stz * stz):
            continue
        vol = len(mine) * node_volume
        regions.append(
            Region(
                len(regions) + 1,
                node_idx[mine],
                vol,
                float(radius_of_volume(vol, dim)),
                _periodic_centre(node_frac[mine], h, lo),
                int(jumps_in[label]) if not kernel_length else -1,
                counts[mine] / sphere,
            )
        )
    fields = {
        "rho": rho,
        "threshold": rho_th,
        "threshold_per_volume": rho_per_volume,
        "coarse_labels": labels,
        "fine": fine,
        "coarse": coarse,
        "kept_fraction": sum(r.volume for r in regions) / volume,
    }
    return regions, fields


def radius_of_volume(volume, dimension: int):
    """ξ of a volume V: (3V/4π)^{1/3} in 3D, (V/π)^{1/2} in 2D (the paper's ξ_c)."""
    v = np.asarray(volume, dtype=float)
    return (3 * v / (4 * np.pi)) ** (1 / 3) if dimension == 3 else np.sqrt(v / np.pi)


def dispersion_index(events: np.ndarray, cell: Cell, block: float) -> tuple[float, float]:
    """Index of dispersion D = var/mean of the jump counts in blocks of edge ≈ ``block`` (fractional
    grid of the sheared cell), and its z-score against Poisson: for independent, uniformly scattered
    jumps D = 1 with standard error √(2/(M − 1)) over M blocks; clustered jumps give D > 1."""
    dim = cell.dimension
    n = max(2, int(round(cell.lx / block)))
    counts = block_counts(cell.fractional(events), dim, n).ravel()
    if counts.sum() == 0:
        return float("nan"), float("nan")
    d = float(counts.var(ddof=1) / counts.mean())
    return d, float((d - 1.0) / np.sqrt(2.0 / (len(counts) - 1)))


def kernel_integral(d: float, dim: int) -> float:
    """∫ e^{−r/d} d^D r: 8π d³ (3D), 2π d² (2D)."""
    return 8 * np.pi * d**3 if dim == 3 else 2 * np.pi * d**2


def _periodic_centre(frac: np.ndarray, h: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Centre of a set of fractional points on the torus (circular mean per axis)."""
    return lo + circular_mean(frac) @ h


def sphere_offsets(cell: Cell, fine: int, radius: float) -> np.ndarray:
    """Fine-grid index offsets (m, D) of the nodes within ``radius`` of a node, in the sheared cell."""
    dim = cell.dimension
    h = cell.matrix()[:dim, :dim]
    widths = cell.widths()[:dim]
    reach = np.ceil(radius * fine / widths).astype(int) + 1
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    offsets = np.stack([g.ravel() for g in grids], axis=1)
    cart = (offsets / fine) @ h
    return offsets[np.linalg.norm(cart, axis=1) <= radius]


def contrast_spheres(
    regions: list[Region],
    cell: Cell,
    fine: int,
    radius: float,
    count: int,
    rng: np.random.Generator,
    attempts: int = 400,
) -> tuple[list[Region], list[Region]]:
    """The paper's contrast regions (Fig. 1b, 2i–j) at t_ref: up to ``count`` spheres of ``radius`` that
    touch no dynamic region ("quiet"), and up to ``count`` that hold parts of two or more
    ("straddling"), centred on fine-grid nodes drawn at random; as Regions on the same fine grid."""
    dim = cell.dimension
    lookup = region_lookup(regions, dim, fine)
    offsets = sphere_offsets(cell, fine, radius)
    node_volume = cell.volume / fine**dim
    lo, h = np.asarray(cell.lo, dtype=np.float64), cell.matrix()
    quiet: list[Region] = []
    straddling: list[Region] = []
    for _ in range(attempts):
        if len(quiet) >= count and len(straddling) >= count:
            break
        centre = rng.integers(0, fine, size=dim)
        nodes = (centre + offsets) % fine
        found = np.unique(lookup[tuple(nodes.T)])
        kind = quiet if found.max() == 0 else straddling if (found > 0).sum() >= 2 else None
        if kind is None or len(kind) >= count:
            continue
        frac = np.zeros(3)
        frac[:dim] = centre / fine
        volume = len(nodes) * node_volume
        kind.append(Region(len(kind) + 1, np.unique(nodes, axis=0), volume, radius, lo + frac @ h, 0))
    return quiet, straddling


def region_lookup(regions: list[Region], dimension: int, fine: int) -> np.ndarray:
    """A fine grid holding each node's region label (0: none), for O(1) membership tests."""
    grid = np.zeros(grid_shape(dimension, fine), dtype=np.int32)
    for reg in regions:
        grid[tuple(reg.nodes.T)] = reg.label
    return grid


def labels_at(points: np.ndarray, times, rate: float, t_ref: float, cell_ref: Cell, lookup: np.ndarray) -> np.ndarray:
    """Region label of each point (0: none): the point is carried by the affine flow to t_ref and
    looked up in the fine grid (nearest node). O(points), whatever the number of nodes."""
    dim = cell_ref.dimension
    fine = lookup.shape[0]
    s = cell_ref.fractional(cell_ref.carry(points, times, rate, t_ref))
    idx = np.rint(s[:, :dim] * fine).astype(np.int64) % fine
    return lookup[tuple(idx.T)]


def significance_threshold(rho: np.ndarray, null_values: np.ndarray, fdr: float) -> float:
    """The smallest field value that is significant against a null at false-discovery rate ``fdr``
    (Benjamini–Hochberg over every node of the field); +inf where none is. Each node's p-value is the
    null's empirical tail, p = (1 + #null ≥ value) / (1 + #null), from ``null_values``: the same field
    made from jumps without spatial correlation (pooled over windows and draws)."""
    values = np.asarray(rho, dtype=np.float64).ravel()
    null = np.sort(np.asarray(null_values, dtype=np.float64).ravel())
    p = (1.0 + len(null) - np.searchsorted(null, values, side="left")) / (1.0 + len(null))
    order = np.argsort(p, kind="stable")
    m = len(p)
    passing = np.nonzero(p[order] <= fdr * np.arange(1, m + 1) / m)[0]
    if not len(passing):
        return float("inf")
    return float(values[order[: passing[-1] + 1]].min())


#: draws of the particles null pooled for the significance rule's p-values
NULL_DRAWS = 8


def window_multiple(
    jumps: int,
    duration: float,
    cell,
    coarse: int,
    kernel: float | None,
    multiple: float,
    min_per_block: float,
    t_chi: float,
) -> tuple[float, str]:
    """The window length in units of t_χ: ``multiple``, or the smallest whole multiple of t_χ above it at
    which the coarse sieve sees ``min_per_block`` jumps per block (per kernel volume ∫e^{−r/d}) on
    average, from the run's mean jump rate: the paper's iteration finds no background below that
    (spec.Analysis.min_jumps_per_block). It is never lengthened beyond a quarter of the steady
    window (P̄_c needs about four windows); the summary's warnings then say the counts are short."""
    dim = cell.dimension
    cells = cell.volume / kernel_integral(kernel, dim) if kernel else coarse**dim
    per_block = jumps / cells * t_chi / duration if duration > 0 else 0.0  # jumps per block in one t_χ
    if min_per_block <= 0 or per_block * multiple >= min_per_block:
        return float(multiple), f"cluster_window = {multiple:g} t_chi"
    if per_block <= 0:
        return float(multiple), f"cluster_window = {multiple:g} t_chi (no jumps to lengthen it by)"
    longer = float(np.ceil(min_per_block / per_block - 1e-9))
    room = max(float(multiple), float(np.floor(duration / (4 * t_chi))))
    if longer > room:
        return room, (
            f"{room:g} t_chi: {longer:g} would give >= {min_per_block:g} jumps per coarse block (one t_chi "
            f"holds {per_block:.3g}) but a window is at most a quarter of the steady window: run longer"
        )
    return longer, (
        f"{longer:g} t_chi: the smallest whole multiple with >= {min_per_block:g} jumps per coarse block "
        f"(one t_chi holds {per_block:.3g}; min_jumps_per_block)"
    )


class Sieve:
    """The sieve over a run's windows, ``windows`` a list of (t_ref, index of its cell, jumps carried to
    t_ref, their rows): each window's own ρ_th from a first pass (the paper's iteration), their mean
    ``background`` (the paper's average over t_ini), and ρ_th under ``rule`` ("background", or
    "significance": the nodes significant against unclustered jumps at false-discovery rate ``fdr``, the
    reference being the particles null's fields pooled over ``NULL_DRAWS`` draws of ``rng``). ``options``:
    :func:`demarcate`'s (fine, tolerance, kernel_length, stz_diameter, min_stz, prune_fine)."""

    def __init__(
        self,
        windows: list,
        cells: list,
        unwrapped: np.ndarray,
        rate: float,
        coarse: int,
        *,
        options: dict,
        rule: str,
        fdr: float,
        rng: np.random.Generator,
    ):
        self.windows, self.cells, self.coarse, self.options, self.rule, self.fdr = (
            windows,
            cells,
            coarse,
            options,
            rule,
            fdr,
        )
        self.dim = cells[0].dimension
        self.nulls = null_jumps(windows, cells, unwrapped, rate, rng)
        self.first_pass = [
            demarcate(ev, cells[k], coarse, threshold=None, **options)[1] if len(ev) else None
            for _, k, ev, _ in windows
        ]
        thresholds = [f["threshold"] for f in self.first_pass if f is not None]
        self.background = float(np.mean(thresholds)) if thresholds else float("nan")
        draws = [self.nulls["particles"]] + [
            null_jumps(windows, cells, unwrapped, rate, rng)["particles"] for _ in range(NULL_DRAWS - 1)
        ]
        self.null_fields = np.concatenate(
            [self.field(ev, k).ravel() for events in draws for (_, k, _, _), ev in zip(windows, events) if len(ev)]
            or [np.zeros(0)]
        )
        self.thresholds: list[float] = []  # each window's ρ_th under the rule, as the clusters were found

    def field(self, events: np.ndarray, k: int) -> np.ndarray:
        return coarse_field(events, self.cells[k], self.coarse, self.options["kernel_length"])

    def threshold(
        self, events: np.ndarray, k: int, field: np.ndarray | None, background: float, rule: str | None = None
    ) -> float:
        """A window's ρ_th under ``rule`` (default: the sieve's; ``field``: its coarse field where already made)."""
        if (rule or self.rule) == "background":
            return background
        if not len(events):
            return float("inf")
        return significance_threshold(field if field is not None else self.field(events, k), self.null_fields, self.fdr)

    def window(self, w: int) -> tuple[list[Region], dict]:
        """Window ``w``'s regions under the rule, and the sieve's fields (:func:`demarcate`)."""
        _, k, events, _ = self.windows[w]
        first = self.first_pass[w]
        threshold = self.threshold(events, k, first["rho"] if first else None, self.background)
        self.thresholds.append(threshold)
        return demarcate(events, self.cells[k], self.coarse, threshold=threshold, **self.options)

    def diagnostics(self, w: int, n: int) -> dict:
        """What window ``w``'s jumps give the sieve to work with (``n``: the particles)."""
        t_ref, k, events, _ = self.windows[w]
        cell, kernel = self.cells[k], self.options["kernel_length"]
        dispersion, z_score = (
            dispersion_index(events, cell, self.options["stz_diameter"]) if len(events) else (np.nan, np.nan)
        )
        first = self.first_pass[w]
        return {
            "window": w,
            "t_ref": float(t_ref),
            "jumps": len(events),
            "jumps_per_particle": len(events) / n,
            "own_threshold": first["threshold"] if first is not None else None,
            # jumps per coarse block, or per kernel volume ∫e^{−r/d} (kernel sieve)
            "mean_jumps_per_block": len(events)
            * (kernel_integral(kernel, self.dim) / cell.volume if kernel else 1.0 / self.coarse**self.dim),
            "kept_fraction": 0.0,
            "dispersion_index": dispersion,
            "dispersion_z": z_score,
        }

    def significance_pass(self) -> dict:
        """The sieve on the real jumps under the significance rule, whatever rule the run's clusters use (no
        tracing): clusters per window, kept volume and ξ_c of the mean volume of every region (so that
        Table I carries ν_c under both rules; NaN where no window holds a significant region)."""
        kept, counts, volumes = [], [], []
        for (_, k, ev, _), first in zip(self.windows, self.first_pass):
            if first is None:  # a window without jumps
                continue
            threshold = self.threshold(ev, k, first["rho"], self.background, "significance")
            regions, sieved = demarcate(ev, self.cells[k], self.coarse, threshold=threshold, **self.options)
            kept.append(sieved["kept_fraction"])
            counts.append(len(regions))
            volumes += [r.volume for r in regions]
        dim = self.dim
        return {
            "fdr": self.fdr,
            "kept_fraction": float(np.mean(kept)) if kept else float("nan"),
            "clusters_per_window": float(np.mean(counts)) if counts else float("nan"),
            "clusters": len(volumes),
            "xi_c": float(radius_of_volume(np.mean(volumes), dim)) if volumes else float("nan"),
            "xi_c_error": (
                float(
                    radius_of_volume(np.mean(volumes), dim)
                    * np.std(volumes, ddof=1)
                    / np.sqrt(len(volumes))
                    / (dim * np.mean(volumes))
                )
                if len(volumes) > 1
                else float("nan")
            ),
        }

    def null_pass(self) -> dict:
        """What the sieve finds on each null: the kept volume fraction, clusters per window and ξ_c of the mean
        region volume (every region: nulls have no yields), at the real jumps' ρ_th (the same sieve: does the
        real field hold more above it than noise does?) and, as ``kept_fraction_own``, at the null's own ρ_th
        (the background iteration on noise scatters by ±10%, and the kept volume with it)."""
        out = {}
        for name, events_of in self.nulls.items():
            # the coarse fields alone give the null's own ρ_th (as demarcate's first pass would)
            fields = [self.field(ev, k) if len(ev) else None for (_, k, _, _), ev in zip(self.windows, events_of)]
            found = [background_threshold(f, self.options["tolerance"]) for f in fields if f is not None]
            own = float(np.mean(found)) if found else float("nan")
            kept, kept_own, counts, volumes = [], [], [], []
            for (_, k, _, _), ev, field in zip(self.windows, events_of, fields):
                if not len(ev):
                    continue
                threshold, threshold_own = (
                    self.threshold(ev, k, field, self.background),
                    self.threshold(ev, k, field, own),
                )
                regions, sieved = demarcate(ev, self.cells[k], self.coarse, threshold=threshold, **self.options)
                kept.append(sieved["kept_fraction"])
                counts.append(len(regions))
                volumes += [r.volume for r in regions]
                kept_own.append(
                    sieved["kept_fraction"]
                    if threshold_own == threshold
                    else demarcate(ev, self.cells[k], self.coarse, threshold=threshold_own, **self.options)[1][
                        "kept_fraction"
                    ]
                )
            out[name] = {
                "kept_fraction": float(np.mean(kept)) if kept else float("nan"),
                "clusters_per_window": float(np.mean(counts)) if counts else float("nan"),
                "xi_c": float(radius_of_volume(np.mean(volumes), self.dim)) if volumes else float("nan"),
                "threshold_own": own,
                "kept_fraction_own": float(np.mean(kept_own)) if kept_own else float("nan"),
            }
        return out


def sieve_warnings(
    rho_th: float,
    used: list[dict],
    span: np.ndarray,
    n_windows: int,
    trace: float,
    kernel: float | None,
    min_per_block: float,
) -> list[str]:
    """Where the coarse sieve cannot mean much, and which parameter to change."""
    out = []
    what = "cluster_window (a longer window)" + ("" if kernel else " or cluster_block (larger blocks)")
    if used and not rho_th > 0:
        out.append(
            f"the background threshold rho_th is {rho_th:.3g}: its iteration collapsed on sparse jump counts "
            f"and every block with a jump is kept; raise {what}"
        )
    if used:
        per_block = float(np.mean([d["mean_jumps_per_block"] for d in used]))
        if per_block < min_per_block:
            out.append(
                f"only {per_block:.3g} cage jumps per coarse block per window (fewer than "
                f"{min_per_block:g}): Poisson noise dominates the density field; raise {what}"
            )
    if not span.any():
        out.append(
            f"P_c has no fully covered span: {n_windows} windows, fewer than the {trace:g} window lengths "
            "a trace reaches; run longer or raise max_windows"
        )
    return out
