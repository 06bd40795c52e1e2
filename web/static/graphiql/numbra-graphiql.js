// Numbra's GraphiQL. The token entered in the Token field sets the Authorization
// header of every request, and a new token re-fetches the schema, so the Docs work
// from the first visit. The token is kept in this tab's sessionStorage only (gone
// when the tab closes); GraphiQL persists no headers; nothing is read from the URL.
(function () {
  "use strict";

  // GraphiQL's dialogs write one <style> element (their scroll lock); the page's
  // Content-Security-Policy lets it in only with the nonce this script was given.
  window.__webpack_nonce__ = document.currentScript.nonce;

  const TOKEN_KEY = "numbra:token";
  const ENDPOINT = window.location.origin + window.location.pathname;
  const NO_TOKEN = "No token yet: enter one in the Token field at the top right.";
  const DEFAULT_QUERY = `# Enter your token in the Token field at the top right, then run this
# (Ctrl-Enter). The Docs pane lists every type and field once a token is set.
{
  viewer { tokenName role organization { name kind } }
}
`;
  const h = React.createElement;

  function storedToken() {
    return window.sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function storeToken(token) {
    if (token) {
      window.sessionStorage.setItem(TOKEN_KEY, token);
    } else {
      window.sessionStorage.removeItem(TOKEN_KEY);
    }
  }

  async function tokenlessFetcher() {
    return { errors: [{ message: NO_TOKEN }] };
  }

  function isSubscription(params, opts) {
    // GraphiQL parses the editor's text a moment after it changes: until then documentAST
    // is the previous text's (a query), so it is trusted only when it is this text's.
    const ast = opts && opts.documentAST;
    const current = Boolean(ast && ast.loc && ast.loc.source.body === params.query);
    const definitions = (current && ast.definitions) || [];
    if (definitions.length === 0) {
      return /^\s*subscription\b/m.test((params.query || "").replace(/#.*$/gm, ""));
    }
    const operations = definitions.filter((d) => d.kind === "OperationDefinition");
    const chosen =
      operations.find((d) => d.name && d.name.value === params.operationName) ||
      (operations.length === 1 ? operations[0] : null);
    return Boolean(chosen && chosen.operation === "subscription");
  }

  // Subscriptions run over graphql-transport-ws on this same /graphql, the token sent in
  // connection_init; each result is handed to GraphiQL as it arrives (an async iterator).
  function subscribe(token, params) {
    const socket = new WebSocket(ENDPOINT.replace(/^http/, "ws"), "graphql-transport-ws");
    const queue = [];
    let wake = null;
    let finished = false;
    function push(item) {
      queue.push(item);
      if (wake) {
        wake();
        wake = null;
      }
    }
    function send(message) {
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify(message));
      }
    }
    socket.onopen = () =>
      send({ type: "connection_init", payload: { Authorization: "Bearer " + token } });
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        send({ id: "1", type: "subscribe", payload: params });
      } else if (message.type === "ping") {
        send({ type: "pong" });
      } else if (message.type === "next") {
        push({ value: message.payload });
      } else if (message.type === "error") {
        push({ value: { errors: message.payload } });
        push({ done: true });
      } else if (message.type === "complete") {
        push({ done: true });
      }
    };
    socket.onclose = (event) => {
      if (event.code !== 1000) {
        const why = event.code === 4403 ? "the token was refused" : event.reason;
        push({ value: { errors: [{ message: `closed (${event.code}): ${why}` }] } });
      }
      push({ done: true });
    };
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next() {
        while (!finished && queue.length === 0) {
          await new Promise((resolve) => {
            wake = resolve;
          });
        }
        const item = finished ? { done: true } : queue.shift();
        if (item.done) {
          finished = true;
          socket.close(1000);
          return { done: true, value: undefined };
        }
        return { done: false, value: item.value };
      },
      async return() {
        finished = true;
        send({ id: "1", type: "complete" });
        socket.close(1000);
        return { done: true, value: undefined };
      },
    };
  }

  function fetcherFor(token) {
    if (!token) {
      return tokenlessFetcher;
    }
    const http = GraphiQL.createFetcher({
      url: ENDPOINT,
      headers: { Authorization: "Bearer " + token },
    });
    return (params, opts) =>
      isSubscription(params, opts) ? subscribe(token, params) : http(params, opts);
  }

  // Rendered inside GraphiQL (in place of its logo), so it reaches GraphiQL's editors.
  function TokenField(props) {
    const [draft, setDraft] = React.useState("");
    const editors = GraphiQL.React.useEditorContext();
    function changeToken(next) {
      // The response shown came with the old token (or none).
      editors.responseEditor?.setValue("");
      props.onToken(next);
    }
    function submit(event) {
      event.preventDefault();
      changeToken(draft.trim());
      setDraft("");
    }
    return h(
      "form",
      { className: "numbra-token", onSubmit: submit },
      h(
        "label",
        null,
        "Token",
        h("input", {
          type: "password",
          name: "token",
          autoComplete: "off",
          spellCheck: false,
          placeholder: props.token ? "set for this tab" : "nbr_…",
          value: draft,
          onChange: (event) => setDraft(event.target.value),
        }),
      ),
      h("button", { type: "submit", className: "graphiql-button" }, "Use"),
      props.token
        ? h(
            "button",
            { type: "button", className: "graphiql-button", onClick: () => changeToken("") },
            "Forget",
          )
        : null,
    );
  }

  function NumbraGraphiQL() {
    const [token, setToken] = React.useState(storedToken);
    // A new fetcher makes GraphiQL introspect again: the schema follows the token.
    const fetcher = React.useMemo(() => fetcherFor(token), [token]);
    const explorer = React.useMemo(() => GraphiQLPluginExplorer.explorerPlugin(), []);
    function keepToken(next) {
      storeToken(next);
      setToken(next);
    }
    return h(
      GraphiQL,
      {
        fetcher: fetcher,
        plugins: [explorer],
        defaultQuery: DEFAULT_QUERY,
        shouldPersistHeaders: false,
        isHeadersEditorEnabled: true,
        inputValueDeprecation: true,
      },
      h(GraphiQL.Logo, null, h(TokenField, { token: token, onToken: keepToken })),
    );
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(h(NumbraGraphiQL));
})();
