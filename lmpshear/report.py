"""``lmpshear report``: results across run directories (one per shear rate): the flow curve."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmpshear.errors import UserError
from lmpshear.rundir import RunDir, atomic_write_json, read_json


def find_runs(paths: list[Path]) -> list[RunDir]:
    """Run directories named, or found one level below a named folder."""
    runs = []
    for p in paths:
        p = Path(p)
        if RunDir(p).config.is_file() or RunDir(p).source.is_file():
            runs.append(RunDir(p))
        elif p.is_dir():
            runs += [RunDir(q) for q in sorted(p.iterdir()) if RunDir(q).config.is_file()]
        else:
            raise UserError(f"{p} is not a run directory")
    if not runs:
        raise UserError("no run directories found in " + ", ".join(map(str, paths)))
    return runs


@dataclass
class AnalysedRun:
    """What the report takes from one analysed run: its flow-curve point, its system, and (where the
    clusters stage ran) the cluster summary, the yielded clusters' volumes and the STZ products."""

    name: str
    rate: float
    eta: float
    eta_error: float
    system: tuple  # (label, dimension, the paper's Table I row or None)
    clusters: dict | None = None  # clusters.json's summary
    volumes: np.ndarray | None = None  # of the clusters with a yield (t2), for ν_c
    phm: dict | None = None  # phm.json's result
    facilitation: dict | None = None  # facilitation.json's result
    lengths: dict | None = None  # ξ_4 (s4.json) and ξ_jj (gjj.json) with their errors: the summaries' keys
    t_chi_error: float = float("nan")  # overlap.json's (the clusters' summary carries t_chi itself)
    seeds: int = 1  # runs (seeds) averaged into this one (combine_seeds)


def analysed_run(rd: RunDir) -> AnalysedRun:
    """A finished run directory's numbers, from its verified store's products as `analyze` left them
    (viscosity made only where it is missing: a product made with other parameters is read, never
    made again)."""
    from lmpshear import integrity
    from lmpshear.stages.pipeline import analyze

    if rd.product("viscosity").exists():
        integrity.require_intact(rd, reading="reported")
        v = rd.made("viscosity")
    else:
        v = analyze(rd.path, only=["viscosity"], echo=lambda s: None)["viscosity"]
    run = AnalysedRun(str(rd.path), v["rate"], v["eta"], v["eta_error"], system_of(rd))
    result = rd.result("clusters")  # from `lmpshear analyze`; not computed here
    if result is not None:
        run.clusters = result["summary"]
        run.volumes = np.array([r["volume"] for r in result["clusters"] if "t2" in r])
        run.phm, run.facilitation = rd.result("phm"), rd.result("facilitation")
    run.lengths = lengths_of(rd.result("s4"), rd.result("gjj"), run.clusters)
    run.t_chi_error = (rd.result("overlap") or {}).get("t_chi_error", float("nan"))
    return run


def lengths_of(s4: dict | None, gjj: dict | None, clusters: dict | None = None) -> dict | None:
    """A run's lengths beside the paper's ξ_c: those that need no sieve, from its s4 and gjj results, and
    ξ_c under the sieve's significance rule from its clusters summary (None where none was made)."""
    significance = (clusters or {}).get("significance")
    if s4 is None and gjj is None and significance is None:
        return None
    out = (s4 or {}).get("summary", {}) | (gjj or {}).get("summary", {})
    if significance is not None:
        out |= {"xi_c_significance": significance["xi_c"], "xi_c_significance_error": significance["xi_c_error"]}
    return out


def sieve_checks(clusters: dict) -> dict:
    """What tells the liquid's ξ_c from the sieve's grain, from a clusters summary: ξ_c of the same
    sieve on uniformly scattered jumps (its null) and the fraction of the cell the significance rule
    keeps (NaN where the stage made neither)."""
    uniform = (clusters.get("null") or {}).get("uniform") or {}
    significance = clusters.get("significance") or {}
    return {"xi_c_null": uniform.get("xi_c", np.nan), "kept_significant": significance.get("kept_fraction", np.nan)}


