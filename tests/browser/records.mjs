// tests/browser/records.mjs BASE_URL OUT_DIR EMAIL TOKEN OTHER_TOKEN OTHER_ID: the records-web
// example (examples/records-web: the reference's npm client `trailbase` against trail) in
// Debian's headless chromium: sign in, create (the item appears through the realtime stream),
// another client's insert appears live, update, a filtered list with a count, delete, a filtered
// subscription, batches with client.execute(), and another user's to-do never shows.
// Screenshots go to OUT_DIR. Exits 0 when every step held, else 1.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, out, email, token, otherToken, otherId] = process.argv.slice(2);
if (!otherId) {
  console.error("usage: records.mjs BASE_URL OUT_DIR EMAIL TOKEN OTHER_TOKEN OTHER_ID");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "trail-chromium-"));

function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
  console.log(`ok: ${what}`);
}

async function api(method, path, tok, body) {
  const res = await fetch(`${base}/api/records/v1/${path}`, {
    method,
    headers: { Authorization: `Bearer ${tok}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
let status = 0;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => console.log(`page: ${m.text()}`));
  const item = (text) => page.locator("#list li", { hasText: text });

  await page.goto(`${base}/`);
  await page.fill("#email", email);
  await page.fill("#password", "password123");
  await page.click("#login button");
  await page.locator("#status").filter({ hasText: `signed in as ${email}` }).waitFor({ timeout: 15000 });
  check(true, "signed in with client.login()");

  await page.fill("#text", "buy milk");
  await page.click("#add button");
  await item("buy milk").waitFor({ timeout: 15000 });
  check(true, "records.create(); the record came back through subscribeAll()");
  await page.screenshot({ path: join(out, "1-created.png") });

  // another client of the same user, and another user
  const list = await api("GET", "todos?order=id", token);
  const owner = list.records[0].owner;
  await api("POST", "todos", token, { owner, text: "from another client" });
  await item("from another client").waitFor({ timeout: 15000 });
  check(true, "another client's insert arrived live");
  await api("POST", "todos", otherToken, { owner: otherId, text: "not yours" });

  await item("buy milk").locator("input[type=checkbox]").check();
  await page.locator("#list li.done", { hasText: "buy milk" }).waitFor({ timeout: 15000 });
  check(true, "records.update(); the change came back live");
  await page.screenshot({ path: join(out, "2-updated.png") });

  await page.check("#open-only");
  await page.locator("#count").filter({ hasText: "1 shown" }).waitFor({ timeout: 15000 });
  check((await page.locator("#list li").count()) === 1 &&
    (await page.evaluate(() => document.body.dataset.total)) === "1",
    "list() with a filter on done, and its total_count");
  await page.uncheck("#open-only");
  await page.locator("#count").filter({ hasText: "2 shown" }).waitFor({ timeout: 15000 });

  await item("from another client").locator("button").click();
  await item("from another client").waitFor({ state: "detached", timeout: 15000 });
  check(true, "records.delete(); the delete came back live");
  // subscribeAll({ filters }): a second client in the page, the same user, streams only the
  // to-dos its filter matches (the first insert does not match: an ignored filter shows it first)
  await page.evaluate(async (mail) => {
    const { initClient } = await import("./trailbase.js");
    const c = initClient(window.location.origin);
    await c.login(mail, "password123");
    const stream = await c.records("todos").subscribeAll({
      filters: [{ column: "text", op: "like", value: "urgent%" }],
    });
    window.filtered = [];
    (async () => { for await (const ev of stream) window.filtered.push(ev); })();
  }, email);
  await api("POST", "todos", token, { owner, text: "later" });
  await api("POST", "todos", token, { owner, text: "urgent: call back" });
  await page.waitForFunction(() => window.filtered.length >= 1, null, { timeout: 15000 });
  const seen = await page.evaluate(() =>
    window.filtered.map((e) => (e.Insert ?? e.Update ?? e.Delete ?? {}).text));
  check(seen.length === 1 && seen[0] === "urgent: call back",
    `subscribeAll({ filters }) streamed only the matching to-do (${JSON.stringify(seen)})`);
  // client.execute(): a batch in one transaction, then one the rules refuse (another user's
  // to-do), which undoes the create before it
  const batch = await page.evaluate(async ([mail, other]) => {
    const { initClient } = await import("./trailbase.js");
    const c = initClient(window.location.origin);
    await c.login(mail, "password123");
    const todos = c.records("todos");
    const me = c.user().id;
    const ids = await c.execute([
      todos.createOp({ owner: me, text: "batch one" }),
      todos.createOp({ owner: me, text: "batch two" }),
    ], true);
    await c.execute([todos.updateOp(ids[0], { done: 1 }), todos.deleteOp(ids[1])], true);
    let refused = "";
    try {
      await c.execute([todos.createOp({ owner: me, text: "undone" }),
        todos.createOp({ owner: other, text: "not mine" })], true);
    } catch (e) {
      refused = String(e.status ?? e);
    }
    const left = await todos.list({ filters: [{ column: "text", op: "like", value: "batch%" }] });
    const undone = await todos.list({ filters: [{ column: "text", value: "undone" }] });
    return { ids, refused, left: left.records.map((r) => [r.text, r.done]),
             undone: undone.records.length };
  }, [email, otherId]);
  check(batch.ids.length === 2 && batch.refused === "403" && batch.undone === 0 &&
    JSON.stringify(batch.left) === '[["batch one",1]]',
    `client.execute() in a transaction, and a refused one undone (${JSON.stringify(batch)})`);
  check((await page.locator("#list li", { hasText: "not yours" }).count()) === 0,
    "another user's to-do never showed");
  check((await page.locator("#error").textContent()) === "", "no error on the page");
  await page.screenshot({ path: join(out, "3-deleted.png") });
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  status = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
