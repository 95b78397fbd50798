// The Credit usage page: sign-in, header, pool, controls, chart and tables, all read from
// the public GraphQL API with the reader's token (docs/dashboard.md).
import { ApiError, graphql } from "./api.js";
import { chartTitle, drawChart } from "./chart.js";
import { download, exportUrl } from "./export.js";
import { bucket, change, date, dayRange, integer, share } from "./format.js";
import { renderAlerts } from "./alerts.js";
import { ALERTS, HEADER, KEYS, POOL, SPIKES, SPIKES_ONLY, USAGE } from "./queries.js";
import { renderSpikes } from "./spikes.js";
import { PRESETS, forgetToken, keepToken, readState, takeToken, writeState } from "./state.js";
import { followUsage } from "./live.js";
import { fillTable } from "./tables.js";
import { selectTab, setUpTabs } from "./tabs.js";

const $ = (id) => document.getElementById(id);
const REFUSALS = new Set(["FORBIDDEN", "PLAN_REQUIRED"]);
const PLAN_NAMES = { FREE: "Free", STARTER: "Starter", PRO: "Pro", ENTERPRISE: "Enterprise" };

let token = null;
let organization = null;
let state = null;
let reportRequest = 0;
let stopLive = null;

function show(view) {
  for (const id of ["sign-in", "notice", "dashboard"]) $(id).hidden = id !== view;
}

function showSignIn(message = "") {
  forgetToken();
  token = null;
  show("sign-in");
  for (const id of ["org", "viewer", "sign-out"]) $(id).hidden = true;
  $("sign-in-error").textContent = message;
  $("token-input").value = "";
  $("token-input").focus();
}

function showNotice(error) {
  show("notice");
  $("notice-message").textContent = error.message;
  $("notice-code").textContent = `Error code: ${error.code}`;
}

function renderHeader(data) {
  organization = data.organization;
  $("org-name").textContent = organization.name;
  $("org-plan").textContent = PLAN_NAMES[organization.plan] || organization.plan;
  $("org-plan").dataset.plan = organization.plan;
  $("viewer").textContent = data.viewer.name;
  for (const id of ["org", "viewer", "sign-out"]) $(id).hidden = false;
}

function renderPool(pool) {
  const zone = organization.timezone;
  $("pool-cycle").textContent = `This billing cycle: ${dayRange(pool.cycleStart, pool.cycleEnd, zone)}`;
  $("pool-consumed").textContent = integer(pool.consumed);
  $("pool-allowance").textContent = integer(pool.allowance);
  $("pool-remaining").textContent = integer(pool.remaining);
  $("pool-remaining").classList.toggle("negative", Number(pool.remaining) < 0);
  $("pool-burn").textContent = `${integer(Math.round(pool.burnRatePerDay))} / day`;
  $("pool-exhaustion").textContent = pool.projectedExhaustionAt
    ? date(pool.projectedExhaustionAt, zone)
    : "Lasts the cycle";
  const used = Number(pool.allowance) > 0 ? Number(pool.consumed) / Number(pool.allowance) : 1;
  $("pool-meter").style.width = `${Math.min(100, used * 100)}%`;
  $("pool-meter").classList.toggle("over", used >= 0.9);
}

function option(value, text) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = text;
  return element;
}

async function loadKeys() {
  const keys = [];
  let after = null;
  // Pages of 100 (the API's maximum); a handful of requests even for large accounts.
  for (let page = 0; page < 50; page += 1) {
    const data = await graphql(token, KEYS, { after });
    const connection = data.organization.apiKeys;
    keys.push(...connection.nodes);
    if (!connection.pageInfo.hasNextPage) break;
    after = connection.pageInfo.endCursor;
  }
  return keys;
}

function renderKeyOptions(keys) {
  const select = $("key");
  const active = keys.filter((key) => !key.revokedAt);
  const revoked = keys.filter((key) => key.revokedAt);
  select.replaceChildren(option("", "All API keys"), ...active.map((k) => option(k.id, k.name)));
  if (revoked.length) {
    const group = document.createElement("optgroup");
    group.label = "Revoked keys";
    group.append(...revoked.map((k) => option(k.id, k.name)));
    select.append(group);
  }
}

// ICU (and so Chromium) still lists some zones under their old names; offer the current
// IANA ones, which are what organizations are configured with.
const RENAMED_ZONES = {
  "America/Godthab": "America/Nuuk",
  "Asia/Calcutta": "Asia/Kolkata",
  "Asia/Katmandu": "Asia/Kathmandu",
  "Asia/Rangoon": "Asia/Yangon",
  "Asia/Saigon": "Asia/Ho_Chi_Minh",
  "Atlantic/Faeroe": "Atlantic/Faroe",
  "Europe/Kiev": "Europe/Kyiv",
  "Pacific/Enderbury": "Pacific/Kanton",
  "Pacific/Ponape": "Pacific/Pohnpei",
  "Pacific/Truk": "Pacific/Chuuk",
};

