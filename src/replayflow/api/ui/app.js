// replayflow web UI: the shell every page shares. Plain JS, no build step; everything
// comes from the JSON API of the server that serves these files.
//
// Pages register themselves (one file each, loaded by a <script> line in index.html):
//
//   RF.page({
//     name: "schedules",
//     path: /^\/schedules$/,            // matched against the hash path ("#/schedules?x=1")
//     nav: { label: "Schedules", href: "#/schedules", order: 40 },   // optional
//     render(view, ctx) { ... },        // ctx: { match, query, every(ms, fn), go(hash) }
//   });
//
// `render` fills `view` (an empty element) and may call ctx.every() for live refresh;
// the router stops those timers when the route changes. The query string of the hash
// (#/instances?status=RUNNING) holds a page's filters, so a link or a reload keeps
// them: ctx.setQuery({...}) rewrites it without a new history entry.
//
// A panel adds a section to another file's page: RF.panel("instance", (view, ctx) => ...)
// runs after that page has rendered, with the same ctx; ctx.onLeave(fn) runs fn when the
// route changes (stream.js adds the stream panel to the instance page this way).
"use strict";

const RF = (() => {
  const pages = [];
  const panels = [];
  let timers = [];
  let leaving = [];
  const $ = (sel, root) => (root || document).querySelector(sel);

  // ---------------------------------------------------------------- the API

  const tokenInput = $("#token");
  tokenInput.value = localStorage.getItem("replayflow-token") || "";
  tokenInput.addEventListener("change", () => {
    localStorage.setItem("replayflow-token", tokenInput.value.trim());
    route();
  });

  async function api(path, options) {
    const opts = options || {};
    const headers = {};
    const token = tokenInput.value.trim();
    if (token) headers.Authorization = "Bearer " + token;
    let body;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    const response = await fetch(path, { method: opts.method || "GET", headers, body });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (data.error && data.error.message) || response.statusText;
      const error = new Error(response.status + ": " + message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // ---------------------------------------------------------------- building the page

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const child of children.flat()) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const badge = (status) =>
    el("span", { class: "badge s-" + status, "data-status": status }, status);

  function message(text, kind) {
    const box = $("#message");
    box.hidden = !text;
    box.className = "message" + (kind ? " " + kind : "");
    box.textContent = text || "";
  }

  // ---------------------------------------------------------------- words for values

  const pad = (n) => String(n).padStart(2, "0");

  // Local time, to the second: "2026-01-01 09:30:00" (a tooltip gives UTC).
  function time(ms) {
    if (ms == null) return "–";
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function duration(ms) {
    if (ms == null) return "–";
    ms = Math.max(0, ms);
    if (ms < 1000) return Math.round(ms) + " ms";
    const s = ms / 1000;
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min" + (s % 60 >= 1 ? " " + Math.floor(s % 60) + " s" : "");
    const h = Math.floor(m / 60);
    if (h < 24) return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
    const d = Math.floor(h / 24);
    return d + " d" + (h % 24 ? " " + (h % 24) + " h" : "");
  }

  // "in 5 min" / "3 s ago"
  function relative(ms) {
    if (ms == null) return "";
    const delta = ms - Date.now();
    return delta >= 0 ? "in " + duration(delta) : duration(-delta) + " ago";
  }

  function when(ms) {
    if (ms == null) return el("span", { class: "muted" }, "–");
    return el("time", { title: new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC",
      datetime: new Date(ms).toISOString() }, time(ms));
  }

  function json(value) {
    if (value === undefined) return "–";
    return typeof value === "string" && value.endsWith("…") ? value : JSON.stringify(value, null, 2);
  }

  // Fields of history events and records that hold times or durations.
  const TIME_FIELDS = new Set(["at", "due", "deadline", "retry_at", "started_at", "ended_at",
    "updated_at", "until", "scheduled_at", "schedule_slot"]);
  const DURATION_FIELDS = new Set(["timeout_ms", "duration_ms"]);

  function field(name, value) {
    if (TIME_FIELDS.has(name) && typeof value === "number") return time(value);
    if (DURATION_FIELDS.has(name) && typeof value === "number") return duration(value);
    if (value && typeof value === "object") {
      return value.type && value.message !== undefined ? value.type + ": " + value.message
        : JSON.stringify(value);
    }
    return String(value);
  }

  // What one open call means, in words (the API's `waiting` items).
  function describe(item) {
    const until = item.until != null ? " until " + time(item.until) + " (" + relative(item.until) + ")" : "";
    if (item.kind === "sleep") return "sleeping (" + item.key + ")" + until;
    if (item.kind === "wait") return "waiting for event " + item.key + until;
    if (item.kind === "child") return "waiting for child " + item.key;
    const of = item.max_attempts ? " of " + item.max_attempts : "";
    if (item.status === "backoff") {
      const error = item.error ? ", last error " + item.error.type + ": " + item.error.message : "";
      return "retrying step " + item.key + " at " + time(item.until) + " (" + relative(item.until) +
        ", attempt " + item.attempt + of + error + ")";
    }
    return "running step " + item.key + (item.attempt ? " (attempt " + item.attempt + of + ")" : "");
  }

  // What an instance does now: its sub-state, or "" when its status says it all.
  function now(instance) {
    if (instance.status === "QUEUED") {
      return instance.queue_position ? "queued at position " + instance.queue_position : "queued";
    }
    const items = instance.waiting || [];
    if (instance.status !== "RUNNING" || !items.length) return "";
    const more = (instance.waiting_count || items.length) - 1;
    return describe(items[0]) + (more > 0 ? " (+" + more + " more)" : "");
  }

  // ---------------------------------------------------------------- the router

  function page(definition) {
    pages.push(definition);
    if (definition.nav) renderNav();
  }

  function renderNav() {
    const items = pages.filter((p) => p.nav).sort((a, b) => (a.nav.order || 0) - (b.nav.order || 0));
    $("#nav").replaceChildren(...items.map((p) =>
      el("a", { href: p.nav.href, "data-page": p.name }, p.nav.label)));
  }

  function parse() {
    const hash = (location.hash || "#/").slice(1);
    const [path, search] = hash.split("?");
    return { path: path || "/", query: new URLSearchParams(search || "") };
  }

  function setQuery(values) {
    const { path } = parse();
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v != null && v !== "") query.set(k, v);
    const text = query.toString();
    history.replaceState(null, "", "#" + path + (text ? "?" + text : ""));
  }

  function panel(pageName, fn) {
    panels.push({ pageName, fn });
  }

  async function route() {
    for (const id of timers) clearInterval(id);
    timers = [];
    for (const fn of leaving) fn();
    leaving = [];
    message("");
    const { path, query } = parse();
    const view = $("#view");
    view.replaceChildren();
    for (const p of pages) {
      const match = path.match(p.path);
      if (!match) continue;
      for (const a of document.querySelectorAll("#nav a")) {
        a.classList.toggle("active", a.dataset.page === p.name);
      }
      view.dataset.page = p.name;
      const ctx = {
        match, query, setQuery,
        every(ms, fn) { timers.push(setInterval(fn, ms)); },
        go(hash) { location.hash = hash; },
        onLeave(fn) { leaving.push(fn); },
      };
      try {
        const rendered = p.render(view, ctx); // its sections are in place before it awaits
        for (const extra of panels.filter((x) => x.pageName === p.name)) extra.fn(view, ctx);
        await rendered;
      } catch (error) { message(error.message, "error"); }
      return;
    }
    view.append(el("p", {}, "No page here. ", el("a", { href: "#/" }, "All instances")));
  }

  function start() {
    window.addEventListener("hashchange", route);
    $("#search").addEventListener("submit", (event) => {
      event.preventDefault();
      const q = $("#search-q").value.trim();
      location.hash = "#/instances" + (q ? "?q=" + encodeURIComponent(q) : "");
    });
    api("/health").then((h) => {
      $("#node").textContent = h.url + " · " + h.partition_count + " partitions";
    }).catch(() => {});
    route();
  }

  return { api, el, badge, message, time, duration, relative, when, json, field, describe, now,
    page, panel, start, $ };
})();
