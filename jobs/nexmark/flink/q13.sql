-- Nexmark q13 (nexmark-flink's q13.sql: `JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S`).
-- Flink 2.3's filesystem connector is no lookup source: it refuses that join
-- ("Temporal Table Join requires primary key in versioned table"), and a
-- processing-time temporal join needs one. Its equivalent on a bounded side
-- input read whole, as flowc's lookup join reads it: the regular join on the
-- same condition (every side row has come before the result is read).
SELECT
    B.auction, B.bidder, B.price, B.`dateTime`, B.extra, S.`value`
FROM bid B
JOIN side_input S
ON mod(B.auction, 10000) = S.key
