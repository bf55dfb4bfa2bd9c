// convlens explorer: plain JavaScript, no framework, no network beyond this server.
"use strict";
const $ = (id) => document.getElementById(id);
const LANG = new URLSearchParams(location.search).get("lang") || "";
let M = {};            // UI strings (convlens.i18n)
let CFG = {};
let currentFile = null;
let currentRun = null;
let source = null;     // EventSource of the open run

function q(path, params) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null) u.searchParams.set(k, v);
  if (LANG) u.searchParams.set("lang", LANG);
  return u.toString();
}
async function api(path, params, opts) {
  const r = await fetch(q(path, params), opts);
  let body;
  try { body = await r.json(); } catch (e) { body = { error: `${r.status} ${r.statusText}` }; }
  if (!r.ok || body.error) throw new Error(body.error || `${r.status}`);
  return body;
}
function showError(msg) { const e = $("error"); e.textContent = `${M.ui_bad_upload && msg.startsWith("!") ? M.ui_bad_upload + ": " : ""}${msg.replace(/^!/, "")}`; e.hidden = false; }
function clearError() { $("error").hidden = true; $("error").textContent = ""; }
function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") n.className = v; else if (k.startsWith("on")) n.addEventListener(k.slice(2), v); else n.setAttribute(k, v);
  }
  for (const c of kids) n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return n;
}
const pct = (p) => (100 * p).toFixed(1) + "%";
function fmt(s, fields) { return s.replace(/\{(\w+)(:[^}]*)?\}/g, (_, k, f) => (f && f.includes("f") ? Number(fields[k]).toFixed(parseInt(f.slice(2))) : fields[k])); }

// ---- tabs ------------------------------------------------------------------------------------
function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== "tab-" + name;
  clearError();
  if (name === "runs") loadRuns();
  if (name === "graphs" && $("graph-out").hidden) loadGraph();
  if (name === "layers" && !$("conv-result").textContent) { conv(); table(); }
  history.replaceState(null, "", q(location.pathname, { tab: name }).replace(location.origin, ""));
}

// ---- Image -----------------------------------------------------------------------------------
async function loadModels() {
  const m = await api("/api/models");
  const sel = $("model-select");
  sel.replaceChildren();
  const g1 = el("optgroup", { label: M.ui_pretrained });
  for (const p of m.pretrained) g1.append(el("option", { value: p.key }, p.label));
  sel.append(g1);
  if (m.runs.length) {
    const g2 = el("optgroup", { label: M.ui_run_model });
    for (const r of m.runs) g2.append(el("option", { value: r.key }, r.label));
    sel.append(g2);
  }
  await loadLayers();
}
async function loadLayers() {
  const key = $("model-select").value;
  $("model-status").textContent = M.ui_loading_model;
  const sel = $("layer-select");
  sel.replaceChildren();
  try {
    const info = await api("/api/models/layers", { model: key });
    const gs = el("optgroup", { label: M.ui_stages });
    for (const s of info.stages) gs.append(el("option", { value: s }, s));
    const ga = el("optgroup", { label: M.ui_all_layers });
    for (const s of info.layers) if (!info.stages.includes(s)) ga.append(el("option", { value: s }, s));
    sel.append(gs, ga);
    sel.value = info.default;
    $("model-status").textContent = `${info.name}: ${info.classes} classes, input ${info.input_size.join("x")}`;
  } catch (e) { $("model-status").textContent = ""; showError(e.message); }
}
async function explainFile(file) {
  if (!file) return;
  currentFile = file;
  clearError();
  $("model-status").textContent = M.ui_working;
  const fd = new FormData();
  fd.append("image", file, file.name);
  try {
    const r = await api("/api/explain", { model: $("model-select").value, layer: $("layer-select").value }, { method: "POST", body: fd });
    renderExplanation(r);
    $("model-status").textContent = "";
  } catch (e) {
    $("model-status").textContent = "";
    $("image-result").hidden = true;
    showError("!" + e.message);
  }
}
function renderExplanation(r) {
  $("image-result").hidden = false;
  $("timing").textContent = fmt(M.ui_seconds, { s: r.seconds }) + ` · ${r.model_name || r.model}`;
  const ol = $("top5");
  ol.replaceChildren(...r.top5.map((t) => el("li", {}, `${t.class} `, el("b", {}, pct(t.prob)), el("span", { class: "bar", style: `width:${Math.round(120 * t.prob)}px` }))));
  $("image-note").textContent = r.note || "";
  for (const n of document.querySelectorAll(".cam-part")) n.hidden = !r.cam;
  if (r.cam) {
    $("input-img").src = r.input; $("input-name").textContent = r.image_name;
    $("cam-img").src = r.cam; $("cam-caption").textContent = `${r.cam_class} @ ${r.cam_layer}`;
    $("fm").replaceChildren(...r.feature_maps.map((f) => el("figure", {}, el("img", { src: f.png, alt: f.layer }),
      el("figcaption", {}, `${f.layer} ${f.shape.join("x")}: ${M.feature_maps || "feature maps"} ${f.channels.join(", ")}`))));
    $("filters-img").src = r.filters || ""; $("filters-layer").textContent = r.filters_layer || "";
  }
}

