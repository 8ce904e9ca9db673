// Schedules: the list (#/schedules: each schedule's workflow, state, spec in words, next
// fire time and last runs, with pause, unpause and trigger-now buttons) and one schedule
// (#/schedules/<id>?next=5: spec, policies, the next fire times, the recent runs linking
// to their instances; pause, unpause, trigger and delete).
"use strict";

(() => {
  const { api, el, badge, when, time, relative } = RF;
  const path = (id) => "/v1/schedules/" + encodeURIComponent(id);
  const page = (id) => "#/schedules/" + encodeURIComponent(id);
  const state = (s) => badge(s.paused ? "PAUSED" : "ACTIVE");
  const runLink = (id) => el("a", { href: "#/instance/" + encodeURIComponent(id), class: "run-link" }, id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // ---------------------------------------------------------------- words for a spec

  // A whole span of time: "1 h 30 min" (schedule durations are whole seconds).
  function span(ms) {
    const parts = [];
    let rest = ms;
    for (const [unit, size] of [["d", 86400000], ["h", 3600000], ["min", 60000], ["s", 1000]]) {
      if (rest >= size) { parts.push(Math.floor(rest / size) + " " + unit); rest %= size; }
    }
    if (rest) parts.push(rest + " ms");
    return parts.join(" ") || "0 s";
  }

  const pad = (n) => String(n).padStart(2, "0");
  const NUMBER = /^\d+$/;
  const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const MACROS = {
    "@yearly": "every year on 1 January at 00:00", "@annually": "every year on 1 January at 00:00",
    "@monthly": "on the 1st of every month at 00:00", "@weekly": "every Sunday at 00:00",
    "@daily": "every day at 00:00", "@midnight": "every day at 00:00", "@hourly": "every hour at :00",
  };

  function dayName(token) {
    if (/^[0-7]$/.test(token)) return DAYS[Number(token) % 7];
    const i = DAYS.map((d) => d.toUpperCase()).indexOf(token.toUpperCase());
    return i < 0 ? null : DAYS[i];
  }

  // "MON-FRI" or "1,3,5" in words; null for what this does not read (L, #, steps).
  function dayNames(field) {
    const out = [];
    for (const part of field.split(",")) {
      const ends = part.split("-");
      const names = ends.length <= 2 ? ends.map(dayName) : [null];
      if (names.includes(null)) return null;
      out.push(names.join("–"));
    }
    return out.join(", ");
  }

  // The common five-field shapes in words; null for the others (they are shown as
  // written: cron has more forms than a sentence should try to cover).
  function fiveFields([minute, hour, dom, month, dow]) {
    if (month !== "*") return null;
    let days = "";
    if (dom === "*" && dow !== "*") {
      const names = dayNames(dow);
      if (!names) return null;
      days = " on " + names;
    } else if (dow === "*" && NUMBER.test(dom)) {
      days = " on day " + dom + " of the month";
    } else if (dom !== "*" || dow !== "*") {
      return null;
    }
    const step = minute.match(/^\*\/(\d+)$/);
    if (minute === "*" && hour === "*") return "every minute" + days;
    if (step && hour === "*") return "every " + step[1] + " min" + days;
    if (NUMBER.test(minute) && hour === "*") return "every hour at :" + pad(minute) + days;
    if (NUMBER.test(minute) && /^\d+(,\d+)*$/.test(hour)) {
      const at = hour.split(",").map((h) => pad(h) + ":" + pad(minute)).join(", ");
      return (days ? "at " : "every day at ") + at + days;
    }
    return null;
  }

  // Each expression names its zone (intervals ignore it).
  function cronWords(expression, zone) {
    const raw = expression.trim();
    const fields = raw.split(/\s+/);
    const words = MACROS[raw.toLowerCase()] || (fields.length === 5 ? fiveFields(fields) : null);
    return words ? words + " (" + raw + ", " + zone + ")" : "cron " + raw + " (" + zone + ")";
  }

  function specWords(spec) {
    const parts = spec.cron.map((c) => cronWords(c, spec.timezone));
    for (const i of spec.intervals) {
      parts.push("every " + span(i.every_ms) + (i.offset_ms ? " (offset " + span(i.offset_ms) + ")" : ""));
    }
    if (spec.rerun_after_ms != null) {
      parts.push(spec.rerun_after_ms ? span(spec.rerun_after_ms) + " after each run ends"
        : "again as soon as each run ends");
    }
    let text = parts.join("; ");
    if (spec.start_ms != null) text += ", from " + time(spec.start_ms);
    if (spec.end_ms != null) text += ", until " + time(spec.end_ms);
    if (spec.jitter_ms) text += ", each up to " + span(spec.jitter_ms) + " late";
    return text;
  }

  // The next fire time, with how far off it is.
  function nextFire(s) {
    const next = s.next_fire_times[0];
    if (next == null) {
      const why = s.spec.rerun_after_ms != null && s.running.length ? "after the running one ends" : "none";
      return el("span", { class: "muted" }, why);
    }
    return el("span", {}, when(next), el("span", { class: "muted" },
      " (" + relative(next) + (s.paused ? ", if unpaused" : "") + ")"));
  }

  // ---------------------------------------------------------------- actions

  // The API answers 202 once the command is on the log; the read model shows it a moment
  // later, so an action waits until the schedule says so before the page redraws.
  async function settle(id, done) {
    for (let i = 0; i < 75; i++) {
      let schedule = null;
      try { schedule = await api(path(id) + "?next=0"); } catch (error) {
        if (error.status !== 404) throw error;
      }
      if (done(schedule)) return true;
      await sleep(200);
    }
    RF.message("sent; the schedule does not show it yet (is an orchestrator running?)");
    return false;
  }

  // The buttons both pages show. `busy(flag)` holds the page's refresh while one runs.
  function actions(s, busy, after) {
    async function run(button, fn) {
      busy(true);
      button.disabled = true;
      try { if (await fn() !== false) await after(); } catch (error) { RF.message(error.message, "error"); }
      button.disabled = false;
      busy(false);
    }
    const label = s.paused ? "Unpause" : "Pause";
    const toggle = el("button", { type: "button", class: "pause-toggle", "data-action": label.toLowerCase() }, label);
    toggle.addEventListener("click", () => run(toggle, async () => {
      let note = "";
      if (!s.paused) {
        note = prompt("Pause " + s.id + ": why? (a note kept with it)", "");
        if (note === null) return false;  // cancelled
      }
      await api(path(s.id) + "/" + label.toLowerCase(), { method: "POST", body: { note } });
      RF.message((s.paused ? "unpaused " : "paused ") + s.id);
      return settle(s.id, (x) => x && x.paused !== s.paused);
    }));
    const trigger = el("button", { type: "button", class: "trigger", "data-action": "trigger",
      title: "start a run now (also while paused)" }, "Trigger now");
    trigger.addEventListener("click", () => run(trigger, async () => {
      const answer = await api(path(s.id) + "/trigger", { method: "POST", body: {} });
      RF.message("started " + answer.instance_id);
      return settle(s.id, (x) => x && x.recent_runs.some((r) => r.instance_id === answer.instance_id));
    }));
    return [toggle, trigger];
  }

  // A page's refresh: errors show until a refresh succeeds; an action's message stays.
  function refresher(load) {
    let failed = false;
    return async () => {
      try {
        await load();
        if (failed) RF.message("");
        failed = false;
      } catch (error) {
        RF.message(error.message, "error");
        failed = true;
      }
    };
  }

  // ---------------------------------------------------------------- the list

  async function renderList(view, ctx) {
    const body = el("tbody");
    view.append(el("h1", {}, "Schedules"),
      el("p", { class: "muted" }, "Each starts its workflow at its fire times, once per time. " +
        "A paused schedule skips the times that pass; Trigger now starts a run also while paused."),
      el("table", { id: "schedules" }, el("thead", {}, el("tr", {},
        ["Schedule", "Workflow", "State", "Spec", "Next fire", "Last runs", ""].map((h) => el("th", {}, h)))),
      body));
    let busy = false;
    const hold = (flag) => { busy = flag; };

    function row(s) {
      const runs = s.recent_runs.slice(-3).reverse();
      return el("tr", { "data-id": s.id },
        el("td", { class: "id" }, el("a", { href: page(s.id) }, s.id)),
        el("td", {}, s.action.workflow),
        el("td", { class: "state" }, state(s), s.paused && s.note ? el("div", { class: "muted" }, s.note) : null),
        el("td", { class: "spec" }, specWords(s.spec)),
        el("td", { class: "next-fire" }, nextFire(s)),
        el("td", { class: "last-run" }, runs.length ? runs.map((r) => el("div", { class: "run" },
          badge(r.status), " ", runLink(r.instance_id))) : el("span", { class: "muted" }, "–")),
        el("td", { class: "buttons" }, actions(s, hold, load)));
    }

    async function load() {
      const items = [];
      let after = null;
      do {
        const data = await api("/v1/schedules?limit=1000" + (after ? "&after=" + encodeURIComponent(after) : ""));
        items.push(...data.items);
        after = data.next_after;
      } while (after);
      body.replaceChildren(...(items.length ? items.map(row)
        : [el("tr", {}, el("td", { colspan: "7", class: "muted" }, "no schedules"))]));
    }

    const deleted = ctx.query.get("deleted");
    const refresh = refresher(load);
    ctx.every(3000, () => { if (!busy) refresh(); });
    await load();
    if (deleted) RF.message("deleted " + deleted + " (the runs it started go on)");
  }

  // ---------------------------------------------------------------- one schedule

  async function renderOne(view, ctx) {
    const id = decodeURIComponent(ctx.match[1]);
    const clamp = (n) => Math.min(Math.max(Math.round(Number(n)) || 5, 1), 100);
    let count = clamp(ctx.query.get("next"));
    const title = el("h1", { id: "s-title" }, id);
    const buttons = el("p", { id: "s-actions", class: "actions" });
    const summary = el("div", { id: "s-summary", class: "summary" });
    const policies = el("div", { id: "s-policies", class: "summary" });
    const howMany = el("input", { id: "next-count", type: "number", min: "1", max: "100", value: count });
    const fires = el("ul", { id: "next-fires" });
    const runs = el("tbody");
    view.append(
      el("p", {}, el("a", { href: "#/schedules" }, "← all schedules")),
      title, buttons, summary,
      el("h2", {}, "Policies"), policies,
      el("h2", {}, "Next fire times ", el("label", { class: "muted" }, "show ", howMany)), fires,
      el("h2", {}, "Recent runs"),
      el("table", { id: "runs" }, el("thead", {}, el("tr", {},
        ["Run", "Slot", "Kind", "Status", "Started", "Ended"].map((h) => el("th", {}, h)))), runs));
    let busy = false;
    const hold = (flag) => { busy = flag; };

    function remove() {
      const button = el("button", { type: "button", id: "delete", "data-action": "delete" }, "Delete");
      button.addEventListener("click", async () => {
        if (!confirm("Delete schedule " + id + "? No more runs start; the runs it started go on.")) return;
        hold(true);
        button.disabled = true;
        try {
          await api(path(id), { method: "DELETE" });
          if (await settle(id, (x) => x === null)) ctx.go("#/schedules?deleted=" + encodeURIComponent(id));
        } catch (error) { RF.message(error.message, "error"); }
        button.disabled = false;
        hold(false);
      });
      return button;
    }

    async function load() {
      const s = await api(path(id) + "?next=" + count);
      title.replaceChildren(s.id, " ", state(s));
      const [toggle, trigger] = actions(s, hold, load);
      toggle.id = "pause-toggle";
      trigger.id = "trigger";
      buttons.replaceChildren(toggle, trigger, remove());
      const action = s.action;
      const facts = [
        ["Workflow", el("a", { href: "#/instances?" + new URLSearchParams({ workflow: action.workflow }) },
          action.workflow + (action.version ? " @" + action.version : ""))],
        ["Spec", el("div", { id: "s-spec" }, specWords(s.spec))],
        ["Input", el("code", {}, action.input)],
        ["Created", when(s.created_at)], ["Updated", when(s.updated_at)],
      ];
      if (s.note) facts.push(["Note", el("div", { id: "s-note" }, s.note)]);
      if (s.running.length) facts.push(["Running", s.running.map((r) => el("div", {}, runLink(r)))]);
      if (s.buffered.length) facts.push(["Buffered slots", s.buffered.map((t) => el("div", {}, when(t)))]);
      if (s.skipped) facts.push(["Skipped slots", s.skipped]);
      if (s.missed.length) {
        facts.push(["Missed", s.missed.map(([a, b]) => el("div", {}, "after ", when(a), " through ", when(b)))]);
      }
      // (A value holds no <span>: .summary styles those as the labels.)
      summary.replaceChildren(...facts.map(([k, v]) => el("div", {}, el("span", {}, k), v)));
      const p = s.policies;
      policies.replaceChildren(...[
        ["Overlap", p.overlap],
        ["Catch-up window", span(p.catchup_window_ms)],
        ["Pause on failure", p.pause_on_failure ? "yes" : "no"],
      ].map(([k, v]) => el("div", {}, el("span", {}, k), v)));
      fires.replaceChildren(...(s.next_fire_times.length
        ? s.next_fire_times.map((t) => el("li", {}, when(t), el("span", { class: "muted" }, " (" + relative(t) + ")")))
        : [el("li", { class: "muted" }, nextFire(s))]));
      runs.replaceChildren(...(s.recent_runs.length ? s.recent_runs.slice().reverse().map((r) =>
        el("tr", { "data-id": r.instance_id },
          el("td", { class: "id" }, runLink(r.instance_id)), el("td", {}, when(r.slot_ms)),
          el("td", {}, r.kind), el("td", {}, badge(r.status)), el("td", {}, when(r.started_at)),
          el("td", {}, when(r.ended_at))))
        : [el("tr", {}, el("td", { colspan: "6", class: "muted" }, "no runs yet"))]));
    }

    howMany.addEventListener("change", () => {
      count = clamp(howMany.value);
      howMany.value = count;
      ctx.setQuery({ next: count === 5 ? null : count });
      refresh();
    });
    const refresh = refresher(load);
    ctx.every(3000, () => { if (!busy) refresh(); });
    await load();
  }

  RF.page({ name: "schedules", path: /^\/schedules$/, render: renderList,
    nav: { label: "Schedules", href: "#/schedules", order: 25 } });
  RF.page({ name: "schedule", path: /^\/schedules\/(.+)$/, render: renderOne });
})();
