"""One simulated academy shared by the simulator's unit tests (it takes a second or two)."""

from __future__ import annotations

import pytest

from tools.simulator import Config, Simulation, simulate


@pytest.fixture(scope="session")
def sim() -> Simulation:
    return simulate(Config(seed=11, learners=120, days=30))