// ---- Runs ------------------------------------------------------------------------------------
async function loadRuns() {
  const r = await api("/api/runs");
  $("runs-root").textContent = fmt(M.ui_runs_in, { path: r.root });
  const t = $("runs-list");
  t.replaceChildren(el("tr", {}, ...["run", "kind", "model", "data", "epochs", "status", "last"].map((h) => el("th", { class: "left" }, h))));
  for (const run of r.runs) {
    const last = Object.entries(run.last || {}).filter(([k]) => /acc/.test(k)).map(([k, v]) => `${k} ${v === null ? "-" : pct(v)}`).join(", ");
    const row = el("tr", { class: "run", "data-run": run.name, onclick: () => openRun(run.name) },
      el("td", { class: "left" }, run.name), el("td", { class: "left" }, run.kind || ""), el("td", { class: "left" }, run.model || ""),
      el("td", { class: "left" }, run.data || ""), el("td", {}, `${run.epochs_done}/${run.epochs ?? "?"}`),
      el("td", { class: "left" }, run.status || ""), el("td", { class: "left" }, last));
    if (run.name === currentRun) row.classList.add("sel");
    t.append(row);
  }
  $("no-runs").hidden = r.runs.length > 0;
  trainState(r.train);
}
function trainState(s) {
  $("train-state").textContent = s && s.name ? `${s.name}: ${s.running ? "running" : "exit " + s.returncode}` : "";
  $("train-btn").disabled = !!(s && s.running);
}
async function openRun(name) {
  currentRun = name;
  clearError();
  for (const tr of document.querySelectorAll("#runs-list tr.run")) tr.classList.toggle("sel", tr.dataset.run === name);
  const d = await api("/api/runs/detail", { run: name });
  $("run-detail").hidden = false;
  $("run-title").textContent = `${d.name} · ${d.kind} · ${d.status}`;
  refreshCurves();
  $("config").textContent = JSON.stringify({ config: d.record.config, summary: d.summary }, null, 1);
  $("run-links").replaceChildren(...(d.report ? [el("a", { href: "/files/" + d.report, target: "_blank" }, "report.html")] : []));
  $("confusion").replaceChildren(); $("cell-images").replaceChildren(); $("wrong").replaceChildren();
  $("pred-status").textContent = M.ui_working;
  listen(name, d.status);
  loadPredictions(name);
}
function refreshCurves() {
  const img = $("curves-img");
  img.onerror = () => { img.hidden = true; };
  img.onload = () => { img.hidden = false; };
  img.src = q("/api/runs/curves.png", { run: currentRun, t: Date.now() });
}
async function loadPredictions(name) {
  const p = await api("/api/runs/predictions", { run: name });
  if (name !== currentRun) return;
  if (!p.available) { $("pred-status").textContent = fmt(M.ui_no_predictions, { reason: p.reason }); return; }
  $("pred-status").textContent = `${p.checkpoint}: test accuracy ${pct(p.accuracy)} on ${p.n} images (evaluated now, float32)`;
  const t = $("confusion");
  t.replaceChildren(el("tr", {}, el("th", {}, "true \\ pred"), ...p.classes.map((c) => el("th", {}, c))));
  p.confusion.forEach((row, i) => t.append(el("tr", {}, el("th", { class: "left" }, p.classes[i]),
    ...row.map((n, j) => el("td", { class: i === j ? "diag" : "", "data-true": i, "data-pred": j, title: `${p.classes[i]} → ${p.classes[j]}`,
      style: `background: rgba(46,134,193,${(n / Math.max(1, row.reduce((a, b) => a + b, 0))).toFixed(2)})`, onclick: () => showCell(i, j) }, n)))));
  $("wrong").replaceChildren(...p.wrong.map((w) => el("figure", {}, el("img", { src: w.png, alt: `test ${w.index}` }),
    el("figcaption", {}, `#${w.index}: ${w.pred} ${pct(w.prob)} (true ${w.true})`))));
}
async function showCell(i, j) {
  const c = await api("/api/runs/cell", { run: currentRun, true: i, pred: j });
  $("cell-images").replaceChildren(el("p", { class: "muted" }, `${c.true} → ${c.pred}: ${c.count}`),
    ...c.images.map((im) => el("figure", {}, el("img", { src: im.png, alt: `test ${im.index}` }), el("figcaption", {}, `#${im.index} ${pct(im.prob)}`))));
}
function listen(name, status) {
  if (source) { source.close(); source = null; }
  $("live").hidden = true;
  if (status === "finished") return;
  source = new EventSource(q("/api/runs/events", { run: name }));
  source.addEventListener("progress", (m) => {
    const e = JSON.parse(m.data);
    $("live").hidden = false;
    const txt = Object.entries(e.metrics || {}).map(([k, v]) => `${k} ${Number(v).toFixed(4)}`).join(", ");
    if (e.kind === "step" && e.total) { $("live-bar").max = e.total; $("live-bar").value = e.step; }
    $("live-text").textContent = `${e.kind}${e.epoch !== null ? " epoch " + (e.epoch + 1) : ""} ${txt} ${e.message || ""}`;
    if (e.kind === "epoch_end" || e.kind === "run_end") { refreshCurves(); loadRuns(); }
  });
  source.addEventListener("end", () => { source.close(); source = null; loadRuns(); if (currentRun === name) loadPredictions(name); });
}
async function startTraining() {
  clearError();
  try { trainState(await api("/api/train", { recipe: $("recipe-select").value }, { method: "POST" })); }
  catch (e) { showError(e.message); }
  setTimeout(loadRuns, 4000);
}

