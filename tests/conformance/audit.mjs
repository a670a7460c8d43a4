// The graphql-http server audit (GraphQL over HTTP spec) against URL; prints one JSON object:
// {ok, warn, error, results: [{id, name, status, reason}]}. Exit code 0 even when audits fail:
// the Python test reads the counts.
import { serverAudits } from "graphql-http";

const url = process.argv[2];
if (!url) {
  console.error("usage: node audit.mjs http://127.0.0.1:PORT/graphql");
  process.exit(2);
}
const results = [];
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  results.push({ id: result.id, name: result.name, status: result.status, reason: result.reason ?? null });
}
const count = (status) => results.filter((r) => r.status === status).length;
console.log(JSON.stringify({ ok: count("ok"), warn: count("warn"), error: count("error"), results }));
