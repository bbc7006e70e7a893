-- What each daemon has seen of Intuit's failures within the incident window (issue 25):
-- daemons sharing one database each make a part of the calls, so each judges an outage on
-- its own counts plus the others' rows here. One row per daemon (its lease owner), scope and
-- class of failure, rewritten at each failure it sees; rows older than the window are
-- ignored (a daemon that stopped), and an incident's opening or end clears its scope's.
CREATE TABLE incident_evidence (
    owner       TEXT NOT NULL,
    environment TEXT NOT NULL,
    endpoint    TEXT NOT NULL,
    class       TEXT NOT NULL,
    -- Failures of this class in the owner's window, and the connections they were of.
    failures    INTEGER NOT NULL,
    connections INTEGER NOT NULL,
    -- Every call the owner made in its window to this scope, failed or not.
    attempts    INTEGER NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (owner, environment, endpoint, class)
);
