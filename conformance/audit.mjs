// Runs graphql-http's GraphQL-over-HTTP audit against a running creditlens.
//
//   CREDITLENS_URL=http://127.0.0.1:8000/graphql CREDITLENS_TOKEN=cl_... node audit.mjs
//
// Every request carries the token (creditlens answers 401 without one). Prints one JSON
// object: counts of ok, warn and error, and every item that did not pass. Exits 1 on errors.
import { auditServer } from 'graphql-http';

const url = process.env.CREDITLENS_URL ?? 'http://127.0.0.1:8000/graphql';
const token = process.env.CREDITLENS_TOKEN;
if (!token) {
  console.error('set CREDITLENS_TOKEN to a user token of a paid-plan admin');
  process.exit(2);
}

function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn });
const summary = { ok: 0, warn: 0, error: 0, notOk: [] };
for (const result of results) {
  summary[result.status] += 1;
  if (result.status !== 'ok') {
    const response = result.response;
    summary.notOk.push({
      id: result.id,
      name: result.name,
      status: result.status,
      reason: result.reason,
      httpStatus: response?.status,
      contentType: response?.headers?.get('content-type'),
    });
  }
}
console.log(JSON.stringify(summary, null, 2));
process.exit(summary.error > 0 ? 1 : 0);
