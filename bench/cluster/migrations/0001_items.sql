-- bench/cluster: the table of the cluster line, with 1,000 rows for GET /items/:id to read.
CREATE TABLE items (
  id   INTEGER PRIMARY KEY,
  body TEXT NOT NULL
);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO items (id, body) SELECT i, 'item number ' || i FROM n;
