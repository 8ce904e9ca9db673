// replayflow web UI: the schedules page (#/schedules) and one schedule (#/schedules/<id>):
// next fire times, recent runs with their status, pause/unpause and trigger buttons.
// Loaded before app.js, whose helpers (api, el, badge, time, showMessage) it calls once
// the page runs; app.js's router hands it the #/schedules routes.
"use strict";

window.replayflowSchedules = (() => {
  const view = () => document.getElementById("schedules-view");

  function section() {
    let node = view();
    if (!node) {
      node = document.createElement("section");
      node.id = "schedules-view";
      node.hidden = true;
      document.querySelector("main").prepend(node);
    }
    return node;
  }

  async function post(path, body) {
    const headers = { "Content-Type": "application/json" };
    const token = document.getElementById("token").value.trim();
    if (token) headers.Authorization = "Bearer " + token;
    const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body || {}) });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (answer.error && answer.error.message) || response.statusText;
      throw new Error(response.status + ": " + message);
    }
    return answer;
  }

  const path = (id) => "/v1/schedules/" + encodeURIComponent(id);
  const state = (s) => badge(s.paused ? "PAUSED" : "ACTIVE");

  function specText(spec) {
    const parts = spec.cron.map((c) => "cron " + c);
    for (const i of spec.intervals) {
      parts.push("every " + i.every_ms / 1000 + " s" + (i.offset_ms ? " +" + i.offset_ms / 1000 + " s" : ""));
    }
    if (spec.rerun_after_ms != null) parts.push("rerun " + spec.rerun_after_ms / 1000 + " s after each run");
    return parts.join(", ") + " (" + spec.timezone + ")";
  }

  function pauseButton(schedule, after) {
    const label = schedule.paused ? "Unpause" : "Pause";
    const button = el("button", { class: "pause-toggle", "data-action": label.toLowerCase() }, label);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const note = schedule.paused ? "" : (prompt("Why pause it? (a note kept with it)") || "");
        await post(path(schedule.id) + "/" + label.toLowerCase(), { note });
        await waitFor(schedule.id, (s) => s.paused !== schedule.paused);
        await after();
      } catch (error) { showMessage(error.message); }
      button.disabled = false;
    });
    return button;
  }

  async function waitFor(id, done) {
    // The command is on the log; the read model shows it a moment later.
    for (let i = 0; i < 50; i++) {
      const schedule = await api(path(id)).catch(() => null);
      if (schedule && done(schedule)) return schedule;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return null;
  }

  function runLink(run) {
    return el("a", { href: "#/instance/" + encodeURIComponent(run.instance_id) }, run.instance_id);
  }

  async function showList() {
    const node = section();
    const data = await api("/v1/schedules?limit=1000");
    const rows = data.items.map((s) => {
      const last = s.recent_runs[s.recent_runs.length - 1];
      return el("tr", { "data-id": s.id },
        el("td", {}, el("a", { href: "#/schedules/" + encodeURIComponent(s.id) }, s.id)),
        el("td", {}, s.action.workflow),
        el("td", {}, state(s)),
        el("td", {}, specText(s.spec)),
        el("td", { class: "next-fire" }, s.next_fire_times.length ? time(s.next_fire_times[0]) : "–"),
        el("td", { class: "last-run" }, last ? badge(last.status) : "–", last ? " " : null, last ? runLink(last) : null),
        el("td", {}, pauseButton(s, showList)));
    });
    node.replaceChildren(
      el("p", {}, el("a", { href: "#/" }, "← instances")),
      el("h1", {}, "Schedules"),
      rows.length
        ? el("table", { id: "schedules" },
          el("thead", {}, el("tr", {}, ...["Schedule", "Workflow", "State", "Spec", "Next fire", "Last run", ""].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows))
        : el("p", { class: "muted" }, "no schedules"));
  }

  async function showOne(id) {
    const node = section();
    const s = await api(path(id) + "?next=5");
    const trigger = el("button", { id: "trigger" }, "Trigger now");
    trigger.addEventListener("click", async () => {
      trigger.disabled = true;
      try {
        const answer = await post(path(id) + "/trigger", {});
        showMessage("started " + answer.instance_id);
        await waitFor(id, (x) => x.recent_runs.some((r) => r.instance_id === answer.instance_id));
        await showOne(id);
      } catch (error) { showMessage(error.message); }
      trigger.disabled = false;
    });
    const facts = [["Workflow", s.action.workflow + (s.action.version ? " @" + s.action.version : "")],
      ["Spec", specText(s.spec)], ["Overlap", s.policies.overlap],
      ["Catch-up window", s.policies.catchup_window_ms / 1000 + " s"],
      ["Pause on failure", s.policies.pause_on_failure ? "yes" : "no"],
      ["Created", time(s.created_at)], ["Skipped slots", s.skipped]];
    if (s.note) facts.push(["Note", s.note]);
    node.replaceChildren(
      el("p", {}, el("a", { href: "#/schedules" }, "← all schedules")),
      el("h1", { id: "s-title" }, s.id, " ", state(s)),
      el("div", { class: "summary" }, ...facts.map(([k, v]) => el("div", {}, el("span", {}, k), v))),
      el("p", {}, pauseButton(s, () => showOne(id)), " ", trigger),
      el("h2", {}, "Next fire times"),
      el("ul", { id: "next-fires" }, ...s.next_fire_times.map((t) => el("li", {}, time(t)))),
      el("h2", {}, "Recent runs"),
      el("table", { id: "runs" },
        el("thead", {}, el("tr", {}, ...["Run", "Slot", "Kind", "Status", "Started", "Ended"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...s.recent_runs.slice().reverse().map((r) => el("tr", { "data-id": r.instance_id },
          el("td", {}, runLink(r)), el("td", {}, time(r.slot_ms)), el("td", {}, r.kind),
          el("td", {}, badge(r.status)), el("td", {}, time(r.started_at)), el("td", {}, time(r.ended_at)))))));
  }

  return {
    handles: (hash) => /^#\/schedules(\/|$)/.test(hash),
    hide: () => { if (view()) view().hidden = true; },
    async show(hash) {
      const node = section();
      node.hidden = false;
      const match = hash.match(/^#\/schedules\/(.+)$/);
      const load = async () => {
        try {
          await (match ? showOne(decodeURIComponent(match[1])) : showList());
          showMessage("");
        } catch (error) { showMessage(error.message); }
      };
      await load();
      refreshTimer = setInterval(load, 3000);
    },
  };
})();
