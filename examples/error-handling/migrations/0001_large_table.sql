-- 10,000 rows for /api/slow to read.
CREATE TABLE large_table (
  id    INTEGER PRIMARY KEY,
  label TEXT NOT NULL,
  value REAL NOT NULL
) STRICT;

INSERT INTO large_table (id, label, value)
WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
SELECT i, 'row ' || i, i * 0.5 FROM n;
