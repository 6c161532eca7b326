"""Run specs: presets, derived quantities, round trips and validation errors."""

import math
from pathlib import Path

import pytest
import tomli_w
from conftest import cli

from lmpshear import config, shipped
from lmpshear.errors import UserError


def test_presets_match_the_papers_methods():
    ka = config.load("ka3d")
    s = ka.system
    assert (s.dimension, s.n_particles, s.number_density, s.temperature) == (3, 16500, 1.2, 0.45)
    assert s.counts() == [13200, 3300]
    assert math.isclose(s.box_length**3 * 1.2, 16500)
    pairs = {(p.a, p.b): p for p in s.pairs()}
    assert (pairs[0, 1].epsilon, pairs[0, 1].sigma) == (1.5, 0.8)
    assert math.isclose(pairs[1, 1].cutoff, 2.5 * 0.88)  # per-pair cutoff by default
    paper_dt = {0.003: 0.2, 0.005: 0.15, 0.015: 0.1, 0.03: 0.1, 0.06: 0.05}
    assert {r.rate: r.sample_interval for r in ka.protocol.rates} == paper_dt

    sd = config.load("softdisk2d").system
    assert (sd.dimension, sd.n_particles, sd.number_density, sd.temperature) == (2, 20000, 0.8, 0.526)
    assert sd.counts() == [10000, 10000]
    assert [sp.mass for sp in sd.species] == [1.0, 2.0]
    pairs = {(p.a, p.b): p for p in sd.pairs()}
    assert math.isclose(pairs[0, 1].sigma, 1.2) and math.isclose(pairs[1, 1].sigma, 1.4)
    assert all(p.cutoff == 4.5 for p in pairs.values())
    sd_rates = {r.rate: r.sample_interval for r in config.load("softdisk2d").protocol.rates}
    assert sd_rates == {1e-4: 2.0, 5e-4: 1.0, 1e-3: 0.5, 5e-3: 0.1, 1e-2: 0.05}


def test_every_preset_loads_and_round_trips():
    for name in shipped.preset_names():
        spec = config.load(name)
        again = config.load_dict(spec.to_dict(), source=name)
        assert again.to_dict() == spec.to_dict()
        assert again.system.pairs() == spec.system.pairs()


def test_a_directory_named_like_a_preset_does_not_hide_it(tmp_path, monkeypatch):
    # a demo's output directory called ka3d-demo sat in the working directory of the next `lmpshear demo`
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ka3d-demo").mkdir()
    (tmp_path / "mine").mkdir()
    assert config.locate("ka3d-demo") == shipped.preset_path("ka3d-demo")
    assert config.load("ka3d-demo").system.n_particles == 4000
    with pytest.raises(UserError, match="mine is a directory, not a spec file"):
        config.locate("mine")
    with pytest.raises(UserError, match="config file not found: absent.toml"):
        config.locate("absent.toml")
    (tmp_path / "own.toml").write_text('extends = "ka3d-tiny"\n')
    assert config.locate("own.toml") == Path("own.toml")


def test_global_cutoff_is_the_literal_reading(tmp_path):
    path = tmp_path / "ka.toml"
    path.write_text(tomli_w.dumps({"extends": "ka3d", "system": {"potential": {"cutoff_mode": "global"}}}))
    spec = config.load(path)
    assert all(p.cutoff == 2.5 for p in spec.system.pairs())


def test_counts_are_exact_and_sum_to_n():
    spec = config.load("ka3d-tiny")
    data = spec.to_dict()
    data["system"]["n_particles"] = 1007  # 0.8 and 0.2 of it: 805.6 and 201.4
    s = config.load_dict(data).system
    assert s.counts() == [806, 201] and sum(s.counts()) == 1007


def test_volume_fraction_sets_the_box():
    data = config.load("softdisk2d-tiny").to_dict()
    del data["system"]["number_density"]
    data["system"]["volume_fraction"] = 0.5
    s = config.load_dict(data).system
    occupied = 100 * math.pi * 1.0**2 / 4 + 100 * math.pi * 1.4**2 / 4
    assert math.isclose(s.volume, occupied / 0.5)


def test_derived_steps():
    spec = config.load("ka3d-tiny").select_rate(None)
    assert spec.sample_steps == 10  # 0.05 / 0.005
    assert spec.n_samples == 100  # strain 0.3 at rate 0.06 = 5 time units / 0.05
    assert spec.shear_steps == 1000


def _errors(data) -> str:
    with pytest.raises(UserError) as err:
        config.load_dict(data, source="test")
    return str(err.value)


