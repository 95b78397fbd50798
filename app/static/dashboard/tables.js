// Breakdown tables: one row per endpoint, source, user or key, with a share bar.
import { integer, share } from "./format.js";

function cell(tag, text, className) {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

function shareCell(percent) {
  const td = document.createElement("td");
  td.className = "share-col";
  const wrap = document.createElement("div");
  wrap.className = "share";
  const track = document.createElement("span");
  track.className = "share-track";
  const bar = document.createElement("span");
  bar.className = "share-bar";
  // CSSOM, not a style attribute: allowed by the page's style-src 'self'.
  bar.style.width = `${Math.max(0, Math.min(100, Number(percent)))}%`;
  track.append(bar);
  wrap.append(track, cell("span", share(percent), "share-value"));
  td.append(wrap);
  return td;
}

// Endpoints and sources are long single words ("prospecting/contact/enrich"): offer line
// breaks after "/", "_" and "." instead of letting the browser cut anywhere.
function breakable(text) {
  const th = document.createElement("th");
  for (const part of text.split(/(?<=[/_.])/)) {
    if (th.childNodes.length) th.append(document.createElement("wbr"));
    th.append(part);
  }
  return th;
}

/**
 * Fills `table`'s body with `rows`; `label(row)` gives the first column as
 * { text, muted } (muted for "no user" / "no key" rows).
 */
export function fillTable(table, rows, label) {
  const body = table.tBodies[0];
  const fragment = document.createDocumentFragment();
  for (const row of rows) {
    const tr = document.createElement("tr");
    const name = label(row);
    const th = breakable(name.text);
    if (name.muted) th.className = "muted";
    th.scope = "row";
    tr.append(
      th,
      cell("td", integer(row.calls), "num"),
      cell("td", integer(row.creditsConsumed), "num"),
      shareCell(row.percentOfTotal),
    );
    fragment.append(tr);
  }
  body.replaceChildren(fragment);
  table.hidden = rows.length === 0;
}
