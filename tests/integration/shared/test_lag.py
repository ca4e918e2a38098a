from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from shared.kafka import TopicSpec, ensure_topics, kafka_admin, kafka_consumer, kafka_producer
from shared.lag import LagMonitor


async def test_lag_is_end_minus_committed_for_the_owned_partitions(
    kafka_bootstrap: str, topic_prefix: str, kafka_cleanup: None
) -> None:
    topic, group = f"{topic_prefix}lag", f"{topic_prefix}group"
    async with kafka_admin(kafka_bootstrap) as admin:
        await ensure_topics(admin, [TopicSpec(topic, 2)])
    async with kafka_producer(kafka_bootstrap) as producer:
        for i in range(10):
            await producer.send_and_wait(topic, b"v", partition=i % 2)  # 5 per partition
    async with kafka_consumer(kafka_bootstrap, topic, group_id=group) as consumer:
        read = 0
        while read < 3:  # commit a few records of whichever partitions come first
            batch = await consumer.getmany(timeout_ms=1000, max_records=3 - read)
            read += sum(len(records) for records in batch.values())
        await consumer.commit()
        committed = {
            tp.partition: await consumer.committed(tp) or 0 for tp in consumer.assignment()
        }

    gauge = Gauge("lag", "test", ["topic", "partition"], registry=CollectorRegistry())
    owned = [(topic, 0), (topic, 1)]
    monitor = LagMonitor(kafka_bootstrap, group, lambda: owned, gauge)
    async with kafka_admin(kafka_bootstrap) as admin, kafka_consumer(kafka_bootstrap) as plain:
        await monitor.measure_once(admin, plain)
        assert gauge.labels(topic, "0")._value.get() == 5 - committed[0]
        assert gauge.labels(topic, "1")._value.get() == 5 - committed[1]
        assert sum(committed.values()) == 3
        owned.pop()  # partition 1 moved to another worker: its series goes away
        await monitor.measure_once(admin, plain)
    samples = {s.labels["partition"] for m in gauge.collect() for s in m.samples}
    assert samples == {"0"}
