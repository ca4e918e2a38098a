-- per-tenant validation profile, lenient deviations kept on the archive row, and the index of the
-- unfiltered statement listing (GET /xapi/statements without statementId).

-- tenants without a row use the strict profile
CREATE TABLE tenant_settings (
    tenant             text        PRIMARY KEY,
    validation_profile text        NOT NULL DEFAULT 'strict'
                                   CHECK (validation_profile IN ('strict', 'lenient')),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- deviations the lenient profile accepted for this statement: [{rule, path, original}];
-- NULL when the statement was valid as sent
ALTER TABLE statements ADD COLUMN deviations jsonb;

CREATE INDEX statements_listing ON statements (tenant, stored DESC, statement_id DESC);
