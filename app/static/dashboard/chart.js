// Credits per bucket as bars (uPlot, vendored: /static/vendor/uplot/).
import { bucket, integer, tick } from "./format.js";

const HEIGHT = 260;
const NOUNS = { HOUR: "hour", DAY: "day", WEEK: "week", MONTH: "month" };

let plot = null;
let observer = null;

const HINT = "Point at a bar for its figures.";
// Credits are whole: ticks step by 1, 2, 5, 10, 20, 50, … so no axis reads "0, 0, 1, 1".
const WHOLE_STEPS = Array.from({ length: 13 }, (_v, power) => [1, 2, 5].map((m) => m * 10 ** power)).flat();

// One line under the chart instead of uPlot's legend: the hovered bucket, or a hint.
function readout(element, series, spikeAt, granularity, timeZone) {
  return (u) => {
    const at = u.cursor.idx;
    const b = at == null ? null : series[at];
    const spike = at == null ? null : spikeAt.get(at);
    element.textContent = b
      ? `${bucket(b.start, granularity, timeZone)}: ${integer(b.creditsConsumed)} credits, ` +
        `${integer(b.calls)} calls` +
        (spike ? ` · spike, expected ${integer(spike.expectedCredits)}` : "")
      : HINT;
  };
}

// Buckets are calendar periods of unequal length (months, DST days): the x axis is the
// bucket's position, labelled with its start, so every bar has the same width.
function options(width, series, spikeAt, granularity, timeZone, readoutElement) {
  const labels = series.map((b) => tick(b.start, granularity, timeZone));
  return {
    width,
    height: HEIGHT,
    padding: [16, 12, 0, 4],
    scales: {
      x: { time: false, range: () => [-0.5, series.length - 0.5] },
      y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.12 : 1] },
    },
    axes: [
      {
        stroke: "#667085",
        grid: { show: false },
        ticks: { stroke: "#d0d5dd" },
        splits: (u) => {
          const room = Math.max(1, Math.floor(u.bbox.width / devicePixelRatio / 72));
          const step = Math.ceil(series.length / room);
          return series.map((_b, i) => i).filter((i) => i % step === 0);
        },
        values: (_u, splits) => splits.map((i) => labels[i] ?? ""),
      },
      {
        stroke: "#667085",
        grid: { stroke: "#eef0f3" },
        ticks: { show: false },
        size: 64,
        incrs: WHOLE_STEPS,
        values: (_u, splits) => splits.map((v) => integer(v)),
      },
    ],
    legend: { show: false },
    hooks: { setCursor: [readout(readoutElement, series, spikeAt, granularity, timeZone)] },
    cursor: { points: { show: false }, drag: { x: false, y: false } },
    series: [
      {},
      {
        label: "Credits",
        stroke: "#3b5bdb",
        fill: "rgba(59, 91, 219, 0.78)",
        width: 0,
        points: { show: false },
        paths: uPlot.paths.bars({ size: [0.72, 48], gap: 2 }),
      },
      {
        // The spikes' bars again, drawn over the others in the warning colour.
        label: "Spike",
        stroke: "#c4320a",
        fill: "rgba(220, 104, 3, 0.92)",
        width: 0,
        points: { show: false },
        paths: uPlot.paths.bars({ size: [0.72, 48], gap: 2 }),
      },
    ],
  };
}

function describe(series, spikes, granularity, timeZone) {
  const noun = NOUNS[granularity];
  if (!series.length) return `Credits per ${noun}: no periods`;
  let top = series[0];
  for (const b of series) if (Number(b.creditsConsumed) > Number(top.creditsConsumed)) top = b;
  const marked = spikes.length
    ? ` Spikes marked: ${spikes.map((s) => bucket(s.start, granularity, timeZone)).join(", ")}.`
    : "";
  return (
    `Credits per ${noun}, ${series.length} periods. Highest: ` +
    `${integer(top.creditsConsumed)} credits, ${bucket(top.start, granularity, timeZone)}.` +
    marked
  );
}

/**
 * Draws `series` (UsageBucket list) into `container`, replacing the previous chart, with the
 * buckets of `spikes` (UsageSpike list, matched by start) marked.
 */
export function drawChart(container, readoutElement, series, spikes, granularity, timeZone) {
  if (plot) plot.destroy();
  if (observer) observer.disconnect();
  container.setAttribute("aria-label", describe(series, spikes, granularity, timeZone));
  const starts = new Map(series.map((b, i) => [Date.parse(b.start), i]));
  const spikeAt = new Map();
  for (const spike of spikes) {
    const at = starts.get(Date.parse(spike.start));
    if (at !== undefined) spikeAt.set(at, spike);
  }
  container.dataset.spikes = String(spikeAt.size);
  const data = [
    series.map((_b, i) => i),
    series.map((b) => Number(b.creditsConsumed)),
    series.map((b, i) => (spikeAt.has(i) ? Number(b.creditsConsumed) : null)),
  ];
  const width = Math.max(container.clientWidth, 240);
  readoutElement.textContent = HINT;
  const settings = options(width, series, spikeAt, granularity, timeZone, readoutElement);
  plot = new uPlot(settings, data, container);
  observer = new ResizeObserver(() => {
    const next = Math.max(container.clientWidth, 240);
    if (plot && next !== plot.width) plot.setSize({ width: next, height: HEIGHT });
  });
  observer.observe(container);
}

export function chartTitle(granularity) {
  return `Credits per ${NOUNS[granularity]}`;
}