function renderZoneOptions() {
  const own = organization.timezone;
  const listed = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [];
  const zones = new Set(listed.map((zone) => RENAMED_ZONES[zone] || zone));
  zones.add("UTC");
  zones.delete(own);
  const select = $("timezone");
  select.replaceChildren(
    option(own, `${own} (organization)`),
    ...[...zones].sort().map((zone) => option(zone, zone)),
  );
}

function renderControls() {
  $("range").value = state.range;
  for (const radio of document.querySelectorAll('input[name="granularity"]')) {
    radio.checked = radio.value === state.granularity;
  }
  if (![...$("key").options].some((o) => o.value === state.key)) {
    $("key").append(option(state.key, state.key));
  }
  $("key").value = state.key;
  if (![...$("timezone").options].some((o) => o.value === state.timezone)) {
    $("timezone").append(option(state.timezone, state.timezone));
  }
  $("timezone").value = state.timezone;
  selectTab($("tabs"), state.tab);
}

function renderSummary(report) {
  const zone = report.range.timezone;
  $("sum-credits").textContent = integer(report.creditsConsumed);
  $("sum-calls").textContent = integer(report.calls);
  $("sum-range").textContent = `${dayRange(report.range.start, report.range.end, zone)} · ${zone}`;
  $("sum-last-event").textContent = report.lastEventAt
    ? `Last event received ${date(report.lastEventAt, zone, true)}`
    : "No event received yet";
  const credits = report.change.creditsPercent;
  const changeElement = $("change-credits");
  changeElement.textContent = credits === null ? "–" : change(credits);
  changeElement.dataset.trend = credits === null ? "" : credits > 0 ? "up" : credits < 0 ? "down" : "";
  const previous = `Previous period: ${integer(report.previous.creditsConsumed)} credits, ${integer(report.previous.calls)} calls`;
  const calls = report.change.callsPercent;
  $("change-detail").textContent =
    credits === null
      ? "No calls in the previous period"
      : `${previous}${calls === null ? "" : ` (calls ${change(calls)})`}`;
}

function renderSeries(report, spikes) {
  const zone = report.range.timezone;
  $("chart-title").textContent = chartTitle(state.granularity);
  drawChart($("chart"), $("chart-readout"), report.series, spikes.value || [], state.granularity, zone);
  if (spikes.error) {
    $("spike-list").replaceChildren();
    $("spike-note").textContent = `Spikes are not available: ${spikes.error.message}`;
  } else {
    renderSpikes($("spike-list"), $("spike-note"), spikes.value, state.granularity, zone);
  }
  const body = $("series-table").tBodies[0];
  body.replaceChildren(
    ...report.series.map((b) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = bucket(b.start, state.granularity, zone);
      const calls = document.createElement("td");
      calls.className = "num";
      calls.textContent = integer(b.calls);
      const credits = document.createElement("td");
      credits.className = "num";
      credits.textContent = integer(b.creditsConsumed);
      tr.append(th, calls, credits);
      return tr;
    }),
  );
}

const OUTCOME_NAMES = {
  SUCCESS: "Success",
  NO_RESULT: "No result (404 or nothing found)",
  RATE_LIMITED: "Rate limited (429)",
  CLIENT_ERROR: "Client error (4xx)",
  SERVER_ERROR: "Server error (5xx)",
};
const FAILED = new Set(["RATE_LIMITED", "CLIENT_ERROR", "SERVER_ERROR"]);

// The two figures an admin optimises: credits on calls that found nothing, and on failures.
function renderWaste(report) {
  const total = Number(report.creditsConsumed);
  let noResult = 0;
  let failed = 0;
  for (const row of report.byOutcome) {
    if (row.outcome === "NO_RESULT") noResult += Number(row.creditsConsumed);
    if (FAILED.has(row.outcome)) failed += Number(row.creditsConsumed);
  }
  const part = (credits) => (total > 0 ? ` (${share((100 * credits) / total)})` : "");
  $("outcome-no-result").textContent = `${integer(noResult)}${part(noResult)}`;
  $("outcome-failed").textContent = `${integer(failed)}${part(failed)}`;
}

function renderTables(report) {
  fillTable($("endpoint-table"), report.byEndpoint, (row) => ({ text: row.endpoint }));
  fillTable($("source-table"), report.bySource, (row) => ({ text: row.source }));
  fillTable($("user-table"), report.byUser, (row) =>
    row.user ? { text: row.user.name } : { text: "Not attributed to a user", muted: true },
  );
  fillTable($("key-table"), report.byApiKey, (row) =>
    row.apiKey ? { text: row.apiKey.name } : { text: "Without an API key", muted: true },
  );
  fillTable($("outcome-table"), report.byOutcome, (row) => ({ text: OUTCOME_NAMES[row.outcome] || row.outcome }));
  renderWaste(report);
  const empty = report.byEndpoint.length === 0;
  $("endpoint-empty").hidden = !empty;
  $("breakdown-empty").hidden = !empty;
}

