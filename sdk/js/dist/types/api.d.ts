export interface ApiConfig {
    publishableKey: string;
    apiUrl: string;
}
export interface UserError {
    field: string | null;
    code: string;
    message: string;
}
/** One GraphQL operation with the publishable key; resolves to the operation's payload, or
 * to null after reporting the problem (a console warning and a `referral:error` event).
 *
 * A network failure, a timeout or a 5xx is tried once more; a refusal (an invalid key, a
 * GraphQL error) is not. The key is named in the URL too: browsers send CORS preflights
 * without the Authorization header, and the API judges them by this key's allowed origins. */
export declare function call<T>(config: ApiConfig, operation: string, query: string, variables: Record<string, unknown>, target?: EventTarget): Promise<T | null>;
