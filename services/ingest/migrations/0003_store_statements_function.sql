-- store_statements(...): everything repository.store_statements writes for one batch of
-- statements, in one call (one round trip, so a batch on its own needs no BEGIN/COMMIT): the
-- archive rows, their outbox events and the NOTIFY that wakes the relay, then, for the rows
-- actually inserted, the learners (new ones, and display names that changed) and the voiding
-- of the statements they void. Each step is its own statement with its own snapshot, exactly
-- as when they were sent one by one in a transaction.
--
-- A statement whose id is stored already with other content raises SQLSTATE 'SK409' (DETAIL:
-- the first such id, in the batch's order): nothing of the call is kept. Returns the ids of
-- the statements inserted.

CREATE FUNCTION store_statements(
    p_tenant      text,
    p_channel     text,
    p_sid         uuid[],
    p_body        jsonb[],
    p_hash        text[],
    p_lk          text[],
    p_verb        text[],
    p_eid         uuid[],
    p_stored      timestamptz[],
    p_dev         text[],
    p_key         bytea[],
    p_env         bytea[],
    p_notify      text,
    p_kind        text[],
    p_value       text[],
    p_name        text[],
    p_voids       uuid[],
    p_voided_verb text
) RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
DECLARE
    inserted uuid[];
    conflict uuid;
    targets  uuid[];
BEGIN
    -- the archive rows and the outbox events of the rows inserted, in the batch's order
    WITH ins AS (
        INSERT INTO statements
            (tenant, statement_id, body, content_hash, learner_key, verb_id, event_id, channel,
             stored, deviations)
        SELECT p_tenant, u.sid, u.body, u.hash, u.lk, u.verb, u.eid, p_channel, u.stored,
               u.dev::jsonb
        FROM unnest(p_sid, p_body, p_hash, p_lk, p_verb, p_eid, p_stored, p_dev)
             AS u(sid, body, hash, lk, verb, eid, stored, dev)
        ON CONFLICT (tenant, statement_id) DO NOTHING
        RETURNING statement_id, event_id
    ), events AS (
        INSERT INTO outbox (event_id, tenant, msg_key, envelope)
        SELECT u.eid, p_tenant, u.k, u.env
        FROM unnest(p_eid, p_key, p_env) WITH ORDINALITY AS u(eid, k, env, ord)
        WHERE u.eid IN (SELECT event_id FROM ins)
        ORDER BY u.ord
        ON CONFLICT (event_id) DO NOTHING
    )
    SELECT coalesce(array_agg(statement_id), '{}') INTO inserted FROM ins;

    IF cardinality(inserted) < cardinality(p_sid) THEN
        -- the others are stored already: with the same content (a retry) or not (a conflict)
        SELECT u.sid INTO conflict
        FROM unnest(p_sid, p_hash) WITH ORDINALITY AS u(sid, hash, ord)
        LEFT JOIN unnest(inserted) AS i(sid) ON i.sid = u.sid
        WHERE i.sid IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM statements AS s
              WHERE s.tenant = p_tenant AND s.statement_id = u.sid AND s.content_hash = u.hash)
        ORDER BY u.ord
        LIMIT 1;
        IF conflict IS NOT NULL THEN
            RAISE EXCEPTION 'statement % exists with different content', conflict
                USING ERRCODE = 'SK409', DETAIL = conflict::text;
        END IF;
    END IF;
    IF cardinality(inserted) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_notify(p_notify, '');

    -- the people of the inserted rows, one row per learner key (the batch's last one wins),
    -- inserted in key order: one lock order, no deadlocks between batches
    INSERT INTO learners (tenant, learner_key, ifi_kind, ifi_value, display_name)
    SELECT p_tenant, pe.lk, pe.kind, pe.value, pe.name
    FROM (
        SELECT DISTINCT ON (u.lk) u.lk, u.kind, u.value, u.name
        FROM unnest(p_sid, p_lk, p_kind, p_value, p_name) WITH ORDINALITY
             AS u(sid, lk, kind, value, name, ord)
        JOIN unnest(inserted) AS i(sid) ON i.sid = u.sid
        ORDER BY u.lk, u.ord DESC
    ) AS pe
    ORDER BY pe.lk
    ON CONFLICT (tenant, learner_key) DO NOTHING;

    -- only rows whose name changed are updated (and so locked): concurrent statements of one
    -- learner do not queue behind each other on the learners row
    UPDATE learners AS l SET display_name = pe.name
    FROM (
        SELECT DISTINCT ON (u.lk) u.lk, u.name
        FROM unnest(p_sid, p_lk, p_name) WITH ORDINALITY AS u(sid, lk, name, ord)
        JOIN unnest(inserted) AS i(sid) ON i.sid = u.sid
        ORDER BY u.lk, u.ord DESC
    ) AS pe
    WHERE l.tenant = p_tenant AND l.learner_key = pe.lk AND pe.name IS NOT NULL
      AND l.display_name IS DISTINCT FROM pe.name;

    -- voiding a voiding statement has no effect (xAPI: such a statement is ignored)
    SELECT array_agg(DISTINCT u.target ORDER BY u.target) INTO targets
    FROM unnest(p_sid, p_voids) AS u(sid, target)
    JOIN unnest(inserted) AS i(sid) ON i.sid = u.sid
    WHERE u.target IS NOT NULL;
    IF targets IS NOT NULL THEN
        UPDATE statements SET voided = true
        WHERE tenant = p_tenant AND statement_id = ANY(targets) AND verb_id <> p_voided_verb
          AND NOT voided;
    END IF;

    RETURN QUERY SELECT unnest(inserted);
END;
$$;
