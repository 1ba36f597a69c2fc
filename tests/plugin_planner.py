"""A third-party planner, loaded through the labos.planners entry point in tests."""

from labos.planners import BasePlanner


class ThirdPartyPlanner(BasePlanner):
    """Always proposes the centre of the unit cube."""

    def _ask(self, n, pending):
        return [self.space.from_unit([0.5] * self.space.unit_dim) for _ in range(n)]
