import { query } from "trailbase-wasm/db"; // added:
declare const id: number; // added:

// Bad:
{
  const rows = await query(`SELECT * FROM todos WHERE id = ${id}`);
}

// Good:
{
  const rows = await query("SELECT * FROM todos WHERE id = ?", [id]);
}
