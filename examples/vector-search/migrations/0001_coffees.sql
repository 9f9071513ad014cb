-- Coffees with 384-dimensional float32 embeddings (BLOBs made by vec_f32 from JSON arrays). The
-- embeddings are synthetic: element i of coffee k is ((i * k) % 17) / 17 - 0.5, deterministic
-- and distinct per coffee, standing in for what an embedding model would produce.
CREATE TABLE coffees (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL,
  description  TEXT NOT NULL,
  flavor_notes TEXT NOT NULL,
  embedding    BLOB NOT NULL CHECK (vec_length(embedding) = 384)
) STRICT;

INSERT INTO coffees (id, name, description, flavor_notes, embedding)
WITH RECURSIVE
  dims (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM dims WHERE i < 383),
  beans (k, name, description, flavor_notes) AS (VALUES
    (1, 'Ethiopia Yirgacheffe', 'Washed heirloom varieties from Gedeo', 'jasmine, lemon, bergamot'),
    (2, 'Colombia Huila', 'Caturra and Castillo from smallholders', 'caramel, red apple, cocoa'),
    (3, 'Kenya Nyeri AA', 'SL28 and SL34 grown on volcanic soil', 'blackcurrant, grapefruit, tomato'),
    (4, 'Sumatra Mandheling', 'Wet-hulled, full bodied', 'cedar, dark chocolate, earth'),
    (5, 'Guatemala Antigua', 'Bourbon from the Antigua valley', 'milk chocolate, almond, orange'),
    (6, 'Brazil Cerrado', 'Natural process Mundo Novo', 'peanut, cocoa, low acidity'),
    (7, 'Costa Rica Tarrazu', 'Honey processed Catuai', 'honey, apricot, brown sugar'),
    (8, 'Panama Geisha', 'Washed Geisha from Boquete', 'jasmine, peach, black tea')
  )
SELECT k, name, description, flavor_notes,
       (SELECT vec_f32(json_group_array(((i * k) % 17) / 17.0 - 0.5)) FROM dims)
FROM beans;
