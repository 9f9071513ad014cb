// tests/browser/signin.mjs BASE_URL OUT_DIR SERVER_LOG: the sign-in page of a running trail in
// Debian's headless chromium: register, a wrong password, login, the guest's req.user() through
// the auth cookie (and a cookie POST without the CSRF token), logout, and a password reset with
// the code trail logged. Screenshots go to OUT_DIR. Exits 0 when every step held, else 1.
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, out, serverLog] = process.argv.slice(2);
if (!base || !out || !serverLog) {
  console.error("usage: signin.mjs BASE_URL OUT_DIR SERVER_LOG");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "trail-chromium-"));
const email = "browser@example.org";

function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
  console.log(`ok: ${what}`);
}

async function loggedCode(marker) {
  for (let i = 0; i < 100; i++) {
    const log = readFileSync(serverLog, "utf8");
    const at = log.lastIndexOf(marker);
    if (at >= 0) return /^[A-Za-z0-9]+/.exec(log.slice(at + marker.length))[0];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${marker} in the server's log`);
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
  const message = () => page.locator("#message");

  await page.goto(`${base}/_/auth/register`);
  await page.fill("#email", email);
  await page.fill("#password", "browser-pw-1");
  await page.fill("#password_repeat", "browser-pw-1");
  await page.click("#submit");
  await message().filter({ hasText: "Registered" }).waitFor({ timeout: 15000 });
  await page.screenshot({ path: join(out, "1-registered.png") });
  check(true, "registered through the page");

  await page.goto(`${base}/_/auth/login`);
  await page.fill("#email", email);
  await page.fill("#password", "not-the-password");
  await page.click("#submit");
  await message().filter({ hasText: "wrong email or password" }).waitFor({ timeout: 15000 });
  await page.screenshot({ path: join(out, "2-wrong-password.png") });
  check(true, "a wrong password is shown as such");

  await page.fill("#password", "browser-pw-1");
  await page.click("#submit");
  await page.locator("#status-email").filter({ hasText: email }).waitFor({ timeout: 15000 });
  await page.screenshot({ path: join(out, "3-signed-in.png") });
  const cookies = await context.cookies(base);
  const auth = cookies.find((c) => c.name === "auth_token");
  check(auth && auth.httpOnly && auth.sameSite === "Strict", "auth_token cookie, HttpOnly, SameSite=Strict");
  check(!(await page.evaluate(() => document.cookie)).includes("auth_token"), "the page's script cannot read the token");

  const me = await page.evaluate(async () => (await fetch("/me")).json());
  check(me.user && me.user.email === email, "the guest's req.user() from the cookie");
  const forged = await page.evaluate(async () => (await fetch("/me", { method: "POST", body: "{}" })).json());
  check(forged.user === null, "a cookie POST without CSRF-Token counts as anonymous");
  const withCsrf = await page.evaluate(async (csrf) =>
    (await fetch("/me", { method: "POST", body: "{}", headers: { "CSRF-Token": csrf } })).json(), me.user.csrf);
  check(withCsrf.user && withCsrf.user.email === email, "with its CSRF-Token it counts");

  await page.click("#logout");
  await message().filter({ hasText: "Signed out." }).waitFor({ timeout: 15000 });
  await page.screenshot({ path: join(out, "4-signed-out.png") });
  const st = await page.evaluate(async () => (await fetch("/api/auth/v1/status")).json());
  check(st.auth_token === null, "signed out: /status has no token");
  const after = await page.evaluate(async () => (await fetch("/me")).json());
  check(after.user === null, "signed out: req.user() is null");

  await page.goto(`${base}/_/auth/reset_password`);
  await page.fill("#email", email);
  await page.click("#submit");
  await message().filter({ hasText: "reset link is on its way" }).waitFor({ timeout: 15000 });
  await page.screenshot({ path: join(out, "5-reset-requested.png") });
  const code = await loggedCode("reset_password?code=");
  await page.goto(`${base}/_/auth/reset_password?code=${code}`);
  await page.fill("#password", "browser-pw-2");
  await page.fill("#password_repeat", "browser-pw-2");
  await page.click("#submit");
  await message().filter({ hasText: "Password changed" }).waitFor({ timeout: 15000 });
  await page.screenshot({ path: join(out, "6-password-changed.png") });

  await page.goto(`${base}/_/auth/login`);
  await page.fill("#email", email);
  await page.fill("#password", "browser-pw-2");
  await page.click("#submit");
  await page.locator("#status-email").filter({ hasText: email }).waitFor({ timeout: 15000 });
  await page.screenshot({ path: join(out, "7-signed-in-again.png") });
  check(true, "signed in with the new password");
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  status = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