def test_validation_reports_every_problem_at_once():
    data = config.load("ka3d-tiny").to_dict()
    data["system"]["colour"] = "blue"  # unknown key
    del data["system"]["temperature"]  # missing field
    data["system"]["species"][0]["fraction"] = 0.7  # fractions sum to 0.9
    data["protocol"]["rates"][0]["rate"] = -0.06  # negative rate
    data["protocol"]["rates"][0]["sample_interval"] = 0.0512  # not a multiple of dt
    msg = _errors(data)
    for needle in (
        "system.colour: unknown key",
        "system.temperature: missing",
        "fractions sum to 0.9",
        "rates[0].rate: must be > 0",
        "not a whole number of timesteps",
    ):
        assert needle in msg, msg


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d["system"].update(dimension=4), "system.dimension: must be one of 2, 3"),
        (lambda d: d["protocol"]["rates"][0].update(rate=0.0), "must be > 0"),
        (lambda d: d["protocol"].update(timestep="0.005"), "must be a number"),
        (
            lambda d: d["system"]["potential"]["pairs"].update({"A-C": {"epsilon": 1.0, "sigma": 1.0}}),
            "must name two species",
        ),
        (lambda d: d["system"]["potential"].update(exponent=12), "only for style 'ipl'"),
        (lambda d: d["system"].update(volume_fraction=0.5), "exactly one of number_density or volume_fraction"),
        (lambda d: d["protocol"].update(steady_time=1.0), "exactly one of steady_strain or steady_time"),
        (lambda d: d["protocol"]["rates"][0].update(sample_interval=10.0), "strain per sample"),
        (lambda d: d["protocol"]["rates"][0].update(thermo_interval=0.03), "must divide sample_interval"),
        (lambda d: d["system"]["species"][0].update(name="A B"), "not a valid species name"),
        (lambda d: d["protocol"].update(init="file"), "protocol.init_file: missing"),
        (lambda d: d["protocol"].update(outer_skin=1.0), "protocol.outer_skin: only for engine 'bd'"),
        (lambda d: d["protocol"]["rates"][0].update(analysis={"cluster_blok": 2.0}), "rates[0].analysis.cluster_blok"),
        (lambda d: d["protocol"]["rates"][0].update(analysis={"cluster_block": -1.0}), "must be >= 0"),
        (lambda d: d["protocol"]["rates"][0].update(analysis=3), "must be a table of [analysis] keys"),
        (lambda d: d.update(analysis={"p_c_clusters": "some"}), "analysis.p_c_clusters: must be one of"),
        (lambda d: d.update(analysis={"atomic_stress": "half"}), "analysis.atomic_stress: must be one of"),
    ],
)
def test_single_validation_errors(mutate, needle):
    data = config.load("ka3d-tiny").to_dict()
    mutate(data)
    assert needle in _errors(data)


def test_extends_merges_tables_and_replaces_arrays(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'extends = "ka3d"\n[system]\nn_particles = 400\n[[protocol.rates]]\nrate = 0.5\nsample_interval = 0.1\n'
    )
    spec = config.load(path)
    assert spec.system.n_particles == 400 and spec.system.temperature == 0.45
    assert spec.rate_values() == [0.5]


def test_paper_analysis_parameters_in_the_presets():
    """The paper's l_c^2 and a per system, and its BD coarse blocks as lengths: L/10 of its box, L/20 at
    the highest rate (a per-rate [analysis] override that prepare resolves)."""
    ka, sd, bd = (config.load(n) for n in ("ka3d-demo", "softdisk2d-tiny", "bd45"))
    assert (ka.analysis.cage_size, ka.analysis.overlap_a) == (0.057, 0.25)
    assert (sd.analysis.cage_size, sd.analysis.overlap_a) == (0.048, 0.3)
    paper_box = bd.system.box_length  # N = 20000: the paper's own box
    assert bd.select_rate(3.0).analysis.cluster_block == pytest.approx(paper_box / 10, rel=1e-3)
    assert bd.select_rate(20.0).analysis.cluster_block == pytest.approx(paper_box / 20, rel=1e-3)
    bd425 = config.load("bd425")
    assert bd425.select_rate(1.0).analysis.cluster_block == pytest.approx(bd425.system.box_length / 10, rel=1e-3)
    assert bd425.select_rate(20.0).analysis.cluster_block == pytest.approx(bd425.system.box_length / 20, rel=1e-3)
    # the resolved single-rate spec keeps the override through a round trip
    one = bd.select_rate(20.0)
    assert config.load_dict(one.to_dict()).analysis.cluster_block == pytest.approx(paper_box / 20, rel=1e-3)


def test_rate_selection():
    spec = config.load("ka3d")
    assert spec.select_rate(0.015).rate.sample_interval == 0.1
    with pytest.raises(UserError, match="choose one with --rate"):
        spec.select_rate(None)
    with pytest.raises(UserError, match="not in the protocol"):
        spec.select_rate(0.1)


