-- Nexmark q9: the SELECT of nexmark-flink's q9.sql (column names as its sink table's).
-- Flink 2.3 plans this top-1 as an insert-only deduplication (FLINK-40368) and sends each
-- auction's new best bid as +U without the -U of the old one: NexmarkGolden folds it by
-- the top-1's partition key, the query's unique key.
-- upsert key: id
SELECT id, itemName, description, initialBid, reserve, `dateTime`, expires, seller, category, extra,
    auction, bidder, price, bid_dateTime, bid_extra
FROM (
   SELECT A.*, B.auction, B.bidder, B.price, B.`dateTime` AS bid_dateTime, B.extra AS bid_extra,
     ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.`dateTime` ASC) AS rownum
   FROM auction A, bid B
   WHERE A.id = B.auction AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires
)
WHERE rownum <= 1
