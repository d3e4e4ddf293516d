-- V42: the bettor's history filtered by status (GET /api/v1/bets?status=...), with each
-- leg's event named and its settlement time in the API's one form (RFC 3339 UTC with `Z`,
-- like every other time the engine answers). A new overload (five arguments); the earlier
-- ones stay.
CREATE FUNCTION get_user_betting_history(
    p_user_id UUID,
    p_limit INTEGER,
    p_offset INTEGER,
    p_bet_id UUID,
    p_statuses TEXT[]
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
          AND (p_statuses IS NULL OR status::text = ANY(p_statuses))
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
                       'event_name', ht.display_name || ' v ' || awt.display_name,
                       'odds', bs.odds::text,
                       'result', bs.result,
                       'settled_at', to_char(bs.settled_at AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                   ) ORDER BY bs.id
               ) AS selections
        FROM bet_selections bs
        JOIN selections s ON bs.selection_id = s.id
        JOIN markets m ON m.id = s.market_id
        JOIN events e ON e.id = m.event_id
        JOIN teams ht ON ht.id = e.home_team_id
        JOIN teams awt ON awt.id = e.away_team_id
        WHERE bs.bet_id = b.id
    ) legs
    ORDER BY b.placed_at DESC, b.id DESC;
$$;
