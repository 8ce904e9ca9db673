// The workflows: every name with its versions (run by which orchestrators, deployed as
// a document), its instance count and its instances by status (each a link to the
// filtered list).
"use strict";

(() => {
  const { api, el, badge } = RF;

  async function render(view, ctx) {
    const body = el("tbody");
    view.append(el("h1", {}, "Workflows"),
      el("table", { id: "workflows" }, el("thead", {}, el("tr", {},
        ["Workflow", "Versions", "Instances", "By status"].map((h) => el("th", {}, h)))), body));

    async function load() {
      const data = await api("/v1/workflows");
      body.replaceChildren(...data.items.map((w) => {
        const list = (extra) => "#/instances?" + new URLSearchParams({ workflow: w.workflow, ...extra });
        return el("tr", { "data-workflow": w.workflow },
          el("td", {}, el("a", { href: list({}) }, w.workflow)),
          el("td", {}, w.versions.map((v) => el("div", { class: "version", "data-version": v.version },
            el("b", {}, v.version),
            v.deployed ? el("span", { class: "tag" }, "document") : null,
            (v.run_by || []).length ? el("span", { class: "muted" }, " run by " + v.run_by.join(", "))
              : el("span", { class: "muted" }, v.deployed ? "" : " no orchestrator runs it"),
            el("span", { class: "muted" }, " · " + v.instances + " instances")))),
          el("td", { class: "total" }, w.instances),
          el("td", {}, Object.entries(w.counts || {}).map(([status, n]) =>
            el("a", { href: list({ status }), class: "count-link" }, badge(status), " " + n))));
      }));
      if (!data.items.length) {
        body.append(el("tr", {}, el("td", { colspan: "4", class: "muted" }, "no workflows yet")));
      }
    }

    ctx.every(5000, () => load().catch((e) => RF.message(e.message, "error")));
    await load();
  }

  RF.page({ name: "workflows", path: /^\/workflows$/, render,
    nav: { label: "Workflows", href: "#/workflows", order: 20 } });
})();