// ---- Layers ----------------------------------------------------------------------------------
async function conv() {
  try {
    const r = await api("/api/layers/conv", { w: $("cw").value, f: $("cf").value, s: $("cs").value, p: $("cp").value });
    $("conv-result").textContent = r.arithmetic;
    $("conv-img").hidden = !r.picture; if (r.picture) $("conv-img").src = r.picture;
    clearError();
  } catch (e) { $("conv-result").textContent = ""; $("conv-img").hidden = true; showError(e.message); }
}
async function table() {
  const t = $("layer-table");
  try {
    const r = await api("/api/layers/table", { model: $("table-model").value.trim(), input: $("table-input").value.trim() || null });
    const cols = ["index", "name", "type", "input_shape", "output_shape", "params", "macs", "flops", "receptive_field"];
    t.replaceChildren(el("tr", {}, ...cols.map((c) => el("th", { class: "left" }, c))));
    for (const row of r.rows) t.append(el("tr", {}, ...cols.map((c) => el("td", { class: /name|type/.test(c) ? "left" : "" },
      Array.isArray(row[c]) ? row[c].join("x") : (typeof row[c] === "number" ? row[c].toLocaleString() : (row[c] ?? ""))))));
    $("table-totals").textContent = `${r.model}, input ${r.input_shape.join("x")}: ` +
      Object.entries(r.totals).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${v.toLocaleString()}`).join(", ");
    clearError();
  } catch (e) { t.replaceChildren(); $("table-totals").textContent = ""; showError(e.message); }
}

// ---- Graphs ----------------------------------------------------------------------------------
async function loadGraph() {
  $("graph-status").textContent = M.ui_working;
  try {
    const g = await api("/api/graphs", { name: $("graph-select").value });
    $("graph-out").hidden = false;
    $("graph-summary").textContent = `${g.name}: ${g.nodes} nodes, ${g.edges} edges, ${g.features} features, classes ${g.classes.join(", ")}`;
    $("graph-matrices").src = g.matrices; $("graph-gcn").src = g.gcn;
    const s = g.shapes;
    $("graph-shapes").textContent = `Â (${s.A_hat.join("×")}) · X (${s.X.join("×")}) · W (${s.W.join("×")}) → H' (${s.H.join("×")})`;
    $("graph-text").textContent = g.text;
    $("graph-status").textContent = "";
  } catch (e) { $("graph-status").textContent = ""; showError(e.message); }
}

// ---- start -----------------------------------------------------------------------------------
async function main() {
  CFG = await api("/api/config");
  M = await api("/api/messages");
  document.documentElement.lang = CFG.lang;
  for (const n of document.querySelectorAll("[data-i18n]")) if (M[n.dataset.i18n]) n.textContent = M[n.dataset.i18n];
  document.title = M.ui_title;
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("recipe-select").replaceChildren(...CFG.recipes.map((r) => el("option", { value: r.name, title: r.description }, `${r.name}: ${r.description}`)));
  $("table-models").replaceChildren(...CFG.models.map((m) => el("option", { value: m })));
  $("train-btn").addEventListener("click", startTraining);
  $("model-select").addEventListener("change", async () => { await loadLayers(); if (currentFile) explainFile(currentFile); });
  $("layer-select").addEventListener("change", () => { if (currentFile) explainFile(currentFile); });
  $("file-input").addEventListener("change", (e) => explainFile(e.target.files[0]));
  const dz = $("drop-zone");
  dz.addEventListener("dragover", (e) => { e.preventDefault(); dz.classList.add("over"); });
  dz.addEventListener("dragleave", () => dz.classList.remove("over"));
  dz.addEventListener("drop", (e) => { e.preventDefault(); dz.classList.remove("over"); explainFile(e.dataTransfer.files[0]); });
  $("conv-btn").addEventListener("click", conv);
  $("table-btn").addEventListener("click", table);
  $("graph-btn").addEventListener("click", loadGraph);
  for (const id of ["cw", "cf", "cs", "cp"]) $(id).addEventListener("change", conv);
  const tab = new URLSearchParams(location.search).get("tab");
  if (tab && $("tab-" + tab)) showTab(tab);
  await loadModels();
}
main().catch((e) => showError(e.message));
