-- alerts' own tables: the inbox, learner activity, alerts with their history, the outbox,
-- teams, routing rules, webhooks and deliveries, staff tokens, detector settings.

-- progress events already applied (idempotency of the stream's effects)
CREATE TABLE inbox (
    event_id     uuid        PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- last evidence per learner (event time), for the inactivity scanner
CREATE TABLE learner_activity (
    tenant        text        NOT NULL,
    learner_key   text        NOT NULL,
    last_activity timestamptz NOT NULL,
    programme     text,
    business_unit text,
    PRIMARY KEY (tenant, learner_key)
);
CREATE INDEX learner_activity_last ON learner_activity (last_activity);

-- the largest event time seen (the "event clock" the scanner uses during a replay)
CREATE TABLE event_clock (
    id         boolean     PRIMARY KEY DEFAULT true CHECK (id),
    event_time timestamptz NOT NULL
);

CREATE TABLE alerts (
    id             uuid        PRIMARY KEY,
    tenant         text        NOT NULL,
    learner_key    text        NOT NULL,
    kind           text        NOT NULL,
    competency     text        NOT NULL DEFAULT '',   -- '' when the kind has no competency
    programme      text,
    business_unit  text,
    severity       text        NOT NULL,
    support        text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('open','acknowledged','snoozed','resolved')),
    team           text,
    assignee       text,
    snoozed_until  timestamptz,
    evidence       jsonb       NOT NULL,
    signals        integer     NOT NULL DEFAULT 1,
    first_seen_at  timestamptz NOT NULL,  -- event time
    last_seen_at   timestamptz NOT NULL,  -- event time
    resolved_at    timestamptz,           -- event time (auto) or wall time (staff)
    resolution     text,                  -- 'auto' or 'staff'
    note           text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    version        integer     NOT NULL DEFAULT 1
);
-- one alert that is not resolved per learner x kind x competency
CREATE UNIQUE INDEX alerts_one_active ON alerts (tenant, learner_key, kind, competency)
    WHERE status <> 'resolved';
CREATE INDEX alerts_last_resolved ON alerts (tenant, learner_key, kind, competency, resolved_at)
    WHERE status = 'resolved';
CREATE INDEX alerts_listing ON alerts (tenant, status, last_seen_at DESC);
CREATE INDEX alerts_snoozed ON alerts (snoozed_until) WHERE status = 'snoozed';

CREATE TABLE alert_history (
    id          bigserial   PRIMARY KEY,
    alert_id    uuid        NOT NULL REFERENCES alerts (id),
    event_id    uuid        NOT NULL UNIQUE,  -- the alerts.events envelope of this change
    action      text        NOT NULL,
    actor       text        NOT NULL,
    from_status text,
    to_status   text        NOT NULL,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, id);

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

CREATE TABLE teams (
    tenant     text        NOT NULL,
    team       text        NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, team)
);

-- the first matching rule (lowest priority number) chooses the team; NULL matches anything
CREATE TABLE routing_rules (
    id            bigserial PRIMARY KEY,
    tenant        text      NOT NULL,
    priority      integer   NOT NULL DEFAULT 100,
    business_unit text,
    programme     text,
    kind          text,
    min_severity  text CHECK (min_severity IN ('low','medium','high')),
    team          text      NOT NULL,
    FOREIGN KEY (tenant, team) REFERENCES teams (tenant, team)
);

-- the secret is kept in clear: it is needed to sign (like any webhook sender)
CREATE TABLE webhooks (
    id         bigserial   PRIMARY KEY,
    tenant     text        NOT NULL,
    team       text        NOT NULL,
    url        text        NOT NULL,
    secret     text        NOT NULL,
    active     boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant, team) REFERENCES teams (tenant, team)
);

CREATE TABLE deliveries (
    id              bigserial   PRIMARY KEY,
    webhook_id      bigint      NOT NULL REFERENCES webhooks (id),
    event_id        uuid        NOT NULL,
    tenant          text        NOT NULL,
    body            bytea       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending','delivered','dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    id          bigserial   PRIMARY KEY,
    delivery_id bigint      NOT NULL REFERENCES deliveries (id),
    attempt     integer     NOT NULL,
    status_code integer,
    error       text,
    duration_ms double precision NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- staff tokens: SHA-256 of a 256-bit random token; team NULL = every team of the tenant
CREATE TABLE staff_tokens (
    id         bigserial   PRIMARY KEY,
    tenant     text        NOT NULL,
    team       text,
    name       text        NOT NULL,
    token_hash bytea       NOT NULL UNIQUE,
    revoked    boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, name)
);

-- partial DetectorSettings JSON; programme '' = the tenant's default
CREATE TABLE detector_settings (
    tenant     text        NOT NULL,
    programme  text        NOT NULL DEFAULT '',
    settings   jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, programme)
);

-- optional programme calendar: inactivity is only raised while a known programme runs
CREATE TABLE programmes (
    tenant    text NOT NULL,
    programme text NOT NULL,
    starts_on date NOT NULL,
    ends_on   date NOT NULL,
    PRIMARY KEY (tenant, programme)
);
