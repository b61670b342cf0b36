// graphql-http's audit of a GraphQL-over-HTTP server: AUDIT_URL is the
// endpoint. Prints one line per check ("ok", "warn" or "error", its id and
// name) and exits 0 only when every check is ok.
import { auditServer } from "graphql-http";

const url = process.env.AUDIT_URL;
if (!url) {
  console.error("set AUDIT_URL to the /graphql endpoint");
  process.exit(2);
}
const results = await auditServer({ url });
let failed = 0;
for (const result of results) {
  const name = typeof result.name === "string" ? result.name : result.name.join("");
  console.log(`${result.status} ${result.id} ${name}${result.reason ? `: ${result.reason}` : ""}`);
  if (result.status !== "ok") failed += 1;
}
console.log(`${results.length} checks, ${failed} not ok`);
process.exit(failed === 0 ? 0 : 1);
