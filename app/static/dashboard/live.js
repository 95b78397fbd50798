// Live totals: a usageUpdates subscription over WebSocket (graphql-transport-ws) on
// /graphql. The first tick is the state the page already shows; each later one (at most one
// a second, after an ingest) asks the page to read its figures again.

const RETRY_MS = [1000, 2000, 5000, 10000, 30000];
// Closed by the server for a reason that a retry will not change.
const FINAL = new Set([4400, 4401, 4403, 4406, 4409]);

export const LIVE = `subscription DashboardLive { usageUpdates { at } }`;

/** Follows the organization's usage; `onChange` runs after each tick but the first. Returns
 * a function that stops following. */
export function followUsage(token, onChange) {
  let socket = null;
  let attempt = 0;
  let stopped = false;
  let timer = null;

  function open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/graphql`, "graphql-transport-ws");
    let ticks = 0;
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } }));
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        attempt = 0;
        socket.send(JSON.stringify({ id: "live", type: "subscribe", payload: { query: LIVE } }));
      } else if (message.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (message.type === "next" && ticks++ > 0) {
        onChange();
      }
    });
    socket.addEventListener("close", (event) => {
      if (stopped || FINAL.has(event.code)) return;
      timer = setTimeout(open, RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]);
    });
  }

  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (socket) socket.close(1000);
  };
}
