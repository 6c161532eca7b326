"""The analysis stages of ``lmpshear analyze``, in the order they run: each family module declares
its stages beside their code (:class:`lmpshear.stages.base.Stage`); this table joins them."""

from lmpshear.stages import clusters, dynamics, lengths, stz
from lmpshear.stages.base import Context, Stage, SteadyWindow

STAGES: dict[str, Stage] = {s.name: s for family in (dynamics, lengths, clusters, stz) for s in family.STAGES}

__all__ = ["STAGES", "Context", "Stage", "SteadyWindow"]
