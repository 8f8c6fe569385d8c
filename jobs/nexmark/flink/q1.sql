-- Nexmark q1: the SELECT of nexmark-flink's q1.sql (column names as its sink table's).
SELECT auction, bidder, 0.908 * price AS price, `dateTime`, extra FROM bid
