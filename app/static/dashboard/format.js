// Numbers and dates in the reader's locale. Integers (Number or BigInt) are formatted
// exactly: Intl formats a BigInt digit for digit.

const integers = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const shares = new Intl.NumberFormat(undefined, {
  style: "percent",
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});
const changes = new Intl.NumberFormat(undefined, {
  style: "percent",
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
  signDisplay: "exceptZero",
});

/** 1234567 → "1,234,567" (en-US), "1.234.567" (de-DE). */
export function integer(value) {
  return integers.format(value);
}

/** A percentOfTotal (0–100) → "59.6%". */
export function share(percent) {
  return shares.format(percent / 100);
}

/** A change in percent → "+27.1%", "−3.0%", "0.0%". */
export function change(percent) {
  return changes.format(percent / 100);
}

/** An instant as a date (and time, when `withTime`) in `timeZone`. */
export function date(iso, timeZone, withTime = false) {
  const options = withTime
    ? { dateStyle: "medium", timeStyle: "short", timeZone }
    : { dateStyle: "medium", timeZone };
  return new Intl.DateTimeFormat(undefined, options).format(new Date(iso));
}

/** A half-open [start, end) range as the days it covers, e.g. "Nov 1 – 30, 2026". */
export function dayRange(startIso, endIso, timeZone) {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone });
  const lastInstant = new Date(new Date(endIso).getTime() - 1);
  return format.formatRange(new Date(startIso), lastInstant);
}

const BUCKET_OPTIONS = {
  HOUR: { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" },
  DAY: { weekday: "short", month: "short", day: "numeric" },
  WEEK: { year: "numeric", month: "short", day: "numeric" },
  MONTH: { year: "numeric", month: "long" },
};

/** The label of a series bucket starting at `iso`. */
export function bucket(iso, granularity, timeZone) {
  const label = new Intl.DateTimeFormat(undefined, { ...BUCKET_OPTIONS[granularity], timeZone })
    .format(new Date(iso));
  return granularity === "WEEK" ? `Week of ${label}` : label;
}

const TICK_OPTIONS = {
  HOUR: { hour: "2-digit", minute: "2-digit" },
  DAY: { month: "short", day: "numeric" },
  WEEK: { month: "short", day: "numeric" },
  MONTH: { month: "short", year: "numeric" },
};

/** A short axis label for a bucket starting at `iso`. */
export function tick(iso, granularity, timeZone) {
  return new Intl.DateTimeFormat(undefined, { ...TICK_OPTIONS[granularity], timeZone })
    .format(new Date(iso));
}
