// The report's settings live in the query string, so a link or a reload shows the same view.
// The token never does: it is in sessionStorage only.

export const PRESETS = [
  ["TODAY", "Today"],
  ["YESTERDAY", "Yesterday"],
  ["LAST_7_DAYS", "Last 7 days"],
  ["LAST_30_DAYS", "Last 30 days"],
  ["LAST_90_DAYS", "Last 90 days"],
  ["THIS_WEEK", "This week"],
  ["LAST_WEEK", "Last week"],
  ["THIS_MONTH", "This month"],
  ["LAST_MONTH", "Last month"],
  ["THIS_BILLING_CYCLE", "This billing cycle"],
];
export const GRANULARITIES = ["HOUR", "DAY", "WEEK", "MONTH"];
export const TABS = ["source", "user", "key"];

const PRESET_NAMES = new Set(PRESETS.map(([name]) => name));

/** The settings in the current URL, with defaults for what is missing or unknown. */
export function readState(organizationZone) {
  const params = new URLSearchParams(window.location.search);
  const range = params.get("range");
  const granularity = params.get("granularity");
  const tab = params.get("tab");
  return {
    range: PRESET_NAMES.has(range) ? range : "LAST_30_DAYS",
    granularity: GRANULARITIES.includes(granularity) ? granularity : "DAY",
    key: params.get("key") || "",
    timezone: params.get("tz") || organizationZone,
    tab: TABS.includes(tab) ? tab : "source",
  };
}

/** Puts the settings in the URL; `push` adds a history entry (Back undoes a change). */
export function writeState(state, organizationZone, push) {
  const params = new URLSearchParams();
  params.set("range", state.range);
  params.set("granularity", state.granularity);
  if (state.key) params.set("key", state.key);
  if (state.timezone !== organizationZone) params.set("tz", state.timezone);
  if (state.tab !== "source") params.set("tab", state.tab);
  const url = `${window.location.pathname}?${params}`;
  if (url === window.location.pathname + window.location.search) return;
  if (push) window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
}

const TOKEN = "creditlens.token";

/** The token of `/#token=…` (then removed from the address bar), else this tab's. */
export function takeToken() {
  const hash = new URLSearchParams(window.location.hash.slice(1));
  const fromLink = hash.get("token");
  if (fromLink) {
    window.sessionStorage.setItem(TOKEN, fromLink);
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return window.sessionStorage.getItem(TOKEN);
}

export function keepToken(token) {
  window.sessionStorage.setItem(TOKEN, token);
}

export function forgetToken() {
  window.sessionStorage.removeItem(TOKEN);
}
