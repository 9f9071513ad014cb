-- The todos of the jobs example: completed ones updated long ago (cleanup-old-todos deletes
-- them), open ones past their due date (send-reminders names them), and recent ones.
CREATE TABLE todos (
  id         INTEGER PRIMARY KEY,
  user       BLOB NOT NULL REFERENCES _user (id),
  text       TEXT NOT NULL,
  completed  INTEGER NOT NULL DEFAULT 0,
  due_date   INTEGER,
  created_at INTEGER NOT NULL DEFAULT (unixepoch()),
  updated_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;

INSERT INTO _user (email) VALUES ('alice@example.com'), ('bob@example.com');

INSERT INTO todos (user, text, completed, due_date, updated_at)
WITH seed (email, text, completed, due, age_days) AS (VALUES
  ('alice@example.com', 'Old and done', 1, NULL, 30),
  ('alice@example.com', 'Also old and done', 1, NULL, 8),
  ('alice@example.com', 'Done yesterday', 1, NULL, 1),
  ('bob@example.com', 'File the taxes', 0, -2, 10),
  ('bob@example.com', 'Plan the party', 0, 5, 0)
)
SELECT u.id, seed.text, seed.completed,
       CASE WHEN seed.due IS NULL THEN NULL ELSE unixepoch() + seed.due * 86400 END,
       unixepoch() - seed.age_days * 86400
FROM seed JOIN _user u ON u.email = seed.email;
