-- progress's own tables: framework versions, API tokens, the projection and its watermarks.

-- every framework version ever loaded; a version is immutable once stored
CREATE TABLE frameworks (
    tenant         text        NOT NULL,
    framework      text        NOT NULL,
    version        integer     NOT NULL,
    effective_from timestamptz NOT NULL,
    document       jsonb       NOT NULL,
    content_hash   text        NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    seq            bigserial   NOT NULL UNIQUE,
    PRIMARY KEY (tenant, framework, version)
);

-- one effective time per tenant: a statement uses the version in effect at its event time
CREATE UNIQUE INDEX frameworks_effective ON frameworks (tenant, effective_from);

-- programme membership of the newest version of each tenant's framework (for the queries)
CREATE TABLE programme_learners (
    tenant        text NOT NULL,
    programme     text NOT NULL,
    cohort        text NOT NULL,
    learner_key   text NOT NULL,
    business_unit text NOT NULL,
    PRIMARY KEY (tenant, programme, cohort, learner_key)
);

CREATE TABLE programmes (
    tenant        text    NOT NULL,
    programme     text    NOT NULL,
    name          text    NOT NULL,
    business_unit text    NOT NULL,
    start_date    date    NOT NULL,
    end_date      date    NOT NULL,
    competencies  text[]  NOT NULL,
    PRIMARY KEY (tenant, programme)
);

-- bearer tokens of the query API: only the SHA-256 of the (random, 256-bit) token is kept
CREATE TABLE api_tokens (
    token_hash bytea       PRIMARY KEY,
    tenant     text        NOT NULL,
    name       text        NOT NULL,
    revoked    boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, name)
);

-- the projection: one row per learner x competency, values as of the newest evidence
CREATE TABLE learner_competency (
    tenant            text             NOT NULL,
    learner_key       text             NOT NULL,
    competency        text             NOT NULL,
    framework         text             NOT NULL,
    framework_version integer          NOT NULL,
    mastery           double precision NOT NULL,
    mastered          boolean          NOT NULL,
    attempts          integer          NOT NULL,
    correct_total     integer          NOT NULL,
    correct_streak    integer          NOT NULL,
    wrong_streak      integer          NOT NULL,
    hints             integer          NOT NULL,
    time_on_task_s    double precision NOT NULL,
    first_event_at    timestamptz,
    last_event_at     timestamptz,
    mastered_at       timestamptz,
    PRIMARY KEY (tenant, learner_key, competency)
);

-- mastery at the end of each day with evidence (event time, UTC), for trends
CREATE TABLE mastery_daily (
    tenant      text             NOT NULL,
    learner_key text             NOT NULL,
    competency  text             NOT NULL,
    day         date             NOT NULL,
    mastery     double precision NOT NULL,
    PRIMARY KEY (tenant, learner_key, competency, day)
);

CREATE TABLE learner_activity (
    tenant         text        NOT NULL,
    learner_key    text        NOT NULL,
    events         bigint      NOT NULL,
    first_event_at timestamptz NOT NULL,
    last_event_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant, learner_key)
);

-- weeks (Monday, event time) in which a learner produced any evidence
CREATE TABLE activity_weeks (
    tenant      text NOT NULL,
    learner_key text NOT NULL,
    week        date NOT NULL,
    PRIMARY KEY (tenant, learner_key, week)
);

-- the exactly-once guard: the last source offset projected, per source topic partition,
-- moved in the same transaction as the rows it covers
CREATE TABLE watermarks (
    topic     text    NOT NULL,
    partition integer NOT NULL,
    "offset"  bigint  NOT NULL,
    PRIMARY KEY (topic, partition)
);