#: the cluster summary's numbers that a rate's seeds are averaged over
SEED_AVERAGED = ("eta_c", "P_c_mean", "sigma_c_y", "xi_c", "t_y", "t_chi")


def _mean_over_seeds(values, errors=None) -> tuple[float, float]:
    """The mean over a rate's seeds and its error: the seeds' own errors (propagated to the mean) and
    the spread between seeds (the standard error of the mean) added in quadrature. One seed: its own."""
    v = np.asarray(values, dtype=float)
    e = np.zeros_like(v) if errors is None else np.asarray(errors, dtype=float)
    ok = np.isfinite(v)
    if not ok.any():
        return float("nan"), float("nan")
    v, e, n = v[ok], e[ok], ok.sum()
    within = np.sqrt(np.nansum(e**2)) / n
    between = v.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
    return float(v.mean()), float(np.hypot(within, between))


def combine_seeds(runs: list[AnalysedRun]) -> list[AnalysedRun]:
    """One run per rate: where seeds share a rate, η, the cluster summary's numbers and the lengths are
    their means (errors: ``_mean_over_seeds``), and the yielded clusters' volumes are pooled."""
    by_rate: dict[float, list[AnalysedRun]] = {}
    for run in runs:
        by_rate.setdefault(float(run.rate), []).append(run)
    out = []
    for rate, group in sorted(by_rate.items()):
        if len(group) == 1:
            out.append(group[0])
            continue
        eta, eta_error = _mean_over_seeds([r.eta for r in group], [r.eta_error for r in group])
        run = AnalysedRun(
            f"mean of {len(group)} seeds: " + ", ".join(Path(r.name).name for r in group),
            rate,
            eta,
            eta_error,
            group[0].system,
            seeds=len(group),
        )
        summaries = [r.clusters for r in group if r.clusters is not None]
        if summaries:
            run.clusters = dict(summaries[0])
            for key in SEED_AVERAGED:
                run.clusters[key] = _mean_over_seeds([c.get(key, np.nan) for c in summaries])[0]
            run.volumes = np.concatenate([r.volumes for r in group if r.volumes is not None])
            run.t_chi_error = _mean_over_seeds(
                [r.clusters["t_chi"] for r in group if r.clusters], [r.t_chi_error for r in group if r.clusters]
            )[1]
        lengths = [r.lengths for r in group if r.lengths]
        if lengths:
            keys = [k for k in lengths[0] if not k.endswith("_error") and f"{k}_error" in lengths[0]]
            run.lengths = {}
            for k in keys:
                run.lengths[k], run.lengths[f"{k}_error"] = _mean_over_seeds(
                    [d.get(k, np.nan) for d in lengths], [d.get(f"{k}_error", np.nan) for d in lengths]
                )
        run.phm, run.facilitation = group[0].phm, group[0].facilitation  # the first seed's: not averaged
        out.append(run)
    return out


def _check_rate_bounds(min_rate: float | None, max_rate: float | None) -> None:
    for name, bound in (("--min-rate", min_rate), ("--max-rate", max_rate)):
        if bound is not None and not (np.isfinite(bound) and bound > 0):
            raise UserError(f"{name} {bound:g}: must be a positive number")
    if min_rate is not None and max_rate is not None and min_rate > max_rate:
        raise UserError(f"--min-rate {min_rate:g} is above --max-rate {max_rate:g}")