async function loadReport() {
  const request = ++reportRequest;
  const report = $("report");
  report.setAttribute("aria-busy", "true");
  try {
    $("download-csv").href = exportUrl(state);
    const variables = {
      timeRange: { preset: state.range, timezone: state.timezone },
      keyId: state.key || null,
      granularity: state.granularity,
    };
    const spiking = settle(
      graphql(token, state.granularity === "HOUR" ? SPIKES_ONLY : SPIKES, variables).then(
        (answer) => answer.organization.usage.spikes,
      ),
    );
    const data = await graphql(token, USAGE, variables);
    const spikes = await spiking;
    if (request !== reportRequest) return; // a newer setting already asked again
    const usage = data.organization.usage;
    $("report-error").hidden = true;
    renderSummary(usage);
    renderSeries(usage, spikes);
    renderTables(usage);
    const asked = `${state.range}|${state.granularity}|${state.key}`;
    report.dataset.loaded = `${asked}|${usage.range.timezone}`;
    if (!performance.getEntriesByName("creditlens:first-table").length) {
      performance.mark("creditlens:first-table");
    }
  } catch (error) {
    if (request !== reportRequest) return;
    handleFailure(error, (message) => {
      $("report-error").textContent = message;
      $("report-error").hidden = false;
      delete report.dataset.loaded;
    });
  } finally {
    if (request === reportRequest) report.removeAttribute("aria-busy");
  }
}

function handleFailure(error, showInline) {
  if (!(error instanceof ApiError)) throw error;
  if (error.code === "UNAUTHENTICATED") showSignIn(`That token was not accepted: ${error.message}`);
  else if (REFUSALS.has(error.code)) showNotice(error);
  else showInline(error.message);
}

function update(field, value) {
  state = { ...state, [field]: value };
  writeState(state, organization.timezone, true);
  if (field === "tab") selectTab($("tabs"), value);
  else loadReport();
}

function wireControls() {
  $("range").replaceChildren(...PRESETS.map(([value, text]) => option(value, text)));
  $("range").addEventListener("change", (e) => update("range", e.target.value));
  $("key").addEventListener("change", (e) => update("key", e.target.value));
  $("timezone").addEventListener("change", (e) => update("timezone", e.target.value));
  $("granularity").addEventListener("change", (e) => update("granularity", e.target.value));
  $("controls").addEventListener("submit", (e) => e.preventDefault());
  setUpTabs($("tabs"), (tab) => update("tab", tab));
  $("download-csv").addEventListener("click", (event) => {
    event.preventDefault();
    download(event.currentTarget.href, token).catch((error) =>
      handleFailure(error, (message) => {
        $("report-error").textContent = message;
        $("report-error").hidden = false;
      }),
    );
  });
  window.addEventListener("popstate", () => {
    if (!organization || !token) return;
    state = readState(organization.timezone);
    renderControls();
    loadReport();
  });
}

// A promise that never rejects: the panels are asked for at once and read one by one.
function settle(promise) {
  return promise.then(
    (value) => ({ value }),
    (error) => ({ error }),
  );
}

async function start() {
  // Everything at once: the report's time zone defaults to the organization's on the server
  // side, so nothing waits for the header but the controls.
  state = readState(null);
  const header = settle(graphql(token, HEADER));
  const pool = settle(graphql(token, POOL));
  const keys = settle(loadKeys());
  const alerts = settle(graphql(token, ALERTS));
  const report = loadReport();
  const named = await header;
  if (named.error) {
    handleFailure(named.error, (message) => showSignIn(message));
    return;
  }
  renderHeader(named.value);
  state = { ...state, timezone: state.timezone || organization.timezone };
  writeState(state, organization.timezone, false);
  $("download-csv").href = exportUrl(state);
  renderZoneOptions();
  // The pool is a panel that members and Free admins are refused: they see the API's
  // message rather than an empty dashboard.
  const credit = await pool;
  if (credit.error) {
    handleFailure(credit.error, (message) => showNotice({ message, code: credit.error.code }));
    return;
  }
  renderPool(credit.value.organization.creditPool);
  show("dashboard");
  renderControls();
  if (stopLive) stopLive();
  stopLive = followUsage(token, refresh);
  const listed = await keys;
  if (listed.error) {
    handleFailure(listed.error, (message) => {
      $("report-error").textContent = message;
      $("report-error").hidden = false;
    });
  } else {
    renderKeyOptions(listed.value);
    renderControls();
  }
  const watched = await alerts;
  if (watched.value) renderAlerts(watched.value.organization.alerts);
  await report;
}

// After an ingest (a live tick): the pool and the report again, as they are now.
async function refresh() {
  if (!token) return;
  const credit = await settle(graphql(token, POOL));
  if (credit.value) renderPool(credit.value.organization.creditPool);
  const watched = await settle(graphql(token, ALERTS));
  if (watched.value) renderAlerts(watched.value.organization.alerts);
  await loadReport();
}

function wireSignIn() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) {
      $("sign-in-error").textContent = "Paste an access token first.";
      return;
    }
    token = value;
    keepToken(token);
    $("sign-in-error").textContent = "";
    start();
  });
  $("sign-out").addEventListener("click", () => {
    organization = null;
    if (stopLive) stopLive();
    stopLive = null;
    showSignIn();
  });
}

wireSignIn();
wireControls();
token = takeToken();
if (token) start();
else showSignIn();
