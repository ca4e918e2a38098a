"""The ingest service: xAPI statements in (LRS-compatible HTTP and raw Kafka topics), validated,
archived in PostgreSQL and published on the canonical ``xapi.statements`` stream."""
