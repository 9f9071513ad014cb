CREATE TABLE todos (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  completed INTEGER NOT NULL DEFAULT 0
);
INSERT INTO todos (title, completed) VALUES ('write docs', 1), ('ship', 0), ('rest', 0);
