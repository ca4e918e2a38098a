-- ingest's own tables: credentials, the statement archive, learners, attachments, the outbox.

CREATE TABLE credentials (
    tenant      text        NOT NULL,
    name        text        NOT NULL,
    salt        bytea       NOT NULL,
    secret_hash bytea       NOT NULL,
    scrypt_n    integer     NOT NULL,
    scrypt_r    integer     NOT NULL,
    scrypt_p    integer     NOT NULL,
    revoked     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (tenant, name)
);

-- the archive: body is the statement exactly as GET returns it (raw actor included)
CREATE TABLE statements (
    tenant        text        NOT NULL,
    statement_id  uuid        NOT NULL,
    body          jsonb       NOT NULL,
    content_hash  text        NOT NULL,
    learner_key   text        NOT NULL,
    verb_id       text        NOT NULL,
    event_id      uuid        NOT NULL,
    channel       text        NOT NULL,
    stored        timestamptz NOT NULL,
    voided        boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, statement_id)
);

CREATE INDEX statements_learner ON statements (tenant, learner_key, stored);

-- the only place a learner_key maps back to a person
CREATE TABLE learners (
    tenant       text        NOT NULL,
    learner_key  text        NOT NULL,
    ifi_kind     text        NOT NULL,
    ifi_value    text        NOT NULL,
    display_name text,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, learner_key)
);

CREATE TABLE attachments (
    tenant       text        NOT NULL,
    sha2         text        NOT NULL,
    content_type text        NOT NULL,
    content      bytea       NOT NULL,
    stored       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, sha2)
);

-- transactional outbox: written with the statement, published to Kafka by the relay in id order
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    tenant       text        NOT NULL,
    msg_key      bytea       NOT NULL,
    envelope     bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz
);

CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
