// The Alerts panel: each alert with its threshold and state, and its latest webhook
// deliveries. Read-only here; alerts are created and changed through the GraphQL mutations.
import { date, integer } from "./format.js";

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

const WINDOWS = {
  DAY: "per day",
  WEEK: "per week",
  MONTH: "per month",
  BILLING_CYCLE: "per billing cycle",
};

function threshold(alert) {
  const credits = `${integer(alert.effectiveThresholdCredits)} credits`;
  if (alert.thresholdPercentOfAllowance !== null) {
    return `${alert.thresholdPercentOfAllowance}% of the allowance (${credits})`;
  }
  return credits;
}

function lastDelivery(alert) {
  const latest = alert.deliveries[0];
  if (!latest) return "None yet";
  const answer = latest.responseStatus ? `HTTP ${latest.responseStatus}, ` : "";
  const tries = latest.attempts === 1 ? "1 attempt" : `${latest.attempts} attempts`;
  return `${latest.status} (${answer}${tries}), ${date(latest.createdAt, undefined, true)}`;
}

/** Fills the alerts table; shows the empty text when the organization has none. */
export function renderAlerts(alerts) {
  const body = document.querySelector("#alerts-table tbody");
  const rows = alerts.map((alert) => {
    const tr = document.createElement("tr");
    tr.dataset.alertId = alert.id;
    tr.append(
      cell(alert.name),
      cell(alert.apiKey ? alert.apiKey.name : "All API keys"),
      cell(`${threshold(alert)} ${WINDOWS[alert.window] || alert.window}`),
      cell(alert.enabled ? alert.state : "Disabled", `state state-${alert.state.toLowerCase()}`),
      cell(lastDelivery(alert)),
    );
    return tr;
  });
  body.replaceChildren(...rows);
  document.getElementById("alerts-table").hidden = alerts.length === 0;
  document.getElementById("alerts-empty").hidden = alerts.length !== 0;
  document.getElementById("alerts").hidden = false;
}
