-- Several engine nodes (issue 20): who is alive, and which node owns which event.
--
-- A node renews its row in `cluster_nodes` and its rows in `event_leases` by conditional
-- UPDATE; a lease whose `expires_at` (the database's clock) has passed may be taken by any
-- node, which gives it a new `epoch` from one sequence (epochs only grow, across events and
-- restarts). The ledger writer and the live-state writer commit only while the rows of the
-- events they write still name their node with the epoch they hold (`FOR SHARE` in the
-- same transaction), so a stale owner's commit is refused.
CREATE SEQUENCE event_lease_epoch AS bigint START 1;

CREATE TABLE cluster_nodes (
    node_id        text PRIMARY KEY CHECK (length(node_id) BETWEEN 1 AND 64),
    advertise_addr text NOT NULL CHECK (length(advertise_addr) BETWEEN 1 AND 255),
    started_at     timestamptz NOT NULL DEFAULT now(),
    heartbeat_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);

CREATE TABLE event_leases (
    event_id    uuid PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    node_id     text NOT NULL,
    epoch       bigint NOT NULL CHECK (epoch > 0),
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX event_leases_node ON event_leases (node_id);
