-- per partition of progress.updates, the last offset the worker handled (applied, duplicate or
-- dead-lettered), moved after each batch's transaction: where processing resumes when the
-- partition is (re)assigned, whatever offset the consumer group committed
-- (shared/delivery.py reads again the records between the two)
CREATE TABLE watermarks (
    topic     text    NOT NULL,
    partition integer NOT NULL,
    "offset"  bigint  NOT NULL,
    PRIMARY KEY (topic, partition)
);
