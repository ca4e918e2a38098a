-- Compress the large per-change values with lz4 instead of PostgreSQL's default pglz: an
-- alert's evidence (statement ids, mastery trajectory) and the event envelope carrying it,
-- stored for the outbox and again for each webhook delivery, make rows past the TOAST
-- threshold (~2 KB). lz4 costs less server CPU at about the same size
-- (`bench/bench_pg_compression.py` measures it on ingest's rows). Only values written from now
-- on are affected: nothing is rewritten. A server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE alerts ALTER COLUMN evidence SET COMPRESSION lz4;
    ALTER TABLE alert_history ALTER COLUMN details SET COMPRESSION lz4;
    ALTER TABLE outbox ALTER COLUMN envelope SET COMPRESSION lz4;
    ALTER TABLE deliveries ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 compression is not available on this server: pglz stays';
END
$$;
