-- Each user's own to-dos: `owner` is the 16-byte id of a `_user` row.
CREATE TABLE todos (
  id INTEGER PRIMARY KEY,
  owner BLOB NOT NULL REFERENCES _user (id) ON DELETE CASCADE,
  text TEXT NOT NULL
) STRICT;
