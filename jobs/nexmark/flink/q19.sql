-- Nexmark q19: the SELECT of nexmark-flink's q19.sql (column names as its sink table's).
SELECT * FROM
(SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid)
WHERE rank_number <= 10
