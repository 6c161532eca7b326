"""The analysis stages of ``lmpshear analyze``: each family module declares its stages beside their code
(:class:`lmpshear.stages.base.Stage`); this table joins them in the order they run, derived from their
declared inputs (a stage after every stage it reads; otherwise in the families' order), checked here."""

from lmpshear.stages import clusters, dynamics, lengths, stz
from lmpshear.stages.base import Context, Stage, SteadyWindow


def in_order_of_inputs(declared: list[Stage]) -> dict[str, Stage]:
    """The stages sorted so that each comes after the stages among its inputs; among those free to go,
    the first declared goes first. An input naming no stage is a run file; a cycle is an error."""
    names = {s.name for s in declared}
    placed: dict[str, Stage] = {}
    while len(placed) < len(declared):
        ready = [s for s in declared if s.name not in placed and all(i in placed for i in s.inputs if i in names)]
        if not ready:
            raise RuntimeError(
                "internal: the stages' inputs form a cycle: "
                + ", ".join(s.name for s in declared if s.name not in placed)
            )
        placed[ready[0].name] = ready[0]
    return placed


STAGES: dict[str, Stage] = in_order_of_inputs(
    [s for family in (dynamics, lengths, clusters, stz) for s in family.STAGES]
)


def stage_table() -> str:
    """The stages as a markdown table in the order they run (docs/concepts/stages.md, made at docs build)."""
    rows = ["| stage | product | reads | `[analysis]` keys | what |", "|---|---|---|---|---|"]
    for s in STAGES.values():
        keys = ", ".join(f"`{k}`" for k in s.keys) or "–"
        what = s.what + (f" ([more]({s.page}))" if s.page else "")
        rows.append(f"| {s.name} | `{s.name}.json` | {', '.join(s.inputs)} | {keys} | {what} |")
    return "\n".join(rows)


__all__ = ["STAGES", "Context", "Stage", "SteadyWindow", "stage_table"]
