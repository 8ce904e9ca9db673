// replayflow web UI: an instance list with live counts, and an instance page with a
// timeline of steps and attempts, sleeps and waits, and the raw history. Plain JS, no
// build step; everything comes from the JSON API of the server that serves this file.
"use strict";

const STATUSES = ["QUEUED", "RUNNING", "PAUSED", "SUSPENDED", "COMPLETED", "FAILED",
  "CANCELLED", "TERMINATED", "TIMED_OUT"];
const $ = (sel) => document.querySelector(sel);
let refreshTimer = null;
let listCursor = null;
let historyAfter = 0;

const tokenInput = $("#token");
tokenInput.value = localStorage.getItem("replayflow-token") || "";
tokenInput.addEventListener("change", () => {
  localStorage.setItem("replayflow-token", tokenInput.value.trim());
  route();
});

async function api(path) {
  const headers = {};
  const token = tokenInput.value.trim();
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (body.error && body.error.message) || response.statusText;
    throw new Error(response.status + ": " + message);
  }
  return body;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const badge = (status) => el("span", { class: "badge s-" + status, "data-status": status }, status);
const time = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 23) : "–");
function duration(ms) {
  if (ms == null) return "–";
  if (ms < 1000) return ms + " ms";
  if (ms < 120000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  return Math.round(ms / 60000) + " min";
}
function pretty(text) {
  if (text == null) return "–";
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return String(text); }
}
function showMessage(text) {
  const box = $("#message");
  box.hidden = !text;
  box.textContent = text || "";
}

// ------------------------------------------------------------------------- list view

function listParams() {
  const params = new URLSearchParams();
  const workflow = $("#f-workflow").value.trim();
  const status = $("#f-status").value;
  if (workflow) params.set("workflow", workflow);
  if (status) params.set("status", status);
  return params;
}

async function loadCounts() {
  const params = new URLSearchParams();
  const workflow = $("#f-workflow").value.trim();
  if (workflow) params.set("workflow", workflow);
  const data = await api("/v1/counts?" + params);
  const box = $("#counts");
  box.replaceChildren(el("div", { class: "count", "data-status": "" },
    el("b", { id: "count-total" }, data.total), el("span", {}, "ALL")));
  for (const status of STATUSES) {
    box.append(el("div", { class: "count", "data-status": status },
      el("b", { id: "count-" + status }, data.counts[status] || 0), el("span", {}, status)));
  }
  for (const node of box.children) {
    node.addEventListener("click", () => {
      $("#f-status").value = node.dataset.status;
      loadList(true);
    });
  }
}

async function loadList(reset) {
  const params = listParams();
  params.set("limit", "50");
  if (!reset && listCursor) params.set("cursor", listCursor);
  const data = await api("/v1/instances?" + params);
  const body = $("#instances tbody");
  if (reset) body.replaceChildren();
  for (const item of data.items) {
    const ended = item.ended_at || (item.status === "RUNNING" ? Date.now() : null);
    body.append(el("tr", { "data-id": item.id },
      el("td", {}, el("a", { href: "#/instance/" + encodeURIComponent(item.id) }, item.id)),
      el("td", {}, item.workflow + (item.version ? " @" + item.version : "")),
      el("td", {}, badge(item.status)),
      el("td", {}, time(item.started_at)),
      el("td", {}, ended ? duration(ended - item.started_at) : "–"),
      el("td", {}, item.steps)));
  }
  listCursor = data.next_cursor;
  $("#more").hidden = !listCursor;
}

async function showList() {
  $("#instance-view").hidden = true;
  $("#list-view").hidden = false;
  const refresh = async (reset) => {
    try {
      await Promise.all([loadCounts(), reset ? loadList(true) : Promise.resolve()]);
      showMessage("");
    } catch (error) { showMessage(error.message); }
  };
  await refresh(true);
  refreshTimer = setInterval(() => refresh(!listCursor || $("#instances tbody").children.length <= 50), 2000);
}

$("#filters").addEventListener("submit", (event) => {
  event.preventDefault();
  loadList(true).catch((e) => showMessage(e.message));
  loadCounts().catch((e) => showMessage(e.message));
});
$("#more").addEventListener("click", () => loadList(false).catch((e) => showMessage(e.message)));

// --------------------------------------------------------------------- instance view

