-- V43: a trader may hold a market from automatic settlement by the feed (docs/feed.md,
-- "Results"): the provider's results for it are then refused and the trader settles it.
ALTER TABLE markets ADD COLUMN feed_settlement_held BOOLEAN NOT NULL DEFAULT false;
