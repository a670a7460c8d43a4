// The console in Debian's Chromium (playwright-core, no browser download) against a real
// `referral serve` on a fresh SQLite database seeded through the API (test/seed.py): log in,
// the overview's charts drawn from the seeded numbers, approve a fraud review, approve a payout
// with a TOTP code, Arabic and Persian right to left, keyboard only, axe-core.
// Screenshots: console/test-results/screenshots/.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const REPO = resolve(ROOT, "..");
const SCREENSHOTS = join(ROOT, "test-results", "screenshots");
const AXE = existsSync(join(ROOT, "node_modules", "axe-core", "axe.min.js"))
  ? readFileSync(join(ROOT, "node_modules", "axe-core", "axe.min.js"), "utf8") : "";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"];
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`;
if (skip && process.env.REQUIRE_SERVICES === "1") throw new Error(`${CHROMIUM} is required (REQUIRE_SERVICES=1)`);

async function freePort() {
  for (let port = 8150; port < 8200; port++) {
    const free = await new Promise((done) => {
      const probe = createServer().once("error", () => done(false));
      probe.listen(port, "127.0.0.1", () => probe.close(() => done(true)));
    });
    if (free) return port;
  }
  throw new Error("no free port in 8150-8199");
}

// RFC 6238, as the admin's authenticator app computes it.
function totp(secret, at = Date.now()) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const digest = createHmac("sha1", key).update(counter).digest();
  const offset = digest[digest.length - 1] & 0xf;
  return String((digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

async function axeViolations(page) {
  await page.addScriptTag({ content: AXE });
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target) }));
  });
}

describe("the console in Chromium", { skip }, () => {
  let server, browser, base, seeded, dir, output = "";

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const python = process.env.REFERRAL_PYTHON ?? join(REPO, ".venv", "bin", "python");
    dir = mkdtempSync(join(tmpdir(), "referral-console-"));
    const port = await freePort();
    const env = { ...process.env, DATABASE_URL: `sqlite+aiosqlite:///${join(dir, "referral.db")}`, HOST: "127.0.0.1",
      PORT: String(port), APP_ENV: "development", LOG_LEVEL: "WARNING", SECRET_KEY: "console-browser-tests",
      RATE_LIMITS_ENABLED: "0", PYTHONPATH: REPO };
    execFileSync(python, ["-m", "app.cli", "migrate"], { cwd: dir, env, stdio: "pipe" });
    seeded = JSON.parse(execFileSync(python, [join(ROOT, "test", "seed.py")], { cwd: dir, env, stdio: ["ignore", "pipe", "inherit"] }));
    server = spawn(python, ["-m", "app.cli", "serve"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    server.stdout.on("data", (c) => (output += c));
    server.stderr.on("data", (c) => (output += c));
    base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      try { if ((await fetch(`${base}/healthz`)).ok) break; } catch { /* starting */ }
      if (i > 300 || server.exitCode !== null) throw new Error(`the API did not start:\n${output}`);
      await new Promise((done) => setTimeout(done, 100));
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  });

  after(async () => {
    await browser?.close();
    server?.kill("SIGTERM");
    if (server && server.exitCode === null) await new Promise((done) => server.once("exit", done));
    rmSync(dir, { recursive: true, force: true });
  });

  async function loggedIn(locale = "en") {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on("pageerror", (error) => { throw error; });
    await page.goto(`${base}/console/`);
    await page.evaluate((l) => localStorage.setItem("referral.console.locale", l), locale);
    await page.reload();
    await page.fill("#email", seeded.email);
    await page.fill("#password", seeded.password);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#chart-referrals canvas");
    return page;
  }

  it("refuses a wrong password and stays on the login form", async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/console`);
    await page.fill("#email", seeded.email);
    await page.fill("#password", "not the password at all");
    await page.click("button[type=submit]");
    await page.waitForSelector(".error:not(:empty)");
    assert.equal(await page.textContent(".error"), "Wrong email or password.");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("referral.console.session")), null);
    await page.close();
  });

  it("logs in and draws the overview from the seeded numbers", async () => {
    const page = await loggedIn();
    const funnel = await page.$$eval(".funnel li", (items) => items.map((li) => [li.querySelector(".step").textContent,
      li.querySelector(".value").textContent]));
    // 24 friends: 8 through tracked links, 16 with a typed code (+ kim's alias and omar's two, in review); 20 bought
    assert.deepEqual(funnel, [["Clicks", "8"], ["Sign-ups", "27"], ["Referred customers", "27"], ["Qualified", "20"], ["Rewarded", "20"]]);
    const leaders = await page.$$eval("table:has(caption:text-is('Top referrers')) tbody tr",
      (rows) => rows.map((r) => [...r.children].slice(0, 4).map((c) => c.textContent)));
    assert.deepEqual(leaders.map((r) => r[1]), ["jane", "omar", "kim"]); // omar and kim: 5 qualified each, omar referred more
    assert.deepEqual(leaders[0], ["1", "jane", "10", "12"]);
    // both charts drawn: canvases with ink on them, and a legend naming each line
    for (const id of ["chart-referrals", "chart-revenue"]) {
      const inked = await page.$eval(`#${id} canvas`, (canvas) => {
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
        return painted;
      });
      assert.ok(inked > 1000, `${id} is blank`);
    }
    assert.deepEqual(await page.$$eval("#chart-revenue .u-legend .u-series:not(:first-child) .u-label", (l) => l.map((x) => x.textContent)),
      ["Revenue EUR", "Revenue USD"]);
    assert.match(await page.textContent("#k-factor"), /^[0-9.]+$/);
    assert.deepEqual(await axeViolations(page), []);
    await page.screenshot({ path: join(SCREENSHOTS, "overview-en.png"), fullPage: true });
    await page.close();
  });

  it("shows a referral's timeline with its fraud evidence", async () => {
    const page = await loggedIn();
    await page.click("nav a[href='#/reviews']");
    await page.click("a:text('kim referred kim-alias')");
    await page.waitForSelector("table:has(caption:text-is('Timeline'))");
    assert.equal(await page.textContent("#referral-status"), "PENDING");
    const rows = await page.$$eval("table tbody tr", (trs) => trs.map((tr) => [...tr.children].slice(1).map((c) => c.textContent)));
    assert.ok(rows.some(([what]) => what.startsWith("SIGNUP")), JSON.stringify(rows));
    assert.ok(rows.some(([what, , details]) => what === "Fraud check (REFERRAL): REVIEW" && /device/.test(details)), JSON.stringify(rows));
    assert.deepEqual(await axeViolations(page), []);
    await page.close();
  });

  it("lists reward rules, webhooks and API keys", async () => {
    const page = await loggedIn();
    await page.click("nav a[href='#/rules']");
    await page.waitForSelector("table:has(caption:text-is('Give $10, get $10'))");
    const rules = await page.$$eval("table:has(caption:text-is('Give $10, get $10')) tbody tr", (trs) => trs.map((tr) => [...tr.children].slice(0, 4).map((c) => c.textContent)));
    assert.deepEqual(rules, [["10% commission", "PURCHASE", "REFERRER", "Commission 10%"], ["Get $5", "PURCHASE", "REFEREE", "Credit $5.00"]]);
    assert.deepEqual(await axeViolations(page), []);
    await page.click("nav a[href='#/webhooks']");
    await page.waitForSelector("table:has(caption:text-is('Endpoints'))");
    assert.equal(await page.locator("text=Nothing to show.").count(), 2);
    await page.click("nav a[href='#/keys']");
    await page.waitForSelector("table:has(caption:text-is('API keys'))");
    const keys = await page.$$eval("tbody tr", (trs) => trs.map((tr) => tr.children[1].textContent).sort());
    assert.deepEqual(keys, ["PUBLISHABLE", "SECRET"]);
    assert.ok(!(await page.content()).includes(seeded.secretKey), "only masked keys");
    assert.deepEqual(await axeViolations(page), []);
    await page.close();
  });

  it("resolves several reviews at once, one confirmation, each outcome shown", async () => {
    const page = await loggedIn();
    await page.click("nav a[href='#/reviews']");
    await page.locator(".review", { hasText: "omar referred omar-alias-2" }).waitFor();
    assert.equal(await page.isDisabled("#bulk-approve"), true, "nothing selected yet");
    await page.getByLabel("Select the review of omar-alias-1").check();
    await page.getByLabel("Select the review of omar-alias-2").check();
    assert.equal(await page.textContent("#bulk-approve"), "Approve selected (2)");
    // meanwhile someone rejects omar-alias-2 from the server: that one must fail, alone
    const api = async (query, variables = {}) => (await (await fetch(`${base}/graphql`, { method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${seeded.secretKey}` },
      body: JSON.stringify({ query, variables }) })).json()).data;
    const open = (await api("{ fraudReviews(status: OPEN) { edges { node { id referral { referee { externalId } } } } } }"))
      .fraudReviews.edges.map((e) => e.node);
    const second = open.find((r) => r.referral.referee.externalId === "omar-alias-2");
    assert.ok(second, JSON.stringify(open));
    await api(`mutation($id: ID!) { resolveFraudReview(id: $id, resolution: REJECT) { userErrors { code } } }`, { id: second.id });
    await page.click("#bulk-approve");
    await page.waitForSelector("#bulk-dialog[open]");
    assert.deepEqual(await page.$$eval("#bulk-dialog li", (l) => l.map((x) => x.textContent)),
      ["omar referred omar-alias-2", "omar referred omar-alias-1"]); // newest first, as listed
    assert.deepEqual(await axeViolations(page), []);
    await page.screenshot({ path: join(SCREENSHOTS, "reviews-bulk-confirm.png") });
    await page.keyboard.press("Enter"); // the confirm button has the focus
    await page.waitForSelector("#bulk-results");
    assert.deepEqual(await page.$$eval("#bulk-results li", (l) => l.map((x) => x.textContent)),
      ["omar-alias-2: not resolved: this review was already rejected", "omar-alias-1: done."]);
    await page.waitForFunction(() => document.getElementById("status").textContent === "1 resolved, 1 failed.");
    assert.equal(await page.locator(".review", { hasText: "omar-alias" }).count(), 0);
    assert.deepEqual(await axeViolations(page), []);
    await page.screenshot({ path: join(SCREENSHOTS, "reviews-bulk-results.png"), fullPage: true });
    const statuses = (await api("{ fraudReviews(status: null, first: 50) { edges { node { status referral { referee { externalId } } } } } }"))
      .fraudReviews.edges.map((e) => [e.node.referral.referee.externalId, e.node.status]).filter(([who]) => who.startsWith("omar")).sort();
    assert.deepEqual(statuses, [["omar-alias-1", "APPROVED"], ["omar-alias-2", "REJECTED"]]);
    await page.close();
  });

  it("creates an API key shown once and revokes it, each with a second factor", async () => {
    const page = await loggedIn();
    await page.click("nav a[href='#/keys']");
    await page.waitForSelector("#create-key");
    await page.fill("#key-name", "from the console");
    await page.click("#create-key");
    await page.waitForSelector("#totp-dialog[open]");
    await page.fill("#totp-code", "000000");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#totp-dialog .error:not(:empty)");
    assert.equal(await page.locator("#new-key").count(), 0, "a wrong code issues nothing");
    // a recovery code (the authenticator's next code is the payout test's)
    await page.fill("#totp-code", seeded.recoveryCodes[0]);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#new-key");
    const key = (await page.textContent("#new-key code")).trim();
    assert.match(key, /^sk_/);
    const works = async () => (await (await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json",
      authorization: `Bearer ${key}` }, body: JSON.stringify({ query: "{ apiKeys { maskedKey } }" }) })).json());
    const listed = (await works()).data.apiKeys.map((k) => k.maskedKey);
    assert.ok(listed.includes(`sk_…${key.slice(-4)}`), JSON.stringify(listed));
    assert.deepEqual(await axeViolations(page), []);
    await page.screenshot({ path: join(SCREENSHOTS, "api-key-created.png"), fullPage: true });
    await page.reload();
    await page.waitForSelector("#create-key");
    assert.ok(!(await page.content()).includes(key), "the key is shown once only");
    await page.getByRole("button", { name: `Revoke sk_…${key.slice(-4)}` }).click();
    await page.waitForSelector("#totp-dialog[open]");
    await page.fill("#totp-code", seeded.recoveryCodes[1]);
    await page.keyboard.press("Enter");
    await page.waitForFunction((k) => document.getElementById("status").textContent === `Revoked: sk_…${k}.`, key.slice(-4));
    assert.equal((await works()).errors[0].extensions.code, "UNAUTHENTICATED");
    await page.screenshot({ path: join(SCREENSHOTS, "api-key-revoked.png"), fullPage: true });
    await page.close();
  });

  it("edits a reward rule only after simulating the change", async () => {
    const page = await loggedIn();
    await page.click("nav a[href='#/rules']");
    await page.getByRole("button", { name: "Edit Get $5" }).click();
    await page.waitForSelector("#rule-editor form");
    await page.fill("#rule-value", "7.5");
    assert.equal(await page.isDisabled("#save-rule"), true, "no saving before a simulation");
    await page.click("#simulate-rule");
    await page.waitForSelector("table:has(caption:text-is('Cost, current rules and with this change'))");
    const credit = await page.$$eval("#simulation tbody tr", (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    const usd = credit.find((row) => row[0] === "Credit (USD)");
    assert.ok(usd && usd[3].startsWith("+"), JSON.stringify(credit));
    assert.deepEqual(await axeViolations(page), []);
    await page.screenshot({ path: join(SCREENSHOTS, "rule-simulation.png"), fullPage: true });
    await page.fill("#rule-value", "8");
    assert.equal(await page.isDisabled("#save-rule"), true, "changed after the simulation: simulate again");
    await page.fill("#rule-value", "7.5");
    await page.click("#simulate-rule");
    await page.waitForFunction(() => !document.getElementById("save-rule").disabled);
    await page.click("#save-rule");
    await page.waitForFunction(() => document.getElementById("status").textContent === "Saved: Get $5.");
    const rows = await page.$$eval("table:has(caption:text-is('Give $10, get $10')) tbody tr",
      (trs) => trs.map((tr) => [...tr.children].slice(0, 5).map((c) => c.textContent)));
    assert.ok(rows.some((r) => r[0] === "Get $5" && r[3] === "Credit $7.50" && r[4] === "2"), JSON.stringify(rows));
    await page.close();
  });

  it("approves a referral in fraud review", async () => {
    const page = await loggedIn();
    await page.click("nav a[href='#/reviews']");
    const review = page.locator(".review", { hasText: "kim referred kim-alias" });
    await review.waitFor();
    assert.match(await review.textContent(), /same_device/);
    assert.deepEqual(await axeViolations(page), []);
    await page.screenshot({ path: join(SCREENSHOTS, "reviews-en.png"), fullPage: true });
    await review.getByRole("button", { name: "Approve" }).click();
    await page.waitForSelector("text=No referral is waiting for review.");
    await page.waitForFunction(() => document.getElementById("status").textContent === "Approved: kim-alias.");
    const stored = await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json",
      authorization: `Bearer ${seeded.secretKey}` }, body: JSON.stringify({ query: "{ fraudReviews(status: APPROVED) { edges { node { resolvedByAdminId referral { referee { externalId } } } } } }" }) });
    const approved = (await stored.json()).data.fraudReviews.edges.map((e) => e.node);
    const kims = approved.filter((r) => r.referral.referee.externalId === "kim-alias");
    assert.equal(kims.length, 1);
    assert.ok(kims[0].resolvedByAdminId, "resolved by the admin's session, not a key");
    await page.close();
  });

  it("approves a payout only with a valid code from the authenticator", async () => {
    const page = await loggedIn();
    await page.click("nav a[href='#/payouts']");
    await page.waitForSelector("#approve-payouts");
    assert.equal(await page.textContent("#payout-totals"), `Total: ${new Intl.NumberFormat("en", { style: "currency", currency: "USD" }).format(seeded.payout.amount / 100)}`);
    await page.click("#approve-payouts");
    await page.fill("#totp-code", "000000");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#totp-dialog .error:not(:empty)");
    assert.ok(await page.isVisible("#totp-dialog"), "a wrong code approves nothing");
    await page.screenshot({ path: join(SCREENSHOTS, "payout-totp.png") });
    // the enrollment spent the current step's code: the next step's is accepted (clock drift)
    await page.fill("#totp-code", totp(seeded.totpSecret, Date.now() + 30_000));
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.getElementById("status").textContent === "1 payout(s) approved.");
    assert.equal(await page.locator("#approve-payouts").count(), 0);
    const stored = await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json",
      authorization: `Bearer ${seeded.secretKey}` }, body: JSON.stringify({ query: `{ payout(id: "${seeded.payout.id}") { status } }` }) });
    assert.notEqual((await stored.json()).data.payout.status, "PENDING_APPROVAL");
    await page.close();
  });

  for (const [locale, heading] of [["ar", "نظرة عامة"], ["fa", "نمای کلی"]]) {
    it(`lays the overview out right to left in ${locale}, with no axe violations`, async () => {
      const page = await loggedIn(locale);
      assert.equal(await page.getAttribute("html", "dir"), "rtl");
      assert.equal(await page.getAttribute("html", "lang"), locale);
      assert.equal(await page.textContent("h1"), heading);
      const [nav, main] = await page.$$eval("header .brand, nav ul", (els) => els.map((e) => e.getBoundingClientRect().left));
      assert.ok(nav > main, "the brand sits on the right, the menu to its left");
      assert.deepEqual(await axeViolations(page), []);
      await page.screenshot({ path: join(SCREENSHOTS, `overview-${locale}.png`), fullPage: true });
      await page.close();
    });
  }

  it("works from the keyboard alone", async () => {
    const page = await loggedIn();
    assert.equal(await page.evaluate(() => document.activeElement.tagName), "H1");
    const reached = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press("Tab");
      reached.push(await page.evaluate(() => document.activeElement.id || document.activeElement.textContent.trim()));
    }
    assert.ok(reached.includes("program") && reached.includes("period"), reached.join(","));
    await page.focus("#period");
    await page.selectOption("#period", "7");
    await page.waitForFunction(() => location.hash === "#/overview?days=7");
    await page.waitForSelector("#chart-referrals canvas");
    await page.close();
  });
});
