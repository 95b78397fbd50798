// Spikes under the chart: each one's period, credits against the baseline, and its top
// driver per dimension (docs/spikes.md). The chart marks the same buckets.
import { bucket, integer, share } from "./format.js";

const DIMENSIONS = { API_KEY: "API key", ENDPOINT: "Endpoint", SOURCE: "Source", USER: "User" };

function driverName(driver) {
  if (driver.dimension === "API_KEY") return driver.apiKey ? driver.apiKey.name : "calls without a key";
  if (driver.dimension === "USER") return driver.user ? driver.user.name : "calls without a user";
  return driver.value;
}

function describeDrivers(drivers) {
  const seen = new Set();
  const parts = [];
  for (const driver of drivers) {
    if (seen.has(driver.dimension)) continue; // the first of each dimension is its largest
    seen.add(driver.dimension);
    parts.push(
      `${DIMENSIONS[driver.dimension]}: ${driverName(driver)} ` +
        `(+${integer(driver.excessCredits)}, ${share(driver.shareOfExcess * 100)} of the excess)`,
    );
  }
  return parts;
}

/** Lists `spikes` (UsageSpike list, drivers optional) in `list`; `note` says how many. */
export function renderSpikes(list, note, spikes, granularity, timeZone) {
  list.replaceChildren(
    ...spikes.map((spike) => {
      const item = document.createElement("li");
      item.className = "spike";
      const head = document.createElement("strong");
      head.textContent = bucket(spike.start, granularity, timeZone);
      const figures = document.createElement("span");
      figures.textContent =
        `: ${integer(spike.creditsConsumed)} credits, expected ${integer(spike.expectedCredits)} ` +
        `(+${integer(spike.excessCredits)})`;
      item.append(head, figures);
      const drivers = spike.drivers ? describeDrivers(spike.drivers) : [];
      if (drivers.length) {
        const by = document.createElement("span");
        by.className = "spike-drivers muted";
        by.textContent = `Grew most: ${drivers.join(" · ")}`;
        item.append(by);
      }
      return item;
    }),
  );
  note.textContent = spikes.length
    ? `${spikes.length} ${spikes.length === 1 ? "spike" : "spikes"}: credits well above the same kind of period before them.`
    : "No spikes: every period is within its usual range.";
}
