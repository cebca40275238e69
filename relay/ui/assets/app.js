// The service map: nodes are the pods (and addresses) seen in flows,
// grouped by namespace; an edge per source, destination and verdict,
// green when forwarded, red and dashed when dropped. Clicking an edge
// shows only its flows in the table; the selectors hide other namespaces
// or clusters. Flows arrive in batches from /api/flows (Server-Sent Events).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const MAX_ROWS = 300;

const nodes = new Map(); // id -> {id, ns, cluster}
const edges = new Map(); // src|dst|verdict -> {src, dst, verdict, count}
const flows = [];        // newest last, at most MAX_ROWS
let selected = null;     // edge key whose flows the table shows
let dirty = false;

function el(tag, attrs, parent) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function nodeOf(side) {
  if (!nodes.has(side.id)) {
    nodes.set(side.id, { id: side.id, ns: side.ns || "(no namespace)", cluster: side.cluster || "" });
    addOption("ns-filter", side.ns || "(no namespace)");
    if (side.cluster) addOption("cluster-filter", side.cluster);
  }
  return nodes.get(side.id);
}

function addOption(id, value) {
  const sel = document.getElementById(id);
  for (const o of sel.options) if (o.value === value) return;
  const o = document.createElement("option");
  o.value = value;
  o.textContent = value;
  sel.appendChild(o);
}

function verdictClass(v) { return v === "DROPPED" ? "dropped" : "forwarded"; }

function add(f) {
  nodeOf(f.src);
  nodeOf(f.dst);
  const key = f.src.id + "|" + f.dst.id + "|" + f.verdict;
  const e = edges.get(key) || { key, src: f.src.id, dst: f.dst.id, verdict: f.verdict, count: 0 };
  e.count++;
  edges.set(key, e);
  f.key = key;
  flows.push(f);
  if (flows.length > MAX_ROWS) flows.shift();
  dirty = true;
}

function visible(n) {
  const ns = document.getElementById("ns-filter").value;
  const cl = document.getElementById("cluster-filter").value;
  return (!ns || n.ns === ns) && (!cl || n.cluster === cl);
}

// draw lays namespaces out as columns and their nodes one under another.
function draw() {
  dirty = false;
  const groups = document.getElementById("groups");
  const edgeLayer = document.getElementById("edges");
  const nodeLayer = document.getElementById("nodes");
  groups.replaceChildren();
  edgeLayer.replaceChildren();
  nodeLayer.replaceChildren();
  const byNs = new Map();
  for (const n of [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    if (!byNs.has(n.ns)) byNs.set(n.ns, []);
    byNs.get(n.ns).push(n);
  }
  const pos = new Map();
  let x = 20;
  for (const ns of [...byNs.keys()].sort()) {
    const members = byNs.get(ns);
    const g = el("g", { class: "group", "data-namespace": ns }, groups);
    const height = 40 + members.length * 60;
    el("rect", { x: x, y: 10, width: 200, height: height, rx: 8 }, g);
    el("text", { x: x + 10, y: 28 }, g).textContent = ns;
    members.forEach((n, i) => {
      const cx = x + 100, cy = 60 + i * 60;
      pos.set(n.id, { x: cx, y: cy });
      const ng = el("g", { class: "node", "data-id": n.id, "data-namespace": n.ns, "data-cluster": n.cluster }, nodeLayer);
      el("circle", { cx: cx, cy: cy, r: 14 }, ng);
      el("text", { x: cx - 90, y: cy + 28 }, ng).textContent = n.id + (n.cluster ? " (" + n.cluster + ")" : "");
      if (!visible(n)) ng.classList.add("hidden");
    });
    if (!members.some(visible)) g.classList.add("hidden");
    x += 240;
  }
  document.getElementById("map").setAttribute("width", Math.max(x, 600));
  for (const e of edges.values()) {
    const a = pos.get(e.src), b = pos.get(e.dst);
    if (!a || !b) continue;
    // Offset dropped edges a little so both verdicts between two nodes show.
    const off = e.verdict === "DROPPED" ? 6 : -6;
    const line = el("line", {
      class: "edge " + verdictClass(e.verdict) + (e.key === selected ? " selected" : ""),
      x1: a.x + off, y1: a.y + off, x2: b.x + off, y2: b.y + off,
      "data-key": e.key, "data-src": e.src, "data-dst": e.dst, "data-verdict": e.verdict, "data-count": e.count,
    }, edgeLayer);
    el("title", {}, line).textContent = e.src + " → " + e.dst + ": " + e.count + " " + e.verdict;
    if (!visible(nodes.get(e.src)) || !visible(nodes.get(e.dst))) line.classList.add("hidden");
    line.addEventListener("click", () => select(e.key));
  }
  drawTable();
}

function drawTable() {
  const body = document.querySelector("#flows tbody");
  body.replaceChildren();
  for (const f of [...flows].reverse()) {
    if (selected && f.key !== selected) continue;
    if (!selected && (!visible(nodes.get(f.src.id)) || !visible(nodes.get(f.dst.id)))) continue;
    const tr = document.createElement("tr");
    tr.className = "flow " + f.verdict;
    tr.dataset.src = f.src.id;
    tr.dataset.dst = f.dst.id;
    tr.dataset.verdict = f.verdict;
    const cells = [new Date(f.t).toISOString().slice(11, 23), f.node, f.src.id, f.dst.id + (f.service ? " (" + f.service + ")" : ""),
      f.proto + " " + f.port, f.verdict + (f.reason ? " " + f.reason : ""), f.point];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      td.textContent = c;
      if (i === 5) td.className = "verdict";
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }
}

function select(key) {
  selected = key;
  const e = edges.get(key);
  document.getElementById("selection").textContent = e ? "of " + e.src + " → " + e.dst + " (" + e.verdict + ")" : "";
  document.getElementById("clear").hidden = !key;
  draw();
}

document.getElementById("clear").addEventListener("click", () => select(null));
document.getElementById("ns-filter").addEventListener("change", draw);
document.getElementById("cluster-filter").addEventListener("change", draw);

function connect() {
  const status = document.getElementById("status");
  const src = new EventSource("api/flows" + location.search);
  src.onopen = () => { status.textContent = "live"; status.className = ""; };
  src.onerror = () => { status.textContent = "disconnected; retrying"; status.className = "warn"; };
  src.onmessage = (m) => {
    const b = JSON.parse(m.data);
    for (const f of b.flows || []) add(f);
    let text = "live, " + flows.length + " flows shown";
    if (b.dropped) text += "; " + b.dropped + " flows not drawn (too many at once)";
    if (b.down && b.down.length) { text += "; unreachable: " + b.down.join(", "); status.className = "warn"; }
    status.textContent = text;
  };
}

setInterval(() => { if (dirty) draw(); }, 250);
connect();
