"""The Kafka sink produces each tenant's statements to its raw topic, keyed by learner."""

from __future__ import annotations

from typing import Any

import orjson

from shared.kafka import Topics, kafka_consumer
from tools.simulator import Config, simulate
from tools.simulator.emit import create_raw_topics, send_kafka


async def test_statements_reach_the_raw_topics_in_order(
    kafka_bootstrap: str, topics: Topics, kafka_cleanup: None
) -> None:
    sim = simulate(Config(seed=5, learners=6, days=4))
    tenants = [t.id for t in sim.academy.tenants]
    created = await create_raw_topics(kafka_bootstrap, topics, tenants, partitions=2)
    assert sorted(created) == sorted(topics.raw(t) for t in tenants)
    stats = await send_kafka(sim.events, kafka_bootstrap, topics, batch_size=50)
    assert stats.statements == len(sim.events)

    expected = {t: [e for e in sim.events if e.tenant == t] for t in tenants}
    got: dict[str, list[tuple[bytes, dict[str, Any]]]] = {t: [] for t in tenants}
    async with kafka_consumer(
        kafka_bootstrap, *(topics.raw(t) for t in tenants), group_id=f"{topics.prefix}check"
    ) as consumer:
        while sum(map(len, got.values())) < len(sim.events):
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, "no more records arrived"
            for tp, records in batch.items():
                tenant = topics.tenant_of_raw(tp.topic)
                assert tenant is not None
                got[tenant] += [(r.key, orjson.loads(r.value)) for r in records]
    for tenant in tenants:
        assert sorted(s["id"] for _, s in got[tenant]) == sorted(
            e.statement["id"] for e in expected[tenant]
        )
        by_learner: dict[bytes, list[str]] = {}
        for key, statement in got[tenant]:
            by_learner.setdefault(key, []).append(str(statement["timestamp"]))
        assert {k.decode() for k in by_learner} == {e.learner_ref for e in expected[tenant]}
        assert all(v == sorted(v) for v in by_learner.values())