def test_cli_reports_bad_config_with_exit_2_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "ka3d-tiny"\n[system]\ntemperature = -1\n')
    out = tmp_path / "run"
    proc = cli("prepare", bad, "-o", out)
    assert proc.returncode == 2
    assert "system.temperature: must be > 0" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()  # nothing written
    broken = tmp_path / "broken.toml"
    broken.write_text("[system\n")
    proc = cli("prepare", broken, "-o", out)
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr


def test_unreadable_specs_and_paths_exit_2_with_the_path(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe not text")
    proc = cli("prepare", bad, "-o", tmp_path / "run")
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr and str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    proc = cli("prepare", "ka3d-tiny", "-o", afile / "sub")  # an OS error: a message, exit 2
    assert proc.returncode == 2 and "Not a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_the_docs_key_tables_and_analysis_block_are_made_from_the_schema():
    """The docs' [analysis] block, stage table and run-spec key tables are made at docs build (docs/hooks.py)
    from the schema's declarations: every key once, with its default and help; the block TOML-parses back to
    the defaults; every stage in its run order; a page naming unknown content fails the build."""
    import importlib.util
    import tomllib
    from dataclasses import fields
    from pathlib import Path

    from lmpshear import config, spec
    from lmpshear.spec import Analysis
    from lmpshear.stages import STAGES

    docs = Path(__file__).resolve().parents[1] / "docs"
    hook_spec = importlib.util.spec_from_file_location("docs_hooks", docs / "hooks.py")
    hooks = importlib.util.module_from_spec(hook_spec)
    hook_spec.loader.exec_module(hooks)
    stages_page = hooks.fill((docs / "concepts" / "stages.md").read_text())
    block = config.analysis_block()
    assert "```toml\n" + block + "\n```" in stages_page and "<!-- generated" not in stages_page
    parsed = tomllib.loads(block)["analysis"]
    for f in fields(Analysis):
        assert parsed.get(f.name) == f.default, f.name  # unset keys are commented out
    c = config.Checker("docs/concepts/stages.md")
    assert config.load_analysis(c, parsed) == Analysis() and not c.errors
    rows = [
        line.split(" | ")[0][2:]
        for line in stages_page.splitlines()
        if line.startswith("| ") and "`.json`" not in line and line.split(" | ")[0][2:] in STAGES
    ]
    assert rows == list(STAGES)
    spec_page = hooks.fill((docs / "concepts" / "run-spec.md").read_text())
    for cls in (spec.System, spec.Species, spec.SigmaEpsilon, spec.YukawaPotential, spec.Protocol, spec.Rate):
        for f in fields(cls):
            if f.metadata:
                assert f"| `{f.name}` |" in spec_page and f.metadata["help"].replace("|", "/") in spec_page, f.name
    assert "| `seed` | int | required |" in spec_page and "| `checkpoint_every` | int | `100` |" in spec_page
    with pytest.raises(ValueError, match="no generated content named 'nothing'"):
        hooks.fill("<!-- generated: nothing -->")


def test_per_rate_overrides_are_kept_as_validated_and_unset_keys_mean_one_thing_per_dimension():
    """A rate's [analysis] table is stored as load_analysis returns it (an integer given for a length is a
    float); an unset key with a per-dimension meaning resolves from its one declaration, which also
    writes its help."""
    from lmpshear import config
    from lmpshear.spec import Analysis

    data = config._resolve(config.locate("bd45-tiny"))
    data["protocol"]["rates"] = [{"rate": 20.0, "sample_interval": 0.001, "analysis": {"cluster_block": 3}}]
    spec = config.load_dict(data).select_rate(20.0)
    assert dict(spec.protocol.rates[0].analysis) == {"cluster_block": 3.0}
    assert type(spec.analysis.cluster_block) is float and spec.analysis.cluster_block == 3.0
    a = Analysis()
    assert [a.value("overlap_a", d) for d in (2, 3)] == [0.3, 0.25]
    assert [a.value("cage_relative", d) for d in (2, 3)] == [True, False]
    assert [a.value("orientation_bins", d) for d in (2, 3)] == [16, 32]
    assert (
        Analysis(overlap_a=0.4).value("overlap_a", 2) == 0.4
        and Analysis(cage_relative=False).value("cage_relative", 2) is False
    )
    helps = {f: Analysis.__dataclass_fields__[f].metadata["help"] for f in ("overlap_a", "cluster_fine")}
    assert helps["overlap_a"].endswith("unset: 0.3 in 2D, 0.25 in 3D")
    assert helps["cluster_fine"].endswith("unset: 2.0 d0 apart in 2D, 0.9 d0 apart in 3D")
