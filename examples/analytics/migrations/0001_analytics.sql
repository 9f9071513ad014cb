-- Four users; eight todos, three of them completed. Two users touched a todo within the last
-- week; the todos of the others were last updated 30 days ago.
CREATE TABLE todos (
  id         INTEGER PRIMARY KEY,
  user       BLOB NOT NULL REFERENCES _user (id),
  text       TEXT NOT NULL,
  completed  INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL DEFAULT (unixepoch()),
  updated_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;

INSERT INTO _user (email) VALUES
  ('active1@example.com'), ('active2@example.com'), ('idle1@example.com'), ('idle2@example.com');

INSERT INTO todos (user, text, completed, created_at, updated_at)
WITH seed (email, text, completed, days_ago) AS (VALUES
  ('active1@example.com', 'a', 1, 1),
  ('active1@example.com', 'b', 0, 2),
  ('active1@example.com', 'c', 1, 40),
  ('active2@example.com', 'd', 0, 3),
  ('idle1@example.com', 'e', 1, 30),
  ('idle1@example.com', 'f', 0, 30),
  ('idle2@example.com', 'g', 0, 30),
  ('idle2@example.com', 'h', 0, 30)
)
SELECT u.id, seed.text, seed.completed, unixepoch() - seed.days_ago * 86400,
       unixepoch() - seed.days_ago * 86400
FROM seed JOIN _user u ON u.email = seed.email;
