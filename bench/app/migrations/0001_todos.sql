-- bench: the reference's `todos` table with 10,000 rows: 100 users, every third todo completed.
-- trail applies it as a migration; bench/run.sh loads the same file into the references' database.
CREATE TABLE todos (
  id         INTEGER PRIMARY KEY,
  user       INTEGER NOT NULL,
  text       TEXT NOT NULL,
  completed  INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX _todos__user_index ON todos(user);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
INSERT INTO todos (id, user, text, completed, created_at, updated_at)
SELECT i, i % 100, 'todo number ' || i, i % 3 = 0, 1700000000 + i, 1700000000 + i FROM n;
