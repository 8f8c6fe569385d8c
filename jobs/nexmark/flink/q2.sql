-- Nexmark q2: the SELECT of nexmark-flink's q2.sql (column names as its sink table's).
SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
