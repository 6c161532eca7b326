"""``lmpshear analyze``: analysis stages of one run directory.

Each stage reads run files, writes one product (JSON, written atomically) and is skipped when its
product is newer than its inputs and was made with the same parameters; ``force`` redoes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lmpshear.analysis.viscosity import viscosity
from lmpshear.errors import UserError
from lmpshear.rundir import RunDir, atomic_write_json
from lmpshear.store import read_thermo


@dataclass(frozen=True)
class Stage:
    name: str
    product: str
    inputs: tuple[str, ...]
    compute: Callable[[RunDir, dict], dict]
    describe: Callable[[dict], str]


def _viscosity(rd: RunDir, params: dict) -> dict:
    spec = rd.spec()
    result = viscosity(read_thermo(rd.thermo), spec.rate.rate, spec.steady_strain, params["blocks"])
    return result.as_dict() | {"summary": result.summary()}


STAGES = {s.name: s for s in (
    Stage("viscosity", "viscosity.json", ("thermo.csv", "config.toml"), _viscosity, lambda r: r["summary"]),
)}


def _up_to_date(rd: RunDir, stage: Stage, params: dict) -> dict | None:
    product = rd.product(stage.product)
    if not product.exists():
        return None
    stored = json.loads(product.read_text())
    if stored.get("params") != params:
        return None
    mtime = product.stat().st_mtime
    if any(rd.product(f).stat().st_mtime > mtime for f in stage.inputs if rd.product(f).exists()):
        return None
    return stored


def analyze(rundir: str | Path, only: list[str] | None = None, force: bool = False, blocks: int = 10,
            echo: Callable[[str], None] = print) -> dict[str, dict]:
    rd = RunDir(rundir)
    rd.require_prepared()
    if rd.status().get("state") != "complete":
        raise UserError(f"{rd.path} has not finished running (state: {rd.status().get('state')}); "
                        "run it first with: lmpshear run RUNDIR")
    names = only or list(STAGES)
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise UserError(f"unknown stage(s) {', '.join(unknown)}; available: {', '.join(STAGES)}")
    results = {}
    for name in names:
        stage = STAGES[name]
        params = {"blocks": blocks}
        stored = None if force else _up_to_date(rd, stage, params)
        if stored is not None:
            echo(f"{name}: up to date ({stage.product}); {stage.describe(stored['result'])}")
            results[name] = stored["result"]
            continue
        result = stage.compute(rd, params)
        atomic_write_json(rd.product(stage.product), {"stage": name, "params": params, "result": result})
        echo(f"{name}: {stage.describe(result)} -> {stage.product}")
        results[name] = result
    return results
