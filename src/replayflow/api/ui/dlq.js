// Dead letters: input nobody could process, newest first, each inspectable (the record
// decoded, where it came from) and redrivable once; a redrive that cannot succeed is
// refused with the reason.
"use strict";

(() => {
  const { api, el, when, json } = RF;

  async function render(view, ctx) {
    const body = el("tbody");
    view.append(el("h1", {}, "Dead letters"),
      el("p", { class: "muted" }, "Input the engine could not accept, with the reason. " +
        "A redrive sends the original record back to its topic, once."),
      el("table", { id: "dlq" }, el("thead", {}, el("tr", {},
        ["Entry", "Time", "Key", "Type", "Reason", ""].map((h) => el("th", {}, h)))), body));
    const open = new Set();

    function detail(entry) {
      return el("tr", { class: "detail", "data-detail": entry.id }, el("td", { colspan: "6" },
        el("div", { class: "summary" },
          el("div", {}, el("span", {}, "Source"),
            entry.source_topic + " [" + entry.source_partition + "] @ " + entry.source_offset),
          el("div", {}, el("span", {}, "Size"), entry.value_size + " bytes"),
          entry.redriven ? el("div", {}, el("span", {}, "Redriven"), when(entry.redriven_at)) : null),
        el("h3", {}, "Original record"),
        el("pre", { class: "original" }, entry.original ? json(entry.original)
          : "(not a replayflow record) " + (entry.value_hex || ""))));
    }

    function row(entry) {
      const status = el("span", { class: "redrive-result" });
      const redrive = el("button", { type: "button", "data-redrive": entry.id,
        disabled: entry.redriven ? "" : null,
        onclick: async () => {
          try {
            const done = await api("/v1/dlq/" + entry.id + "/redrive", { method: "POST" });
            status.className = "redrive-result ok";
            status.textContent = "redriven to " + done.to;
            redrive.disabled = true;
          } catch (error) {
            status.className = "redrive-result error";
            status.textContent = error.message;
          }
        } }, entry.redriven ? "Redriven" : "Redrive");
      const inspect = el("button", { type: "button", "data-inspect": entry.id, onclick: () => {
        if (open.has(entry.id)) open.delete(entry.id); else open.add(entry.id);
        draw();
      } }, "Inspect");
      return el("tr", { "data-entry": entry.id },
        el("td", {}, entry.id), el("td", {}, when(entry.at)),
        el("td", { class: "id" }, entry.key || "–"),
        el("td", {}, entry.original ? entry.original.type : "–", el("div", { class: "muted" }, entry.error_type)),
        el("td", {}, entry.reason), el("td", { class: "buttons" }, inspect, redrive, status));
    }

    let entries = [];
    function draw() {
      const rows = [];
      for (const entry of entries) {
        rows.push(row(entry));
        if (open.has(entry.id)) rows.push(detail(entry));
      }
      body.replaceChildren(...(rows.length ? rows
        : [el("tr", {}, el("td", { colspan: "6", class: "muted" }, "no dead letters"))]));
    }

    async function load() {
      entries = (await api("/v1/dlq?limit=200")).items.reverse();
      draw();
    }

    view.querySelector("p.muted").append(" ", el("button", { type: "button", id: "dlq-reload",
      onclick: () => load().catch((e) => RF.message(e.message, "error")) }, "Reload"));
    await load();
  }

  RF.page({ name: "dlq", path: /^\/dlq$/, render,
    nav: { label: "Dead letters", href: "#/dlq", order: 30 } });
})();
