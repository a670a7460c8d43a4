// Starts what the browser tests run against: the Referral API with its demo shop (a fresh
// SQLite database, `referral migrate`, `referral demo`, `referral serve`), and a static server
// for pages on other origins. Ports come from 8100-8149.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createServer as createNetServer } from "node:net";
import type { TestProject } from "vitest/node";

export const CHROMIUM = "/usr/bin/chromium";
const JS_ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..", "..");
const REPO = resolve(JS_ROOT, "..", "..");

export interface BrowserEnv {
  skip: string | null;
  api: string; // http://127.0.0.1:PORT: the API (the widget's calls go here)
  shop: string; // http://localhost:PORT: the demo shop, another origin than the API
  staticAllowed: string; // http://localhost:PORT2: pages on an origin the merchant allowed
  staticOther: string; // http://127.0.0.1:PORT2: the same pages on an origin nobody allowed
  deadApi: string; // an address where nothing listens
  keys: Record<string, string>;
}

declare module "vitest" {
  export interface ProvidedContext {
    env: BrowserEnv;
  }
}

async function freePort(taken: number[]): Promise<number> {
  for (let port = 8100; port < 8150; port++) {
    if (taken.includes(port)) continue;
    const free = await new Promise<boolean>((done) => {
      const probe = createNetServer().once("error", () => done(false));
      probe.listen(port, "127.0.0.1", () => probe.close(() => done(true)));
    });
    if (free) return port;
  }
  throw new Error("no free port in 8100-8149");
}

async function waitForHealth(url: string, server: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (server.exitCode !== null) throw new Error(`the API exited (${server.exitCode}):\n${log()}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(`the API did not start:\n${log()}`);
}

function staticServer(values: Record<string, string>): Server {
  return createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://x").pathname;
    const [folder, type] = path.startsWith("/dist/")
      ? [join(JS_ROOT, "dist"), "text/javascript; charset=utf-8"]
      : [join(JS_ROOT, "test", "browser", "pages"), "text/html; charset=utf-8"];
    const file = join(folder, path.replace(/^\/(dist\/)?/, ""));
    if (!file.startsWith(folder) || !existsSync(file)) {
      response.writeHead(404).end("not found");
      return;
    }
    let body = readFileSync(file, "utf8");
    for (const [name, value] of Object.entries(values)) body = body.replaceAll(`{{${name}}}`, value);
    response.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body);
  });
}

export default async function setup(project: TestProject) {
  if (!existsSync(CHROMIUM)) {
    if (process.env.REQUIRE_SERVICES === "1") throw new Error(`${CHROMIUM} is required (REQUIRE_SERVICES=1)`);
    project.provide("env", { skip: `${CHROMIUM} is not installed` } as BrowserEnv);
    return;
  }
  const python = process.env.REFERRAL_PYTHON ?? join(REPO, ".venv", "bin", "python");
  const dir = mkdtempSync(join(tmpdir(), "referral-browser-"));
  const apiPort = await freePort([]);
  const staticPort = await freePort([apiPort]);
  const deadPort = await freePort([apiPort, staticPort]);
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite+aiosqlite:///${join(dir, "referral.db")}`,
    HOST: "127.0.0.1",
    PORT: String(apiPort),
    APP_ENV: "development",
    LOG_LEVEL: "WARNING",
  };
  execFileSync(python, ["-m", "app.cli", "migrate"], { cwd: dir, env, stdio: "pipe" });
  execFileSync(python, ["-m", "app.cli", "demo"], { cwd: dir, env, stdio: "pipe" });
  let output = "";
  const server = spawn(python, ["-m", "app.cli", "serve"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  server.stdout!.on("data", (chunk) => (output += chunk));
  server.stderr!.on("data", (chunk) => (output += chunk));
  const api = `http://127.0.0.1:${apiPort}`;
  await waitForHealth(api, server, () => output);

  const keys = JSON.parse(readFileSync(join(dir, ".referral-demo-keys"), "utf8"));
  const staticAllowed = `http://localhost:${staticPort}`;
  // A merchant lists its shop's origins; the demo's two and the test pages' (not 127.0.0.1:static).
  const origins = [`http://localhost:${apiPort}`, `http://127.0.0.1:${apiPort}`, staticAllowed];
  const set = await fetch(`${api}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${keys.secret_key}` },
    body: JSON.stringify({
      query: "mutation($o: [String!]!) { setWidgetAllowedOrigins(origins: $o) { userErrors { code } } }",
      variables: { o: origins },
    }),
  });
  if (!set.ok) throw new Error(`could not set the allowed origins: ${await set.text()}`);

  const pages = staticServer({ API: api, PK: keys.publishable_key, DEAD: `http://127.0.0.1:${deadPort}` });
  await new Promise<void>((done) => pages.listen(staticPort, "127.0.0.1", done));
  project.provide("env", {
    skip: null,
    api,
    shop: `http://localhost:${apiPort}`,
    staticAllowed,
    staticOther: `http://127.0.0.1:${staticPort}`,
    deadApi: `http://127.0.0.1:${deadPort}`,
    keys,
  });

  return async () => {
    pages.close();
    server.kill("SIGTERM");
    await new Promise((done) => (server.exitCode !== null ? done(null) : server.once("exit", done)));
    rmSync(dir, { recursive: true, force: true });
  };
}
