-- missed live sessions (services/alerts/sessions.py): the schedule, who is expected at it, the
-- attendance evidence, and how far the scanner has decided each learner's sessions

-- the programme's business unit, from the framework file (cli programmes load)
ALTER TABLE programmes ADD COLUMN business_unit text;

-- event time of the first evidence naming the learner's current programme (a learner only known
-- from evidence is expected at the programme's sessions that end after it)
ALTER TABLE learner_activity ADD COLUMN programme_since timestamptz;

-- scheduled live sessions (cli programmes load); cohort NULL: the whole programme is expected
CREATE TABLE live_sessions (
    tenant     text        NOT NULL,
    programme  text        NOT NULL,
    session_id text        NOT NULL,
    cohort     text,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant, programme, session_id)
);
CREATE INDEX live_sessions_end ON live_sessions (tenant, programme, ends_at);

-- learners expected at a programme's sessions: a cohort's learners from the framework file
-- (cohort), and learners whose progress updates name the programme (since: learner_activity's
-- programme_since, copied by the scanner); with the scanner's walk through their sessions
CREATE TABLE session_learners (
    tenant          text        NOT NULL,
    programme       text        NOT NULL,
    learner_key     text        NOT NULL,
    cohort          text,
    since           timestamptz,
    checked_through timestamptz,                -- end of the last sessions decided
    missed          text[]      NOT NULL DEFAULT '{}',  -- missed in a row since the last attended
    PRIMARY KEY (tenant, programme, learner_key)
);

-- attendance evidence (progress updates of kind "attendance"): the earliest per session
CREATE TABLE session_attendance (
    tenant      text        NOT NULL,
    programme   text        NOT NULL,
    learner_key text        NOT NULL,
    session_id  text        NOT NULL,
    attended_at timestamptz NOT NULL,
    PRIMARY KEY (tenant, programme, learner_key, session_id)
);
