"""The classroom simulator: an academy of learners with hidden knowledge, emitting xAPI.

``python -m tools.simulator --seed 7 --learners 200 --days 30 --out DIR`` writes
``DIR/statements.jsonl``, ``DIR/truth.jsonl`` and ``DIR/framework.yaml``; see
:mod:`tools.simulator.cli` for the sinks and :mod:`tools.simulator.truth` for the truth format.

Modules: :mod:`~tools.simulator.academy` (tenants, programmes, cohorts, timetable, activities,
framework), :mod:`~tools.simulator.learners` (archetypes, BKT with forgetting),
:mod:`~tools.simulator.statements` (xAPI shapes), :mod:`~tools.simulator.simulate` (the run and
the event-time merge), :mod:`~tools.simulator.truth`, :mod:`~tools.simulator.output` (files) and
:mod:`~tools.simulator.emit` (JSONL, HTTP and Kafka sinks with rate control).
"""

from tools.simulator.simulate import Config, Event, Simulation, simulate

__all__ = ["Config", "Event", "Simulation", "simulate"]