function timelineEntry(entry, span) {
  const end = entry.ended_at || Date.now();
  const start = entry.started_at || span.start;
  const left = span.total ? ((start - span.start) / span.total) * 100 : 0;
  const width = span.total ? Math.max(((end - start) / span.total) * 100, 0.5) : 100;
  const label = { step: "step", child: "child", sleep: "sleep", wait: "wait", event: "event" }[entry.kind] || entry.kind;
  let detail = "";
  if (entry.kind === "sleep") detail = "until " + time(entry.due);
  if (entry.kind === "wait") detail = entry.deadline ? "timeout " + time(entry.deadline) : "no timeout";
  if (entry.kind === "step" || entry.kind === "child") detail = entry.function || "";
  const node = el("div", { class: "entry k-" + entry.kind, "data-key": entry.key, "data-kind": entry.kind },
    el("div", { class: "head" },
      el("span", { class: "kind" }, label),
      el("span", { class: "key" }, entry.key),
      badge(entry.status),
      el("span", { class: "muted" }, detail),
      el("span", { class: "spacer" }),
      el("span", { class: "muted" }, time(entry.started_at) + "  ·  " +
        (entry.ended_at ? duration(entry.ended_at - entry.started_at) : "…"))),
    el("div", { class: "bar" }, (() => { const i = el("i"); i.style.left = left + "%"; i.style.width = width + "%"; return i; })()));
  if (entry.attempts && entry.attempts.length) {
    const box = el("div", { class: "attempts" });
    for (const a of entry.attempts) {
      const text = "attempt " + a.attempt + ": " + a.status + " after " + duration(a.duration_ms) +
        (a.error ? " — " + a.error.type + ": " + a.error.message : "");
      box.append(el("div", { class: a.status === "failed" ? "failed attempt" : "attempt" }, text));
    }
    node.append(box);
  }
  if (entry.result != null && entry.kind !== "sleep") {
    node.append(el("pre", { class: "result" }, pretty(entry.result)));
  }
  if (entry.error) {
    node.append(el("pre", { class: "error" }, entry.error.type + ": " + entry.error.message));
  }
  return node;
}

function eventDetail(event) {
  const skip = new Set(["type", "seq", "at", "instance_id"]);
  const parts = [];
  for (const [k, v] of Object.entries(event)) {
    if (skip.has(k) || v == null || v === "") continue;
    let text = typeof v === "object" ? (v.type ? v.type + ": " + v.message : JSON.stringify(v)) : String(v);
    if (text.length > 120) text = text.slice(0, 117) + "...";
    parts.push(k + "=" + text);
  }
  return parts.join("  ");
}

async function loadHistory(id, reset) {
  if (reset) { historyAfter = 0; $("#history tbody").replaceChildren(); }
  const data = await api("/v1/instances/" + encodeURIComponent(id) + "/history?limit=200&after_seq=" + historyAfter);
  for (const event of data.items) {
    $("#history tbody").append(el("tr", { "data-seq": event.seq },
      el("td", {}, event.seq), el("td", {}, time(event.at)),
      el("td", {}, event.type), el("td", {}, eventDetail(event))));
    historyAfter = event.seq;
  }
  $("#history-more").hidden = data.next_after_seq == null;
}

async function loadInstance(id) {
  const path = "/v1/instances/" + encodeURIComponent(id);
  const [instance, steps] = await Promise.all([api(path), api(path + "/steps?limit=1000")]);
  $("#i-title").replaceChildren(instance.id, " ", badge(instance.status));
  const took = (instance.ended_at || Date.now()) - instance.started_at;
  const facts = [["Workflow", instance.workflow + " @" + instance.version],
    ["Started", time(instance.started_at)], ["Ended", time(instance.ended_at)],
    ["Duration", duration(took)], ["Steps", instance.steps], ["Events", instance.events],
    ["Run", instance.run]];
  if (instance.reason) facts.push(["Reason", instance.reason]);
  if (instance.parent_id) facts.push(["Parent", instance.parent_id]);
  if (instance.schedule_id) facts.push(["Schedule", el("a", { href: "#/schedules/" + encodeURIComponent(instance.schedule_id) }, instance.schedule_id)]);
  $("#i-summary").replaceChildren(...facts.map(([k, v]) => el("div", {}, el("span", {}, k), v)));
  $("#i-input").textContent = pretty(instance.input);
  $("#i-output").textContent = pretty(instance.output);
  $("#i-error-box").hidden = !instance.error;
  if (instance.error) $("#i-error").textContent = instance.error.type + ": " + instance.error.message;
  const entries = steps.items;
  const start = instance.started_at;
  const last = Math.max(instance.ended_at || Date.now(), ...entries.map((e) => e.ended_at || 0));
  const span = { start, total: Math.max(last - start, 1) };
  $("#timeline").replaceChildren(...(entries.length ? entries.map((e) => timelineEntry(e, span))
    : [el("p", { class: "muted" }, "no steps yet")]));
  return instance;
}

async function showInstance(id) {
  $("#list-view").hidden = true;
  $("#instance-view").hidden = false;
  const refresh = async (first) => {
    try {
      const instance = await loadInstance(id);
      await loadHistory(id, first);
      showMessage("");
      if (["COMPLETED", "FAILED", "CANCELLED", "TERMINATED", "TIMED_OUT"].includes(instance.status)) {
        clearInterval(refreshTimer);
      }
    } catch (error) { showMessage(error.message); }
  };
  $("#history-more").onclick = () => loadHistory(id, false).catch((e) => showMessage(e.message));
  await refresh(true);
  refreshTimer = setInterval(() => refresh(false), 2000);
}

// ------------------------------------------------------------------------------ route

async function route() {
  clearInterval(refreshTimer);
  const hash = location.hash || "#/";
  const schedules = window.replayflowSchedules; // schedules.js: the #/schedules pages
  if (schedules) schedules.hide();
  if (schedules && schedules.handles(hash)) {
    $("#list-view").hidden = true;
    $("#instance-view").hidden = true;
    return schedules.show(hash);
  }
  const match = hash.match(/^#\/instance\/(.+)$/);
  if (match) await showInstance(decodeURIComponent(match[1]));
  else await showList();
}

window.addEventListener("hashchange", route);
api("/health").then((h) => { $("#node").textContent = h.url + " · " + h.partition_count + " partitions"; }).catch(() => {});
route();
