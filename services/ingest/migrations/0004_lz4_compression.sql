-- Compress the large per-statement values with lz4 instead of PostgreSQL's default pglz.
-- An archived statement (1.5-2 KB of JSON) makes rows past the TOAST threshold (~2 KB), so
-- inserts compress the body and the outbox envelope; lz4 does it with less server CPU at the
-- same size (`bench/bench_pg_compression.py`, figures in BENCHMARKS.md). Only values written
-- from now on are affected: nothing is rewritten. A server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE statements ALTER COLUMN body SET COMPRESSION lz4;
    ALTER TABLE outbox ALTER COLUMN envelope SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 compression is not available on this server: pglz stays';
END
$$;
