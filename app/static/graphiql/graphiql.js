// Starts GraphiQL on the vendored React and GraphiQL builds (see app/graphiql.py).
// A token the dashboard keeps in this tab's sessionStorage fills the Authorization header;
// headers are never persisted to localStorage, so a token does not outlive the tab.
"use strict";

(function start() {
  const config = JSON.parse(document.getElementById("graphiql-config").textContent);
  const token = window.sessionStorage.getItem("creditlens.token");
  const headers = token
    ? JSON.stringify({ Authorization: "Bearer " + token }, null, 2)
    : config.headers;
  const url = window.location.origin + window.location.pathname;
  const subscriptionUrl = url.replace(/^http/, "ws");
  const send = GraphiQL.createFetcher({ url, subscriptionUrl });
  // Without a real token every request would be a 401: say what to do instead of sending it.
  const fetcher = (params, options) => {
    const authorization = Object.entries((options && options.headers) || {}).find(
      ([name]) => name.toLowerCase() === "authorization",
    );
    if (!authorization || !/^Bearer [^<\s]+$/.test(String(authorization[1]).trim())) {
      return Promise.resolve({
        errors: [
          {
            message:
              'Put a user token in the Headers tab below: {"Authorization": "Bearer <token>"}. ' +
              "Then run the query, or re-fetch the schema (Shift-Ctrl-R) for autocompletion.",
          },
        ],
      });
    }
    return send(params, options);
  };
  const explorer = GraphiQLPluginExplorer.explorerPlugin();
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: config.query,
      defaultHeaders: headers,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      plugins: [explorer],
    }),
  );
})();
