"""``python -m tools.deadletters``: read what the services dead-lettered, newest last.

    python -m tools.deadletters [--from statements|updates] [--last 20] [--tenant T]
                                [--reason R] [--decode] [--scan 10000]

* ``--from statements`` (default): ``xapi.deadletter``, where ingest puts the raw records and
  HTTP-less statements it refused (``reason``, ``rule``, ``violations``, ``tenant``,
  ``source``, ``original`` in base64) and progress the statements it could not use
  (``reason``, ``error``, ``service``, ``source``, ``original`` in base64);
* ``--from updates``: ``progress.updates.deadletter``, the progress updates alerts could not
  use (``reason``, ``message``, ``key``, ``original`` as text).

Prints one JSON object per line, each record's fields plus ``kafka`` (partition, offset, and
the record's time in UTC). ``--tenant`` keeps the records of one tenant (the ``tenant`` field,
else the tenant part of the ``key``); ``--reason`` those of one reason; ``--decode`` adds
``original_text``, the base64 original decoded as UTF-8 (replacement characters where it is
not text). At most ``--scan`` records are read back from the end of each partition.

Reads ``KAFKA_BOOTSTRAP_SERVERS`` and ``SKILLSTREAM_TOPIC_PREFIX`` like the services
(``--bootstrap`` and ``--prefix`` override them). Nothing is committed: no consumer group.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import os
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition

from shared.kafka import Topics, kafka_admin, kafka_consumer

#: where each kind of dead-letter goes, by ``--from``
SOURCES = ("statements", "updates")


def topic_of(source: str, prefix: str) -> str:
    topics = Topics(prefix, 1)  # the partition count does not change the names
    return topics.deadletter if source == "statements" else f"{topics.progress_updates}.deadletter"


def describe(record: ConsumerRecord[Any, Any], *, decode: bool) -> dict[str, Any]:
    """A dead-letter record as printed: its JSON fields (a value that is not a JSON object is
    shown as ``value`` in base64) and where it sits on the topic."""
    raw = record.value or b""
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError:
        fields = None
    out: dict[str, Any] = (
        dict(fields) if isinstance(fields, dict) else {"value": base64.b64encode(raw).decode()}
    )
    if decode and "source" in out and isinstance(out.get("original"), str):
        try:
            text = base64.b64decode(out["original"], validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            text = None
        out["original_text"] = text
    out["kafka"] = {
        "partition": record.partition,
        "offset": record.offset,
        "time": datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(),
    }
    return out


def tenant_of(fields: dict[str, Any]) -> str | None:
    tenant = fields.get("tenant")
    if isinstance(tenant, str):
        return tenant
    key = fields.get("key")
    return key.split("|", 1)[0] if isinstance(key, str) and "|" in key else None


def select(
    records: Iterable[dict[str, Any]], *, last: int, tenant: str | None, reason: str | None
) -> list[dict[str, Any]]:
    """The ``last`` records (in time order) of ``tenant`` and ``reason`` (None: any)."""
    kept: deque[dict[str, Any]] = deque(maxlen=last)
    for fields in sorted(records, key=lambda f: (f["kafka"]["time"], f["kafka"]["offset"])):
        if tenant is not None and tenant_of(fields) != tenant:
            continue
        if reason is not None and fields.get("reason") != reason:
            continue
        kept.append(fields)
    return list(kept)


async def read_tail(bootstrap: str, topic: str, *, scan: int, decode: bool) -> list[dict[str, Any]]:
    """The last ``scan`` records of every partition of ``topic`` (none if it does not exist)."""
    async with kafka_admin(bootstrap) as admin:
        [described] = await admin.describe_topics([topic])
    if described.get("error_code"):  # 3: no such topic (nothing was ever dead-lettered)
        return []
    numbers = sorted(p["partition"] for p in described.get("partitions", []))
    tps = [TopicPartition(topic, p) for p in numbers]
    if not tps:
        return []
    async with kafka_consumer(bootstrap, group_id=None) as consumer:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        wanted = {tp: end for tp, end in ends.items() if end > starts[tp]}
        for tp, end in wanted.items():
            consumer.seek(tp, max(starts[tp], end - scan))
        found: list[dict[str, Any]] = []
        while wanted:
            batches = await consumer.getmany(*wanted, timeout_ms=1000)
            for tp, records in batches.items():
                found.extend(describe(r, decode=decode) for r in records if r.offset < wanted[tp])
                if records and records[-1].offset + 1 >= wanted[tp]:
                    del wanted[tp]
        return found


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.deadletters", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--from", dest="source", choices=SOURCES, default="statements")
    parser.add_argument("--last", type=int, default=20, help="records shown (newest last)")
    parser.add_argument("--tenant", help="only this tenant's records")
    parser.add_argument("--reason", help="only records with this reason")
    parser.add_argument("--decode", action="store_true", help="add the original as text")
    parser.add_argument("--scan", type=int, default=10_000, help="records read per partition")
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--prefix", default=os.environ.get("SKILLSTREAM_TOPIC_PREFIX", ""))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.last < 1 or args.scan < 1:
        print("--last and --scan must be at least 1", file=sys.stderr)
        return 2
    topic = topic_of(args.source, args.prefix)
    found = asyncio.run(read_tail(args.bootstrap, topic, scan=args.scan, decode=args.decode))
    for fields in select(found, last=args.last, tenant=args.tenant, reason=args.reason):
        print(orjson.dumps(fields).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
