-- What the dashboard counts: two users, three todos, four articles.
CREATE TABLE todos (
  id         INTEGER PRIMARY KEY,
  user       BLOB NOT NULL REFERENCES _user (id),
  text       TEXT NOT NULL,
  completed  INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL DEFAULT (unixepoch()),
  updated_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;
CREATE TABLE articles (
  id    INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  body  TEXT NOT NULL DEFAULT ''
) STRICT;

INSERT INTO _user (email) VALUES ('ann@example.com'), ('ben@example.com');
INSERT INTO todos (user, text)
SELECT id, 'first todo of ' || email FROM _user
UNION ALL SELECT id, 'second todo of ' || email FROM _user WHERE email = 'ann@example.com';
INSERT INTO articles (title) VALUES ('Hello'), ('WASM handlers'), ('Parallel queries'), ('Vectors');
