"""The finite-size table of issue 37 from the collected folders (N*-rate*/): every length against the
box at one rate, written to table.md:

    python analysis/results/finite-size-bd45/table.py

ξ_c at the absolute block of N = 20000 (the run's own clusters product: the spec's cluster_block is a
length; 1.357 at rate 20, 2.714 at rate 10), at the paper's L/20 and L/10 of each box (clusters_block-B.json,
sieve_variant.py), of the
sieve's uniform null, and under the significance rule; ξ_4 and ξ_jj need no sieve; η must not move.
"""

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
L20000 = 27.14  # d_b: the box of N = 20000 at phi = 0.45 (inputs/bd45.toml)


def pm(value, error=None, digits=3):
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}" + (f" ± {error:.{digits}f}" if error is not None and math.isfinite(error) else "")


def row(folder: Path) -> dict:
    n = int(folder.name.split("-")[0][1:])
    rate = float(folder.name.split("rate")[1])
    box = L20000 * (n / 20000) ** (1 / 3)
    read = lambda name: json.loads((folder / name).read_text())  # noqa: E731
    v, c = read("viscosity.json")["result"], read("clusters_summary.json")
    s4, gjj, overlap = (
        read("s4.json")["result"]["summary"],
        read("gjj.json")["result"]["summary"],
        read("overlap.json")["result"],
    )
    s = c["summary"]
    out = {
        "N": n,
        "rate": rate,
        "L": box,
        "eta": pm(v["eta"], v["eta_error"], 4),
        "xi_c (the run's block)": pm(s["xi_c"], c["uncertainty"]["xi_c"]) + f" [{s['coarse_block']:.3f}]",
        "xi_c uniform null": pm(s["null"]["uniform"]["xi_c"]),
        "kept": f"{s['kept_fraction']:.2f}",
        "significance: clusters, xi_c": f"{s['significance']['clusters']}, {pm(s['significance']['xi_c'])}",
        "xi_4 (t_chi)": pm(s4["xi4_t_chi"], s4["xi4_t_chi_error"]),
        "xi_4 (tau_alpha)": pm(s4["xi4_tau_alpha"], s4["xi4_tau_alpha_error"]),
        "xi_jj (t_chi)": pm(gjj["xi_jj_t_chi"], gjj["xi_jj_t_chi_error"]),
        "t_chi": pm(overlap["t_chi"], overlap["t_chi_error"], 4),
    }
    for share in (20, 10):
        block = box / share
        if abs(block - s["coarse_block"]) < 1e-3 * block:
            out[f"xi_c (L/{share})"] = out["xi_c (the run's block)"]
            continue
        variants = [json.loads(p.read_text()) for p in folder.glob("clusters_block-*.json")]
        match = [d for d in variants if abs(d["params"]["cluster_block"] - block) < 1e-3 * block]
        out[f"xi_c (L/{share})"] = (
            (pm(match[0]["summary"]["xi_c"], match[0]["uncertainty"]["xi_c"]) + f" [{block:.3f}]")
            if match
            else f"– [{block:.3f}]"
        )
    return out


rows = [
    row(f)
    for f in sorted(
        HERE.glob("N*-rate*"), key=lambda p: (float(p.name.split("rate")[1]), int(p.name[1:].split("-")[0]))
    )
]
keys = list(rows[0])
lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
lines += ["| " + " | ".join(f"{r[k]:.2f}" if k == "L" else str(r[k]) for k in keys) + " |" for r in rows]
(HERE / "table.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
