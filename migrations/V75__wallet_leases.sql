-- Several engine nodes (issue 20): each user's balance has one writer at a time.
--
-- Users are hashed over `cluster.wallet_partitions` partitions (user id modulo their number);
-- a node takes a partition's lease before its wallet shards hold stakes for the partition's
-- users, renews it like its event leases, and the ledger writer commits a bet's debit only
-- while the partition's row still names its node with the epoch the stake was held under
-- (`FOR SHARE` in the same transaction). Epochs come from the event leases' sequence, so
-- they only grow.
CREATE TABLE wallet_leases (
    part        integer PRIMARY KEY CHECK (part >= 0),
    node_id     text NOT NULL,
    epoch       bigint NOT NULL CHECK (epoch > 0),
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX wallet_leases_node ON wallet_leases (node_id);
