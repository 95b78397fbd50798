// "Download CSV": the export of the current view (GET /v1/exports/usage.csv, docs/export.md).
// The link shows where the file comes from; a click fetches it with the token (a plain link
// cannot send the Authorization header) and saves it under the server's file name.
import { ApiError } from "./api.js";

/** The export URL of `state` (the dashboard's controls): the endpoint table, per bucket. */
export function exportUrl(state) {
  const params = new URLSearchParams();
  params.set("preset", state.range);
  if (state.timezone) params.set("timezone", state.timezone);
  if (state.key) params.set("keyId", state.key);
  params.set("groupBy", "endpoint");
  params.set("granularity", state.granularity);
  return `/v1/exports/usage.csv?${params}`;
}

function fileName(response) {
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  return match ? match[1] : "usage.csv";
}

/** Fetches `url` with `token` and saves it; rejects with an ApiError on a refusal. */
export async function download(url, token) {
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  } catch {
    throw new ApiError("The server cannot be reached. Is creditlens running?", "NETWORK", 0);
  }
  if (!response.ok) {
    let message = `The export failed (${response.status}).`;
    let code = "ERROR";
    try {
      const body = await response.json();
      const first = body.errors ? body.errors[0] : body;
      message = first.message || message;
      code = (first.extensions && first.extensions.code) || first.code || code;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(message, code, response.status);
  }
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = fileName(response);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
