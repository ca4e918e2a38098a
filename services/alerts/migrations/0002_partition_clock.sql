-- the largest event time applied per partition of progress.updates: the scanner's event clock
-- during a replay is the smallest of them (a low watermark), so a learner on a partition that
-- lags behind the others is not taken for inactive
CREATE TABLE partition_clock (
    partition  integer     PRIMARY KEY,
    event_time timestamptz NOT NULL
);
