import { vi } from "vitest";

export const CONFIG = { publishableKey: "pk_test123", apiUrl: "https://api.example" };

export interface Call {
  url: string;
  init: RequestInit;
  body: { query: string; variables: Record<string, any> };
}

/** Stubs fetch with answers taken in turn: an object is a 200 JSON body, a number a bare
 * status, an Error a network failure. Returns the calls made. */
export function answer(...answers: (object | number | Error)[]): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    calls.push({ url, init, body: JSON.parse(String(init.body)) });
    const next = answers.length > 1 ? answers.shift()! : answers[0];
    if (next instanceof Error) throw next;
    if (typeof next === "number") return new Response("error", { status: next });
    return new Response(JSON.stringify(next), { status: 200, headers: { "Content-Type": "application/json" } });
  });
  return calls;
}

/** The events of `type` that reach `window` while the test runs. */
export function events(type: string): CustomEvent[] {
  const seen: CustomEvent[] = [];
  window.addEventListener(type, (event) => seen.push(event as CustomEvent));
  return seen;
}

export function clearBrowserState(): void {
  localStorage.clear();
  for (const cookie of document.cookie.split(";")) {
    const name = cookie.split("=")[0].trim();
    if (name) document.cookie = `${name}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/`;
  }
}

export function cookies(): Record<string, string> {
  return Object.fromEntries(
    document.cookie.split(";").filter(Boolean).map((c) => {
      const [name, ...rest] = c.trim().split("=");
      return [name, decodeURIComponent(rest.join("="))];
    }),
  );
}