def report(
    paths: list[Path],
    out: Path,
    min_rate: float | None = None,
    max_rate: float | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """The report over the finished runs among ``paths`` (run directories, or folders of them)."""
    _check_rate_bounds(min_rate, max_rate)
    runs = []
    for rd in find_runs(paths):
        if not rd.complete():
            echo(f"report: skipping {rd.path} (not complete)")
            continue
        runs.append(analysed_run(rd))
    return write_report(runs, out, min_rate, max_rate, echo)


def write_report(
    runs: list[AnalysedRun],
    out: Path,
    min_rate: float | None = None,
    max_rate: float | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """The flow curve with its λ fit, and where runs have convective clusters, η_c, ξ_c, t_y vs rate, the
    STZ panels and Table I (λ/(D+1), ν_c), into OUT as JSON, CSV and PNG."""
    import pandas as pd

    from lmpshear.kernels.flowcurve import flow_curve
    from lmpshear.rate_figures import flow_curve_figure

    _check_rate_bounds(min_rate, max_rate)
    if not runs:
        raise UserError("no finished runs to report on")
    systems = {r.system[:2] for r in runs}
    if len(systems) > 1:
        raise UserError(
            "these runs are of different liquids or dimensions ("
            + ", ".join(f"{name} in {dim}D" for name, dim in sorted(systems))
            + "): one flow curve and one power law per system; report each on its own"
        )
    for run in runs:
        echo(f"report: {Path(run.name).name}: rate {run.rate:g}, eta = {run.eta:.5g} +/- {run.eta_error:.2g}")
    runs = combine_seeds(runs)
    for run in runs:
        if run.seeds > 1:
            echo(f"report: rate {run.rate:g}: {run.name}: eta = {run.eta:.5g} +/- {run.eta_error:.2g}")
    from lmpshear.kernels.scaling import LENGTHS

    cluster_rows, volumes, stz_rows, lengths = [], {}, [], {}
    for run in runs:
        if run.clusters is None:
            continue
        c = run.clusters
        cluster_rows.append(
            {"rate": run.rate, "eta": run.eta, "run": run.name}
            | {k: c.get(k) for k in ("eta_c", "P_c_mean", "sigma_c_y", "xi_c", "t_y", "t_chi")}
            | {"t_chi_error": run.t_chi_error}
            | sieve_checks(c)
        )
        stz = {name: getattr(run, name) for name in ("phm", "facilitation") if getattr(run, name) is not None}
        if stz:
            stz_rows.append(
                {"rate": run.rate, "xi_c": c.get("xi_c")}
                | stz
                | {"xi_alpha": stz.get("facilitation", {}).get("xi_alpha", np.nan)}
            )
            cluster_rows[-1] |= {
                "xi_alpha": stz_rows[-1]["xi_alpha"],
                "matched_at_1.5": stz.get("phm", {}).get("summary", {}).get("matched_at_1.5"),
                "chance_at_1.5": stz.get("phm", {}).get("summary", {}).get("chance_at_1.5"),
            }
        if run.volumes is not None:
            volumes[float(run.rate)] = run.volumes
        if run.lengths:
            lengths[float(run.rate)] = run.lengths
            cluster_rows[-1] |= {k: run.lengths.get(k) for key in LENGTHS for k in (key, f"{key}_error")}
        missing = [k for k in ("eta_c", "xi_c", "t_y") if not np.isfinite(c.get(k, np.nan))]
        if missing:
            echo(
                f"report: {Path(run.name).name}: no {', '.join(missing)} (no clusters with a yield); left out of "
                "those panels and of Table I"
            )
    fc = flow_curve(
        [r.rate for r in runs],
        [r.eta for r in runs],
        [r.eta_error for r in runs],
        [r.name for r in runs],
        min_rate=min_rate,
        max_rate=max_rate,
    )
    label, dimension, paper = runs[0].system
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "flowcurve.json", fc.as_dict() | {"system": label, "dimension": dimension})
    seeds = {r.name: r.seeds for r in runs}
    pd.DataFrame(
        {
            "rate": fc.rates,
            "eta": fc.eta,
            "eta_error": fc.eta_error,
            "in_fit": fc.in_fit,
            "seeds": [seeds[name] for name in fc.runs],
            "run": fc.runs,
        }
    ).to_csv(out / "flowcurve.csv", index=False)
    png = flow_curve_figure(fc, out / "flowcurve.png", label)
    if fc.fit:
        f = fc.fit
        echo(
            f"report: eta ~ rate^-lambda, lambda = {f.exponent:.3f} +/- {f.exponent_error:.3f} over rates "
            f"{f.rate_range[0]:g}..{f.rate_range[1]:g} ({f.n_points} points, reduced chi2 {f.reduced_chi2:.2g})"
        )
    else:
        echo("report: fewer than 3 rates in the shear-thinning regime; no power-law fit")
    echo(f"report: wrote {out / 'flowcurve.json'}, {out / 'flowcurve.csv'} and {png}")
    if cluster_rows:
        from lmpshear.kernels.scaling import table1_row
        from lmpshear.rate_figures import rate_figure, table1_figure

        row = table1_row(label, dimension, fc, volumes, paper, lengths)
        pd.DataFrame(cluster_rows).sort_values("rate").to_csv(out / "clusters_vs_rate.csv", index=False)
        echo(
            f"report: {len(cluster_rows)} runs with convective clusters: wrote {out / 'clusters_vs_rate.csv'} "
            f"and {rate_figure(cluster_rows, out / 'clusters_vs_rate.png', row)} (eta_c vs eta, xi_c, t_y vs t_chi)"
        )
        if stz_rows:
            from lmpshear.rate_figures import stz_figure

            echo(
                f"report: {len(stz_rows)} runs with PHM / facilitation products: wrote "
                f"{stz_figure(stz_rows, out / 'stz_vs_rate.png')} (alpha(r), xi_alpha and xi_c vs rate, matching)"
            )
        from lmpshear.rate_figures import lengths_figure

        echo(
            "report: every length against the rate: "
            + str(lengths_figure([(label, cluster_rows, row.as_dict() if row else None)], out / "lengths_vs_rate.png"))
        )
        if row is None:
            echo(
                "report: no Table I row: it needs a lambda fit and >= 3 of its rates with yielded clusters "
                "(both, with two)"
            )
        else:
            atomic_write_json(out / "table1.json", row.as_dict())
            d = row.as_dict()
            pd.DataFrame(
                [
                    {
                        k: (" ".join(f"{x:g}" for x in d[k]) if k == "rates" else d[k])
                        for k in (
                            "system",
                            "dimension",
                            "lambda",
                            "lambda_error",
                            "lambda_over_D1",
                            "lambda_over_D1_error",
                            "nu_c",
                            "nu_c_error",
                            "nu_c_reduced_chi2",
                            "rates",
                        )
                    }
                    | (d["lengths"] or {})
                ]
            ).to_csv(out / "table1.csv", index=False)
            echo(
                f"report: Table I: lambda/(D+1) = {row.lam_over_D1:.3f} +/- {row.lam_over_D1_error:.3f}, nu_c = "
                f"{row.nu_c:.3f} +/- {row.nu_c_error:.3f} (reduced chi2 {row.nu_c_reduced_chi2:.3g}) "
                f"over rates {', '.join(f'{r:g}' for r in row.rates)}"
                + (f" (paper: {row.paper['lambda_over_D1']}, {row.paper['nu_c']})" if row.paper else "")
                + f" -> {out / 'table1.csv'}, {table1_figure(row, out / 'table1.png')}"
            )
    return fc.as_dict()


def system_of(rd: RunDir) -> tuple[str, int, str | None]:
    """(label, dimension, the paper's Table I row) of a run's model system."""
    if rd.source.is_file():
        data = read_json(rd.source)
        return data.get("name", rd.path.name), int(data.get("dimension", 3)), None
    return spec_system(rd.spec())


def spec_system(spec) -> tuple[str, int, str | None]:
    """(label, dimension, the paper's Table I row) of a run spec's model system."""
    from lmpshear.kernels.scaling import paper_system

    s = spec.system
    paper = paper_system(spec.engine, s.dimension, getattr(s, "volume_fraction", None))
    return paper or s.name, s.dimension, paper


def report_campaign(
    campaign_file: Path,
    out: Path | None = None,
    min_rate: float | None = None,
    max_rate: float | None = None,
    echo: Callable[[str], None] = print,
    partial: bool = False,
) -> dict:
    """A report per system (label) of a campaign, in OUT/LABEL, and OUT/campaign.json + runs.csv with
    every run's numbers and OUT/table1.csv with every system's Table I row. Every run must be analysed
    (the missing ones are named, exit 2) unless ``partial``, and at least one always."""
    import pandas as pd

    from lmpshear import campaign as campaigns

    c = campaigns.load(campaign_file)
    campaigns.check_directories(c)
    missing = [f"{r.name} ({campaigns.run_state(r).state})" for r in c.runs if not RunDir(r.path).analysed()]
    if len(missing) == len(c.runs):
        raise UserError(f"{c.file}: no run of the campaign is analysed yet ({', '.join(missing)}): nothing to report")
    if missing and not partial:
        raise UserError(
            f"{c.file}: {len(missing)} of {len(c.runs)} runs are not analysed: {', '.join(missing)}; "
            "finish them (`lmpshear submit`), or report the others with --partial"
        )
    # every run read first, so that a damaged one is named before anything is written, never dropped
    # silently with its intact siblings (left out, and said so, only under --partial)
    analysed, damaged = {}, []
    for r in c.runs:
        if RunDir(r.path).analysed():
            try:
                analysed[r.name] = analysed_run(RunDir(r.path))
            except UserError as exc:
                damaged.append(f"{r.name}: {exc}")
    if damaged and not partial:
        raise UserError(
            f"{c.file}: {len(damaged)} analysed run{'s are' if len(damaged) > 1 else ' is'} damaged, "
            "so no report was written:\n  "
            + "\n  ".join(damaged)
            + "\nrepair them (the message says how), or report the others with --partial"
        )
    out = Path(out) if out is not None else c.report_dir
    out.mkdir(parents=True, exist_ok=True)
    rows, table1, systems = [], [], {}
    for line in damaged:
        echo(f"report: left out (damaged; --partial): {line}")
    for label in c.labels():
        runs = [r for r in c.runs if r.label == label]
        ready = [r for r in runs if r.name in analysed]
        for r in runs:
            if not RunDir(r.path).analysed():
                echo(f"report: {r.name}: left out ({campaigns.run_state(r).state}, not analysed; --partial)")
        if not ready:
            continue
        echo(f"report: {label}: {len(ready)} of {len(runs)} runs")
        systems[label] = write_report([analysed[r.name] for r in ready], out / label, min_rate, max_rate, echo)
        for r in ready:
            rows.append({"system": label, "rate": r.rate, "seed": r.seed, "run": str(r.path)} | _run_numbers(r.path))
        if (out / label / "table1.json").exists():
            table1.append(pd.read_csv(out / label / "table1.csv"))
    if rows:
        pd.DataFrame(rows).sort_values(["system", "rate"]).to_csv(out / "runs.csv", index=False)
    if table1:
        pd.concat(table1).to_csv(out / "table1.csv", index=False)
    result = {"campaign": c.name, "file": str(c.file), "systems": sorted(systems), "runs": rows, "missing": missing}
    atomic_write_json(out / "campaign.json", result)
    echo(
        f"report: {c.name}: {campaigns.plural(len(rows), 'run')} in {campaigns.plural(len(systems), 'system')} -> "
        f"{out / 'campaign.json'}"
        + (f", {out / 'runs.csv'}" if rows else "")
        + (f", {out / 'table1.csv'}" if table1 else "")
    )
    return result


def _run_numbers(path: Path) -> dict:
    """The headline numbers of one analysed run: eta, t_chi, P_c, eta_c/eta, xi_c, t_y (NaN where absent)."""
    nan = float("nan")

    def product(name: str) -> dict:
        return RunDir(path).result(name) or {}

    v, o, c = product("viscosity"), product("overlap"), product("clusters").get("summary", {})
    eta = v.get("eta", nan)
    return {
        "eta": eta,
        "eta_error": v.get("eta_error", nan),
        "t_chi": o.get("t_chi", nan),
        "t_chi_error": o.get("t_chi_error", nan),
        "clusters": c.get("clusters", 0),
        "P_c_mean": c.get("P_c_mean", nan),
        "eta_c": c.get("eta_c", nan),
        "eta_c_over_eta": (c.get("eta_c", nan) or nan) / eta if eta else nan,
        "xi_c": c.get("xi_c", nan),
        "t_y": c.get("t_y", nan),
        "xi_alpha": product("facilitation").get("xi_alpha", nan),
        "phm_matched_at_1.5": product("phm").get("summary", {}).get("matched_at_1.5", nan),
        "phm_chance_at_1.5": product("phm").get("summary", {}).get("chance_at_1.5", nan),
    }
