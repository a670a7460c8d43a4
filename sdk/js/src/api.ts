import { report } from "./events";

export interface ApiConfig {
  publishableKey: string;
  apiUrl: string;
}

export interface UserError {
  field: string | null;
  code: string;
  message: string;
}

const TIMEOUT_MS = 10_000;
const RETRY_DELAY_MS = 400;

class Retryable extends Error {}

/** One GraphQL operation with the publishable key; resolves to the operation's payload, or
 * to null after reporting the problem (a console warning and a `referral:error` event).
 *
 * A network failure, a timeout or a 5xx is tried once more; a refusal (an invalid key, a
 * GraphQL error) is not. The key is named in the URL too: browsers send CORS preflights
 * without the Authorization header, and the API judges them by this key's allowed origins. */
export async function call<T>(
  config: ApiConfig,
  operation: string,
  query: string,
  variables: Record<string, unknown>,
  target?: EventTarget,
): Promise<T | null> {
  const url = `${config.apiUrl.replace(/\/+$/, "")}/graphql?pk=${encodeURIComponent(config.publishableKey)}`;
  let problem = "";
  for (let attempt = 0; attempt < 2; attempt++) {
    if (attempt) await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      const response = await fetch(url, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${config.publishableKey}` },
        body: JSON.stringify({ query, variables }),
        signal: abort.signal,
      });
      if (response.status >= 500) throw new Retryable(`the API answered ${response.status}`);
      const body = await response.json().catch(() => ({}));
      const error = body.errors?.[0];
      if (error || !body.data) {
        report(operation, error?.message || `the API answered ${response.status}`, error?.extensions?.code, target);
        return null;
      }
      return body.data[operation] as T;
    } catch (err) {
      problem =
        err instanceof Retryable
          ? err.message
          : `could not reach ${config.apiUrl} (network error, timeout, or this page's origin is not allowed for the key)`;
    } finally {
      clearTimeout(timer);
    }
  }
  report(operation, problem, undefined, target);
  return null;
}
