-- Nexmark q0: the SELECT of nexmark-flink's q0.sql (column names as its sink table's).
SELECT auction, bidder, price, `dateTime`, extra FROM bid
