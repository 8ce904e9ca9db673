// replayflow web UI: the durable streams panel of the instance page. Reads
// GET /v1/instances/{id}/streams/{name} (server-sent events) with fetch, so the API
// token goes in a header as for every other call; values appear as they are written,
// those of an attempt that failed are struck through, and a dropped connection goes on
// from the last offset it saw. Self-contained: it adds its own section and styles,
// as a panel of the instance page (RF.panel in app.js).
"use strict";

(() => {
  const STYLE = `
    #streams .bar { display:flex; gap:8px; align-items:center; margin-bottom:6px; }
    #streams input[type=text] { padding:4px 6px; width:160px; }
    #stream-out { min-height:48px; max-height:320px; white-space:pre-wrap; }
    #stream-out .void { text-decoration:line-through; color:#9b1c1c; opacity:.7; }
    #stream-state { font-size:12px; }`;
  let reader = null; // {abort, instance, name}

  function panel(view) {
    if (!document.getElementById("streams-style")) {
      const style = document.createElement("style");
      style.id = "streams-style";
      style.textContent = STYLE;
      document.head.append(style);
    }
    const section = document.createElement("section");
    section.id = "streams";
    section.innerHTML = `<h2>Stream</h2>
      <div class="bar">
        <input type="text" id="stream-name" aria-label="stream name" placeholder="stream name">
        <label><input type="checkbox" id="stream-settled"> settled only</label>
        <button id="stream-watch">Watch</button>
        <span id="stream-state" class="muted"></span>
      </div>
      <pre id="stream-out"></pre>`;
    const timeline = [...view.querySelectorAll("h2")].find((h) => /timeline/i.test(h.textContent));
    if (timeline) view.insertBefore(section, timeline); else view.append(section);
    const name = section.querySelector("#stream-name");
    name.value = localStorage.getItem("replayflow-stream") || "tokens";
    section.querySelector("#stream-watch").onclick = () => {
      localStorage.setItem("replayflow-stream", name.value.trim());
      if (reader) watch(reader.instance, name.value.trim());
    };
    return section;
  }

  function token() {
    const input = document.getElementById("token");
    return input ? input.value.trim() : "";
  }

  function state(text) {
    const node = document.getElementById("stream-state");
    if (node) node.textContent = text;
  }

  function stop() {
    if (reader) reader.abort.abort();
    reader = null;
  }

  function watch(instance, name) {
    stop();
    const out = document.getElementById("stream-out");
    out.replaceChildren();
    const settled = document.getElementById("stream-settled").checked;
    const attempts = new Map(); // "step/attempt" -> [spans]
    // `next` is the cursor of the last event shown: a reconnection goes on right after it.
    const current = { abort: new AbortController(), instance, name, next: "0", done: false };
    reader = current;

    const show = (kind, item) => {
      if (kind === "value") {
        const span = document.createElement("span");
        span.textContent = typeof item.value === "string" ? item.value : JSON.stringify(item.value) + "\n";
        span.title = `${item.step} attempt ${item.attempt} · offset ${item.offset}`;
        const key = item.step + "/" + item.attempt;
        if (!attempts.has(key)) attempts.set(key, []);
        attempts.get(key).push(span);
        out.append(span);
        out.scrollTop = out.scrollHeight;
      } else if (kind === "retracted") {
        for (const span of attempts.get(item.step + "/" + item.attempt) || []) span.classList.add("void");
        state(`${item.step} attempt ${item.attempt}: ${item.reason.toLowerCase()}, its values are void`);
      } else {
        current.done = true;
        state(kind === "closed" ? "closed by the writer" : "instance ended: " + item.reason);
      }
    };

    const connect = async () => {
      const headers = { Accept: "text/event-stream" };
      if (token()) headers.Authorization = "Bearer " + token();
      const path = `/v1/instances/${encodeURIComponent(instance)}/streams/${encodeURIComponent(name)}` +
        `?start=${encodeURIComponent(current.next)}&settled=${settled}`;
      state("reading …");
      const response = await fetch(path, { headers, signal: current.abort.signal });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(response.status + ": " + ((body.error && body.error.message) || response.statusText));
      }
      state("live");
      const decoder = new TextDecoder();
      const body = response.body.getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await body.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let kind = "message", data = "", id = "";
          for (const line of frame.split("\n")) {
            if (line.startsWith("event: ")) kind = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
            else if (line.startsWith("id: ")) id = line.slice(4);
          }
          if (!data) continue;
          if (id) current.next = id;
          show(kind, JSON.parse(data));
        }
      }
    };

    const loop = async () => {
      while (reader === current && !current.done) {
        try { await connect(); } catch (error) {
          if (current.abort.signal.aborted) return;
          state(error.message + " (retrying)");
          if (/^(404|401|400):/.test(error.message)) return;
        }
        if (!current.done) await new Promise((r) => setTimeout(r, 1000));
      }
    };
    loop();
  }

  // The instance page's panel (app.js's RF.panel): the router empties the view on every
  // route, so the section is built anew each time and the reader stops when it leaves.
  RF.panel("instance", (view, ctx) => {
    stop();
    const section = panel(view);
    watch(decodeURIComponent(ctx.match[1]), section.querySelector("#stream-name").value.trim() || "tokens");
    ctx.onLeave(stop);
  });
})();
