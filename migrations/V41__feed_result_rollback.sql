-- V41: a feed's result can be rolled back (`result_rollback`, docs/feed.md): the market goes
-- back to `closed`, its legs' results are cleared and its settled bets return to open with
-- their payouts taken back, recorded as a market settlement of kind 'rollback'.
ALTER TABLE market_settlements DROP CONSTRAINT market_settlements_kind;
ALTER TABLE market_settlements
    ADD CONSTRAINT market_settlements_kind
    CHECK (kind IN ('settle', 'resettle', 'void', 'rollback'));
