// One instance: what it does now, actions (cancel, terminate, pause, resume, restart
// from the start or a chosen step, send an event), input, output, the error with its
// traceback, the timeline of steps, sleeps and waits, and the raw history.
"use strict";

(() => {
  const { api, el, badge, when, time, duration, relative, json, field, describe, now } = RF;
  const FINAL = ["COMPLETED", "FAILED", "CANCELLED", "TERMINATED", "TIMED_OUT"];

  // Which actions fit which status (the engine would refuse or ignore the others).
  const ACTIONS = [
    { name: "cancel", label: "Cancel", when: (s) => !FINAL.includes(s) },
    { name: "terminate", label: "Terminate", when: (s) => !FINAL.includes(s) },
    { name: "pause", label: "Pause", when: (s) => s === "RUNNING" },
    { name: "resume", label: "Resume", when: (s) => s === "PAUSED" || s === "SUSPENDED" },
    { name: "restart", label: "Restart", when: () => true },
    { name: "event", label: "Send event", when: (s) => !FINAL.includes(s) },
  ];

  function timelineEntry(entry, span) {
    const end = entry.ended_at || Date.now();
    const start = entry.started_at || span.start;
    const left = span.total ? ((start - span.start) / span.total) * 100 : 0;
    const width = span.total ? Math.max(((end - start) / span.total) * 100, 0.5) : 100;
    let detail = "";
    // "in 5 min" only while it is still ahead of the call; afterwards the time says it.
    const open = ["waiting", "scheduled", "backoff"].includes(entry.status);
    const at = (ms) => time(ms) + (open ? " (" + relative(ms) + ")" : "");
    if (entry.kind === "sleep") detail = "until " + at(entry.due);
    if (entry.kind === "wait") detail = entry.deadline ? "timeout " + at(entry.deadline) : "no timeout";
    if (entry.kind === "step" || entry.kind === "child") {
      detail = entry.function || "";
      if (entry.status === "backoff" && entry.retry_at) {
        detail += " · retry at " + at(entry.retry_at);
      }
    }
    const bar = el("i");
    bar.style.left = left + "%";
    bar.style.width = width + "%";
    const node = el("div", { class: "entry k-" + entry.kind, "data-key": entry.key, "data-kind": entry.kind },
      el("div", { class: "head" },
        el("span", { class: "kind" }, entry.kind),
        el("span", { class: "key" }, entry.key),
        badge(entry.status),
        el("span", { class: "muted" }, detail),
        el("span", { class: "spacer" }),
        el("span", { class: "muted" }, time(entry.started_at) + "  ·  " +
          (entry.ended_at ? duration(entry.ended_at - entry.started_at) : "…"))),
      el("div", { class: "bar" }, bar));
    if (entry.attempts && entry.attempts.length) {
      const of = entry.max_attempts ? " of " + entry.max_attempts : "";
      const first = entry.first_attempt || entry.attempts[0].attempt;
      node.append(el("div", { class: "attempts" }, entry.attempts.map((a) => {
        // Numbered within their run (a restart counts again from 1).
        const n = a.number != null ? a.number : a.attempt - first + 1;
        const run = a.run != null && a.run !== entry.run ? " (run " + (a.run + 1) + ")" : "";
        const text = "attempt " + n + of + run + ": " + a.status + " after " + duration(a.duration_ms) +
          (a.error ? " — " + a.error.type + ": " + a.error.message : "");
        return el("div", { class: a.status === "failed" ? "failed attempt" : "attempt" }, text);
      })));
    }
    if (entry.result !== undefined && entry.result !== null && entry.kind !== "sleep") {
      node.append(el("pre", { class: "result" }, json(entry.result)));
    }
    if (entry.error) node.append(errorBox(entry.error));
    return node;
  }

  function errorBox(error) {
    const box = el("div", { class: "error-box" },
      el("pre", { class: "error" }, error.type + ": " + error.message));
    if (error.traceback) {
      box.append(el("details", { class: "traceback" }, el("summary", {}, "traceback"),
        el("pre", { class: "error" }, error.traceback)));
    }
    if (error.cause_traceback) {
      box.append(el("details", { class: "traceback" }, el("summary", {}, "the step's traceback"),
        el("pre", { class: "error" }, error.cause_traceback)));
    }
    return box;
  }

  function eventDetail(event) {
    const skip = new Set(["type", "seq", "at", "instance_id", "truncated"]);
    const parts = [];
    for (const [k, v] of Object.entries(event)) {
      if (skip.has(k) || v == null || v === "") continue;
      let text = field(k, v);
      if (text.length > 120) text = text.slice(0, 117) + "...";
      parts.push(k + "=" + text);
    }
    return parts.join("  ");
  }

  function render(view, ctx) {
    const id = decodeURIComponent(ctx.match[1]);
    const path = "/v1/instances/" + encodeURIComponent(id);
    let historyAfter = 0;
    let instance = null;
    let steps = [];

    const title = el("h1", { id: "i-title" }, id);
    const nowLine = el("p", { id: "i-now", class: "now" });
    const actions = el("div", { id: "actions", class: "actions" });
    const panel = el("form", { id: "action-form", class: "action-form", hidden: "" });
    const result = el("p", { id: "action-result", class: "action-result", hidden: "" });
    const summary = el("div", { id: "i-summary", class: "summary" });
    const input = el("pre", { id: "i-input" });
    const output = el("pre", { id: "i-output" });
    const errorBoxWrap = el("div", { id: "i-error-box", hidden: "" });
    const timeline = el("div", { id: "timeline", class: "timeline" });
    const historyBody = el("tbody");
    const historyMore = el("button", { id: "history-more", hidden: "" }, "More events");
    view.append(
      el("p", {}, el("a", { href: "#/instances" }, "← all instances")),
      title, nowLine, actions, panel, result, summary,
      el("div", { class: "io" },
        el("div", {}, el("h3", {}, "Input"), input),
        el("div", {}, el("h3", {}, "Output"), output),
        el("div", {}, errorBoxWrap)),
      el("h2", {}, "Timeline"), timeline,
      el("h2", {}, "History"),
      el("table", { id: "history" }, el("thead", {}, el("tr", {},
        ["Seq", "Time", "Event", "Detail"].map((h) => el("th", {}, h)))), historyBody),
      el("div", { class: "pager" }, historyMore));

    function showResult(text, ok) {
      result.hidden = false;
      result.className = "action-result " + (ok ? "ok" : "error");
      result.textContent = text;
    }

    function openPanel(action) {
      result.hidden = true;  // the last action's result goes with its form
      const fields = [];
      if (action === "event") {
        fields.push(el("label", {}, "Event name", el("input", { name: "name", id: "a-name", required: "" })),
          el("label", {}, "Payload (JSON)", el("textarea", { name: "payload", id: "a-payload",
            rows: "3", placeholder: "null" })));
      } else {
        if (action === "restart") {
          const keys = steps.filter((s) => s.kind === "step" || s.kind === "child").map((s) => s.key);
          fields.push(el("label", {}, "From", el("select", { name: "from_step", id: "a-from" },
            el("option", { value: "" }, "the start"),
            [...new Set(keys)].map((k) => el("option", { value: k }, "step " + k)))));
        }
        fields.push(el("label", {}, "Reason", el("input", { name: "reason", id: "a-reason",
          placeholder: "recorded in history" })));
      }
      const label = ACTIONS.find((a) => a.name === action).label;
      panel.replaceChildren(el("strong", {}, label + " " + id), ...fields,
        el("button", { type: "submit", id: "a-submit", class: "primary" }, label),
        el("button", { type: "button", onclick: () => { panel.hidden = true; } }, "Close"));
      panel.dataset.action = action;
      panel.hidden = false;
    }

    panel.addEventListener("submit", async (event) => {
      event.preventDefault();
      const action = panel.dataset.action;
      const data = Object.fromEntries(new FormData(panel).entries());
      let url = path + "/" + action;
      let body = {};
      if (action === "event") {
        url = path + "/events";
        let payload = null;
        if (String(data.payload || "").trim()) {
          try { payload = JSON.parse(data.payload); } catch (e) {
            showResult("the payload is not JSON: " + e.message, false);
            return;
          }
        }
        body = { name: String(data.name || "").trim(), payload };
      } else {
        if (data.reason) body.reason = data.reason;
        if (data.from_step) body.from_step = data.from_step;
      }
      try {
        const answer = await api(url, { method: "POST", body });
        const what = action === "event" ? "event " + body.name : action;
        const said = answer.outcome === "UNCHANGED" ? "nothing to do, " + id + " is " + answer.status
          : answer.outcome ? "accepted, " + id + " is " + answer.status
            : "sent (no orchestrator answered yet: it takes effect when one runs)";
        showResult(what + ": " + said, true);
        panel.hidden = true;
        await refresh(false);
      } catch (error) { showResult(error.message, false); }
    });

    function renderActions() {
      actions.replaceChildren(...ACTIONS.map((a) => el("button", {
        type: "button", "data-action": a.name, disabled: a.when(instance.status) ? null : "",
        onclick: () => openPanel(a.name),
      }, a.label)));
    }

    async function loadInstance() {
      [instance, steps] = await Promise.all([api(path),
        api(path + "/steps?limit=1000").then((d) => d.items)]);
      title.replaceChildren(instance.id, " ", badge(instance.status));
      nowLine.textContent = now(instance);
      const more = (instance.waiting || []).slice(1).map(describe);
      if (more.length) nowLine.append(el("span", { class: "muted" }, " · also " + more.join("; ")));
      renderActions();
      const took = (instance.ended_at || Date.now()) - instance.started_at;
      const facts = [["Workflow", instance.workflow + " @" + instance.version],
        ["Started", when(instance.started_at)], ["Ended", when(instance.ended_at)],
        ["Duration", duration(took)], ["Steps", instance.steps], ["Events", instance.events],
        ["Run", instance.run]];
      if (instance.upgrades && instance.upgrades.length) {
        facts.push(["Upgraded", instance.upgrades.map((u) =>
          u.from_version + " → " + u.to_version + " " + when(u.at) + " (seq " + u.seq + ")").join("; ")]);
      }
      if (instance.reason) facts.push(["Reason", instance.reason]);
      if (instance.parent_id) {
        facts.push(["Parent", el("a", { href: "#/instance/" + encodeURIComponent(instance.parent_id) },
          instance.parent_id)]);
      }
      if (instance.schedule_id) {
        facts.push(["Schedule", el("div", { id: "i-schedule" },
          el("a", { href: "#/schedules/" + encodeURIComponent(instance.schedule_id) }, instance.schedule_id),
          instance.schedule_slot != null ? [" slot ", when(instance.schedule_slot)] : null)]);
      }
      summary.replaceChildren(...facts.map(([k, v]) => el("div", {}, el("span", {}, k), v)));
      input.textContent = json(instance.input);
      output.textContent = json(instance.output);
      errorBoxWrap.hidden = !instance.error;
      errorBoxWrap.replaceChildren(...(instance.error
        ? [el("h3", {}, "Error"), errorBox(instance.error)] : []));
      const start = instance.started_at;
      const last = Math.max(instance.ended_at || Date.now(), ...steps.map((e) => e.ended_at || 0));
      const span = { start, total: Math.max(last - start, 1) };
      timeline.replaceChildren(...(steps.length ? steps.map((e) => timelineEntry(e, span))
        : [el("p", { class: "muted" }, "no steps yet")]));
    }

    async function loadHistory(reset) {
      if (reset) { historyAfter = 0; historyBody.replaceChildren(); }
      const data = await api(path + "/history?limit=200&after_seq=" + historyAfter);
      for (const event of data.items) {
        historyBody.append(el("tr", { "data-seq": event.seq },
          el("td", {}, event.seq), el("td", {}, when(event.at)),
          el("td", {}, event.type), el("td", {}, eventDetail(event))));
        historyAfter = event.seq;
      }
      historyMore.hidden = data.next_after_seq == null;
    }

    async function refresh(first) {
      try {
        await loadInstance();
        await loadHistory(first);
        RF.message("");
      } catch (error) { RF.message(error.message, "error"); }
    }

    historyMore.addEventListener("click", () => loadHistory(false).catch((e) => RF.message(e.message, "error")));
    ctx.every(2000, () => { if (panel.hidden) refresh(false); });
    return refresh(true);
  }

  RF.page({ name: "instance", path: /^\/instance\/(.+)$/, render });
})();
