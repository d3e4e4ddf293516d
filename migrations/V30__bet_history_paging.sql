-- V30: bet history for the API (GET /api/v1/bets, /bets/{id}). The seed's
-- get_user_betting_history(user, limit) stays as it is; this overload (no defaults, so
-- calls to the two-argument form stay unambiguous) adds paging, one-bet look-up and the
-- columns a bettor needs: potential and actual win, settlement time, leg names with
-- their market and event, and leg results.
CREATE FUNCTION get_user_betting_history(
    p_user_id UUID,
    p_limit INTEGER,
    p_offset INTEGER,
    p_bet_id UUID
) RETURNS TABLE (
    bet_id UUID,
    bet_type bet_type,
    stake DECIMAL,
    total_odds DECIMAL,
    potential_win DECIMAL,
    actual_win DECIMAL,
    status bet_status,
    placed_at TIMESTAMP WITH TIME ZONE,
    settled_at TIMESTAMP WITH TIME ZONE,
    void_reason TEXT,
    metadata JSONB,
    selections JSON
) LANGUAGE SQL STABLE AS $$
    SELECT b.id, b.type, b.stake, b.total_odds, b.potential_win, b.actual_win, b.status,
           b.placed_at, b.settled_at, b.void_reason, b.metadata - 'fingerprint', legs.selections
    FROM (
        SELECT *
        FROM bets
        WHERE user_id = p_user_id AND (p_bet_id IS NULL OR id = p_bet_id)
        ORDER BY placed_at DESC, id DESC
        LIMIT p_limit OFFSET p_offset
    ) b
    CROSS JOIN LATERAL (
        SELECT JSON_AGG(
                   JSON_BUILD_OBJECT(
                       'selection_id', s.id,
                       'selection_name', s.name,
                       'market_id', m.id,
                       'market_name', m.name,
                       'event_id', m.event_id,
                       'odds', bs.odds::text,
                       'result', bs.result,
                       'settled_at', bs.settled_at
                   ) ORDER BY bs.id
               ) AS selections
        FROM bet_selections bs
        JOIN selections s ON bs.selection_id = s.id
        JOIN markets m ON m.id = s.market_id
        WHERE bs.bet_id = b.id
    ) legs
    ORDER BY b.placed_at DESC, b.id DESC;
$$;
