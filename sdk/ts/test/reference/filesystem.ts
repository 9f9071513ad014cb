import { HttpHandler } from "trailbase-wasm/http"; // added:
import { readFile } from "trailbase-wasm/fs"; // added:

HttpHandler.get("/files/read", async () => {
  // Read from sandboxed root
  const content = await readFile("/data/config.json");
  return content;
});
