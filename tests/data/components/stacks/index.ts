// Stack traces a component can see, each expected in these TypeScript sources (test_stacks.c):
// error.stack read by a handler, console.error() of an error, Error.captureStackTrace(), an
// uncaught error, and failed job runs (recorded in _job_runs).
import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";
import { JobHandler } from "trailbase-wasm/job";
import { explode } from "./src/helper";

type CallSite = { [k: string]: () => unknown };
type Prepare = (e: Error, frames: CallSite[]) => string;

// A call site whose methods answer what a hostile handler chooses.
function fake(file: unknown, line: unknown, col: unknown): CallSite {
  return {
    getFunctionName: () => "fake",
    isNative: () => false,
    getFileName: () => file,
    getLineNumber: () => line,
    getColumnNumber: () => col,
  };
}

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/stack", () => {
      try {
        explode("handler");
      } catch (e) {
        return (e as Error).stack ?? "no stack";
      }
    }),
    HttpHandler.get("/logged", () => {
      try {
        explode("logged");
      } catch (e) {
        console.error("caught:", e);
      }
      return "logged";
    }),
    HttpHandler.get("/captured", () => {
      const target: { stack?: string } = {};
      (Error as unknown as { captureStackTrace(t: object): void }).captureStackTrace(target);
      return target.stack ?? "no stack";
    }),
    HttpHandler.get("/uncaught", () => explode("uncaught")),
    // The stack writer the host installed, called with frames that lie about their positions.
    HttpHandler.get("/fake-frames", () => {
      const prepare = (Error as unknown as { prepareStackTrace: Prepare }).prepareStackTrace;
      const big = "component.js".repeat(100);
      const frames = [
        fake("component.js", 2 ** 40, 1),
        fake("component.js", -1, 5),
        fake("component.js", 1.5, 1),
        fake("component.js", NaN, 1),
        fake("component.js", { valueOf: () => 1 }, 1),
        fake("component.js", "1", "1"),
        fake("component.js", 1e9, 1e9),
        fake(big, 1, 1),
        fake("component.js", 1, 1),
      ];
      return prepare(new Error("fake"), frames);
    }),
  ],
  jobHandlers: [
    JobHandler.cron("fails", "* * * * * *", () => {
      explode("job");
    }),
    JobHandler.cron("fails-later", "* * * * * *", async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      explode("async job");
    }),
  ],
});
