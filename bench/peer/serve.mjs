// The peer's server (bench/reads.py --peer): PostGraphile 5 and @graphile/pg-aggregates
// over the schema setup.sql builds, on Node's http server, production mode, no GraphiQL.
//   node serve.mjs --port 8106     (database: CREDITLENS_DATABASE_URL, as the other servers)
import { createServer } from "node:http";
import { PgAggregatesPreset } from "@graphile/pg-aggregates";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const args = process.argv.slice(2);
const port = Number(args[args.indexOf("--port") + 1] || 5678);
const url = (process.env.CREDITLENS_DATABASE_URL || "").replace(/^postgresql\+asyncpg:/, "postgres:");

const preset = {
  extends: [PostGraphileAmberPreset, PgAggregatesPreset],
  pgServices: [makePgService({ connectionString: url, schemas: ["peer"] })],
  grafserv: { port, graphiql: false, watch: false },
  grafast: { explain: false },
};
const serv = postgraphile(preset).createServ(grafserv);
const graphql = serv.createHandler();
// /healthz as the other servers answer it, so the bench waits for every server alike.
const server = createServer((request, response) => {
  if (request.url === "/healthz") {
    response.writeHead(200, { "content-type": "application/json" });
    response.end('{"status":"ok"}');
  } else {
    graphql(request, response);
  }
});
server.listen(port, "127.0.0.1");
