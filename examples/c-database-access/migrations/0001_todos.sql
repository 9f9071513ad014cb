-- A todos table owned by users of the built-in _user table, seeded with three users and six todos.
-- Times are Unix seconds. The index is the one the reference's "Optimize Database Queries" suggests.
CREATE TABLE todos (
  id         INTEGER PRIMARY KEY,
  user       BLOB NOT NULL REFERENCES _user (id),
  text       TEXT NOT NULL,
  completed  INTEGER NOT NULL DEFAULT 0,
  due_date   INTEGER,
  created_at INTEGER NOT NULL DEFAULT (unixepoch()),
  updated_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;
CREATE INDEX _todos__user_index ON todos (user);

INSERT INTO _user (email) VALUES ('alice@example.com'), ('bob@example.com'), ('carol@example.com');

INSERT INTO todos (user, text, completed)
WITH seed (email, text, completed) AS (VALUES
  ('alice@example.com', 'Buy milk', 1),
  ('alice@example.com', 'Write the report', 0),
  ('alice@example.com', 'Call the plumber', 1),
  ('bob@example.com', 'Buy coffee beans', 0),
  ('bob@example.com', 'Water the plants', 1),
  ('carol@example.com', 'Book flights', 0)
)
SELECT u.id, seed.text, seed.completed FROM seed JOIN _user u ON u.email = seed.email;
