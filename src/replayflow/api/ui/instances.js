// The instance list: live counts by status, filters by id prefix, workflow, status and
// start time (kept in the URL: #/instances?q=order-&workflow=checkout&status=RUNNING
// &from=2026-01-01T08:00&to=...), and what each instance does now.
"use strict";

(() => {
  const { api, el, badge, when, duration, now } = RF;
  const STATUSES = ["QUEUED", "RUNNING", "PAUSED", "SUSPENDED", "COMPLETED", "FAILED",
    "CANCELLED", "TERMINATED", "TIMED_OUT"];

  // datetime-local values are local time; the API takes epoch milliseconds.
  const toMs = (local) => (local ? new Date(local).getTime() : null);

  function render(view, ctx) {
    const q = ctx.query;
    const filters = {
      q: q.get("q") || "", workflow: q.get("workflow") || "", status: q.get("status") || "",
      from: q.get("from") || "", to: q.get("to") || "",
    };
    let cursor = null;
    let shown = 0;

    const counts = el("div", { id: "counts", class: "counts", "aria-label": "counts by status" });
    const workflows = el("datalist", { id: "workflow-names" });
    const form = el("form", { id: "filters", class: "filters" },
      el("label", {}, "Id or prefix", el("input", { id: "f-q", name: "q", value: filters.q,
        placeholder: "any" })),
      el("label", {}, "Workflow", el("input", { id: "f-workflow", name: "workflow",
        value: filters.workflow, placeholder: "any", list: "workflow-names" })),
      el("label", {}, "Status", el("select", { id: "f-status", name: "status" },
        el("option", { value: "" }, "any"),
        STATUSES.map((s) => el("option", { value: s }, s)))),
      el("label", {}, "Started from", el("input", { id: "f-from", name: "from",
        type: "datetime-local", value: filters.from })),
      el("label", {}, "to", el("input", { id: "f-to", name: "to", type: "datetime-local",
        value: filters.to })),
      el("button", { type: "submit" }, "Filter"),
      el("button", { type: "button", id: "f-clear", onclick: () => apply({}) }, "Clear"),
      workflows);
    form.querySelector("#f-status").value = filters.status;
    const body = el("tbody");
    const table = el("table", { id: "instances" },
      el("thead", {}, el("tr", {}, ["Instance", "Workflow", "Status", "Now", "Started",
        "Duration", "Steps"].map((h) => el("th", {}, h)))), body);
    const more = el("button", { id: "more", hidden: "" }, "Older instances");
    view.append(el("h1", {}, "Instances"), counts, form, table, el("div", { class: "pager" }, more));

    function apply(values) {
      ctx.setQuery(values);
      Object.assign(filters, { q: "", workflow: "", status: "", from: "", to: "" }, values);
      for (const [k, v] of Object.entries(filters)) {
        const input = form.querySelector("#f-" + k);
        if (input) input.value = v;
      }
      refresh(true);
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      apply(Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v).trim()])));
    });
    more.addEventListener("click", () => load(false).catch((e) => RF.message(e.message, "error")));

    function params() {
      const p = new URLSearchParams();
      if (filters.q) p.set("prefix", filters.q);
      if (filters.workflow) p.set("workflow", filters.workflow);
      if (filters.status) p.set("status", filters.status);
      if (toMs(filters.from) != null) p.set("started_after", toMs(filters.from));
      if (toMs(filters.to) != null) p.set("started_before", toMs(filters.to));
      return p;
    }

    async function loadCounts() {
      const p = new URLSearchParams();
      if (filters.workflow) p.set("workflow", filters.workflow);
      const data = await api("/v1/counts?" + p);
      const tile = (status, n, label) => el("div", { class: "count" +
        (filters.status === status ? " selected" : ""), "data-status": status,
        onclick: () => apply({ ...filters, status }) },
      el("b", { id: status ? "count-" + status : "count-total" }, n), el("span", {}, label));
      counts.replaceChildren(tile("", data.total, "ALL"),
        ...STATUSES.map((s) => tile(s, data.counts[s] || 0, s)));
    }

    function row(item) {
      const ended = item.ended_at || (item.status === "RUNNING" ? Date.now() : null);
      return el("tr", { "data-id": item.id },
        el("td", { class: "id" }, el("a", { href: "#/instance/" + encodeURIComponent(item.id) }, item.id)),
        el("td", {}, item.workflow, item.version ? el("span", { class: "muted" }, " @" + item.version) : null),
        el("td", {}, badge(item.status)),
        el("td", { class: "now" }, now(item)),
        el("td", {}, when(item.started_at)),
        el("td", {}, ended ? duration(ended - item.started_at) : "–"),
        el("td", {}, item.steps));
    }

    async function load(reset) {
      const p = params();
      p.set("limit", "50");
      if (!reset && cursor) p.set("cursor", cursor);
      const data = await api("/v1/instances?" + p);
      if (reset) { body.replaceChildren(); shown = 0; }
      body.append(...data.items.map(row));
      shown += data.items.length;
      cursor = data.next_cursor;
      more.hidden = !cursor;
      if (reset && !data.items.length) {
        body.append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "no instances match")));
      }
    }

    async function refresh(reset) {
      try {
        await Promise.all([loadCounts(), reset ? load(true) : Promise.resolve()]);
        RF.message("");
      } catch (error) { RF.message(error.message, "error"); }
    }

    api("/v1/workflows").then((data) => {
      workflows.replaceChildren(...data.items.map((w) => el("option", { value: w.workflow })));
    }).catch(() => {});
    ctx.every(2000, () => refresh(shown <= 50));
    return refresh(true);
  }

  RF.page({ name: "instances", path: /^\/(instances)?$/, render,
    nav: { label: "Instances", href: "#/instances", order: 10 } });
})();
