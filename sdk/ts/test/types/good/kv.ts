// trailbase-wasm/kv used the way a handler would: the reference's Store API and trail's additions.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";
import { open, Store, type IncrementOptions, type SetOptions, type Value } from "trailbase-wasm/kv";

const kv: Store = open();
const again: Store = Store.open();

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/kv", () => {
      const bytes: Uint8Array | undefined = kv.get("a");
      const text: string | undefined = again.getText("a");
      kv.set("a", new Uint8Array([1, 2]));
      const v: Value = "text";
      const opts: SetOptions = { ttlMs: 1000 };
      kv.set("b", v, opts);
      const deleted: boolean = kv.delete("a");
      const there: boolean = kv.exists("b");
      const inc: IncrementOptions = { ttlMs: 60_000 };
      const n: number = kv.increment("hits") + kv.increment("hits", 5, inc);
      const keys: string[] = kv.listKeys("h").concat(kv.listKeys());
      return `${bytes?.length} ${text} ${deleted} ${there} ${n} ${keys.length}`;
    }),
  ],
});
