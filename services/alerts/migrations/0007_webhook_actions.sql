-- A webhook endpoint can subscribe to some alert actions only (say opened and resolved, without
-- the "updated" sent for every new piece of evidence). NULL: every action, as before.
ALTER TABLE webhooks ADD COLUMN actions text[]
    CHECK (actions IS NULL OR (cardinality(actions) > 0 AND actions <@ ARRAY[
        'opened', 'updated', 'acknowledged', 'assigned', 'snoozed', 'unsnoozed', 'resolved'
    ]::text[]));
