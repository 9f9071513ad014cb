-- 20,000 items in 10 groups: v = id, grp = id % 10.
CREATE TABLE items (
  id  INTEGER PRIMARY KEY,
  grp INTEGER NOT NULL,
  v   INTEGER NOT NULL
);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO items (id, grp, v) SELECT i, i % 10, i FROM n;
