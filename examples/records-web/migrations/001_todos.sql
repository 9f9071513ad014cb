-- The to-do list of the records-web example: each row belongs to a user.
CREATE TABLE todos (
  id INTEGER PRIMARY KEY,
  owner BLOB NOT NULL REFERENCES _user(id),
  text TEXT NOT NULL CHECK(length(text) BETWEEN 1 AND 200),
  done INTEGER NOT NULL DEFAULT 0 CHECK(done IN (0, 1))
) STRICT;
