// EmoRoute dashboards. Every value that came from a caller is inserted with
// textContent (via el()), never as HTML.
"use strict";

const STYLE = {
  angry: { colour: "#c62828", icon: "😠" }, happy: { colour: "#2e7d32", icon: "🙂" },
  neutral: { colour: "#607d8b", icon: "😐" }, sad: { colour: "#1565c0", icon: "😢" },
};
const LABELS = ["angry", "happy", "neutral", "sad"];
const $ = (sel) => document.querySelector(sel);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value;
    else if (key === "href") node.setAttribute("href", value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}

function setText(sel, value) { const node = $(sel); if (node) node.textContent = value ?? "–"; }
function fmt(x, digits = 2) { return x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(digits); }
function secs(x) { return x === null || x === undefined ? "–" : `${Math.round(x)} s`; }

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function listen(url, kinds, onEvent) {
  const source = new EventSource(url, { withCredentials: true });
  source.onopen = () => $("#live")?.classList.add("on");
  source.onerror = () => $("#live")?.classList.remove("on");
  for (const kind of kinds) source.addEventListener(kind, (ev) => onEvent(kind, JSON.parse(ev.data)));
  return source;
}

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

function markUpdated() {
  window.emoroute.updates += 1;
  window.emoroute.lastUpdate = Date.now();
  setText("#updated", new Date().toLocaleTimeString());
}

// ---- agent view -----------------------------------------------------------
function renderAgent(state) {
  const cues = state.cues;
  const modes = { connected: "Connected caller", next: "Next caller in your queue", none: "No caller waiting" };
  setText("#mode", state.registered === false ? `Agent ${state.agent} is not registered` : modes[state.mode]);
  const style = STYLE[cues?.emotion] || { colour: "#9e9e9e", icon: "…" };
  $("#card").style.borderLeftColor = style.colour;
  $("#label").style.color = style.colour;
  setText("#icon", style.icon);
  setText("#label", cues ? cues.emotion : "no caller");
  // how sure the model is of what the tone suggests (the call may have been routed by words, or abstained)
  setText("#confidence", cues?.confidence != null ? `${Math.round(cues.confidence * 100)} % sure` : "");
  // a noisy line: the tone is set aside and the cue goes by what was said
  setText("#line", cues?.line ? ` · ${cues.line}` : "");
  setText("#language", cues?.language && cues.language !== "en" ? ` · speaks ${cues.language}` : "");
  setText("#trend", cues ? `anger ${cues.trend}` : "–");
  setText("#trend-delta", cues ? `(${cues.trend_delta >= 0 ? "+" : ""}${fmt(cues.trend_delta)} over 30 s)` : "");
  setText("#arousal", cues ? fmt(cues.arousal) : "–");
  setText("#valence", cues ? fmt(cues.valence) : "–");
  setText("#queue", cues?.queue || "–");
  setText("#priority", cues?.priority || "–");
  setText("#reason", cues?.reason || "–");
  const chips = $("#intents");
  chips.replaceChildren(...(cues?.intents.length ? cues.intents.map((i) => el("span", {}, i)) : [el("em", { class: "muted" }, "nothing routed yet")]));
  setText("#suggestion", cues?.suggestion || "–");
  $("#snippets").replaceChildren(...(cues?.snippets || []).map((s) => el("li", {},
    s.original ? `${fmt(s.t, 1)} s: “${s.text}” (said: “${s.original}”)` : `${fmt(s.t, 1)} s: “${s.text}”`)));
  setText("#hearing", cues?.hearing ? `“${cues.hearing}…”` : "");
  $("#card").dataset.emotion = cues?.emotion || "";
  $("#card").dataset.call = cues?.call_sid || "";
  markUpdated();
}

function initAgent() {
  const agent = document.body.dataset.agent;
  getJSON(`/dashboard/api/agent/${encodeURIComponent(agent)}`).then(renderAgent);
  listen(`/dashboard/events?scope=agent&id=${encodeURIComponent(agent)}`, ["agent"], (_, state) => renderAgent(state));
}

// ---- supervisor wallboard --------------------------------------------------
function renderWallboard(board) {
  $("#queues").replaceChildren(...Object.entries(board.queues).map(([name, q]) =>
    el("div", { class: "tile", "data-queue": name }, el("div", { class: "muted" }, name),
      el("div", { class: "big" }, String(q.depth)), el("div", {}, `oldest wait ${secs(q.oldest_wait_s)}`))));
  $("#alerts").replaceChildren(...(board.alerts.length ? board.alerts.map((a) =>
    el("li", {}, el("a", { href: `/dashboard/calls/${encodeURIComponent(a.call_sid)}` }, a.call_sid), ` ${a.alert}`))
    : [el("li", { class: "muted" }, "none")]));
  const rows = board.calls.map((c) => {
    const style = STYLE[c.emotion] || { colour: "#9e9e9e", icon: "…" };
    const row = el("tr", { class: `row${c.alerts.length ? " alert" : ""}`, "data-call": c.call_sid },
      el("td", {}, c.call_sid.slice(0, 12) + "…"), el("td", {}, c.caller), el("td", {}, c.status), el("td", { class: "phase" }, c.phase || "–"),
      el("td", { class: "emo", style: `color:${style.colour}` }, `${style.icon} ${c.emotion || "–"}`),
      el("td", {}, c.queue || "–"), el("td", {}, c.priority ?? "–"), el("td", {}, secs(c.wait_s)),
      el("td", {}, c.anger_s ? secs(c.anger_s) : "–"), el("td", {}, c.reason || "–"));
    row.addEventListener("click", () => { window.location.href = `/dashboard/calls/${encodeURIComponent(c.call_sid)}`; });
    return row;
  });
  $("#calls tbody").replaceChildren(...rows);
  markUpdated();
}

function initSupervisor() {
  const refresh = () => getJSON("/dashboard/api/wallboard").then(renderWallboard).catch(console.error);
  const soon = debounce(refresh, 150);
  refresh();
  listen("/dashboard/events?scope=all", ["started", "reading", "transcript", "partial", "decision", "keypad", "reprioritise", "reroute", "pickup", "phase", "opted_out", "ended"], soon);
  setInterval(refresh, 3000);
}

// ---- call timeline ---------------------------------------------------------
// Plotly renders a little HTML in chart text (<a href>, <b>, <br>): whatever a call carries (agent
// names, transcripts, intents, queue and phase names) is shown as plain text, never as markup
const plain = (value) => String(value ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function drawTimeline(data) {
  const summary = data.call;
  const fields = ["caller", "status", "phase", "queue", "priority", "reason", "language", "language_checked", "language_check", "keypad", "agent", "csat",
    "opted_out", "decision_latency_ms", "model"];
  $("#summary").replaceChildren(...fields.flatMap((f) => [el("dt", {}, f), el("dd", {}, summary[f] ?? "–")]));
  const readings = data.timeline.filter((e) => e.type === "reading");
  const t = readings.map((r) => Number(r.t));
  const traces = LABELS.map((label) => ({
    x: t, y: readings.map((r) => r.probs[label] ?? 0), name: `P(${label})`, type: "scatter",
    stackgroup: "probs", mode: "lines+markers", marker: { size: 5 }, line: { color: STYLE[label].colour, width: 0.5 },
  }));
  traces.push({ x: t, y: readings.map((r) => Number(r.arousal)), name: "arousal", yaxis: "y2", mode: "lines+markers", line: { color: "#ff9800" } });
  traces.push({ x: t, y: readings.map((r) => Number(r.valence)), name: "valence", yaxis: "y2", mode: "lines+markers", line: { color: "#6a1b9a", dash: "dot" } });
  const said = data.timeline.filter((e) => e.transcript);
  traces.push({ x: said.map((e) => Number(e.t)), y: said.map(() => 1.04), name: "said", mode: "markers", marker: { symbol: "diamond", size: 11, color: "#263238" },
    hovertext: said.map((e) => plain(e.transcript + (e.intents ? `  [${e.intents}]` : "") + (e.original ? `  (said: ${e.original})` : ""))),
    hoverinfo: "text+x" });
  // the line under each reading: those whose tone was set aside (noisy line) marked along the bottom
  const lineOf = (r) => { try { return typeof r.line === "string" ? JSON.parse(r.line) : (r.line || {}); } catch { return {}; } };
  const noisy = readings.filter((r) => String(r.noisy) === "1" || r.noisy === true);
  traces.push({ x: noisy.map((r) => Number(r.t)), y: noisy.map(() => 0.02), name: "noisy line (tone set aside)", mode: "markers",
    marker: { symbol: "x", size: 9, color: "#616161" },
    hovertext: noisy.map((r) => { const q = lineOf(r); return plain(`line ${q.snr_db ?? "?"} dB${q.background ? `, ${q.background}` : ""}${q.dropped_ms ? `, ${q.dropped_ms} ms lost` : ""}`); }),
    hoverinfo: "text+x" });
  const marks = data.timeline.filter((e) => ["decision", "keypad", "reprioritise", "reroute", "pickup", "opted_out"].includes(e.type));
  let lastT = t.length ? t[t.length - 1] : 0;
  const shapes = marks.map((m) => {
    const x = m.t !== undefined ? Number(m.t) : lastT;
    return { type: "line", x0: x, x1: x, yref: "paper", y0: 0, y1: 1, line: { color: m.type === "pickup" ? "#00897b" : "#212121", dash: "dash", width: 1.5 } };
  });
  const annotations = marks.map((m) => ({ x: m.t !== undefined ? Number(m.t) : lastT, yref: "paper", y: 1.08, showarrow: false,
    text: plain(m.type === "pickup" ? `agent ${m.agent}` : m.type === "opted_out" ? "opted out" : `${m.type}: ${m.queue} P${m.priority}`),
    font: { size: 11 } }));
  // call phases as bands: greeting from 0, then each phase entry until the next (or the last thing heard)
  const ends = data.timeline.map((e) => Number(e.t)).filter((x) => !Number.isNaN(x));
  const lastT2 = Math.max(lastT, ...ends, 1);
  const starts = [{ t: 0, phase: "greeting" }, ...data.timeline.filter((e) => e.type === "phase").map((e) => ({ t: Number(e.t), phase: e.phase }))];
  starts.forEach((s, i) => {
    const x1 = i + 1 < starts.length ? starts[i + 1].t : lastT2;
    if (x1 <= s.t) return;
    shapes.push({ type: "rect", layer: "below", x0: s.t, x1, yref: "paper", y0: 0, y1: 1, line: { width: 0 },
      fillcolor: PHASE_COLOURS[s.phase] || "#eeeeee", opacity: 0.3 });
    annotations.push({ x: (s.t + x1) / 2, yref: "paper", y: 0.995, yanchor: "top", showarrow: false, text: plain(s.phase),
      bgcolor: "rgba(255,255,255,0.7)", font: { size: 11, color: "#37474f" } });
  });
  $("#chart").dataset.phases = starts.map((s) => s.phase).join(",");
  const layout = { margin: { t: 40, r: 60, l: 50, b: 40 }, xaxis: { title: { text: "seconds into the call" } },
    yaxis: { title: { text: "class probability" }, range: [0, 1.1] },
    yaxis2: { title: { text: "arousal / valence" }, overlaying: "y", side: "right", range: [-1, 1.2],
      tickvals: [-1, -0.5, 0, 0.5, 1], showgrid: false },
    shapes, annotations, legend: { orientation: "h", y: -0.2 } };
  Plotly.react("chart", traces, layout, { displaylogo: false, responsive: true });
  markUpdated();
}

function initCall() {
  const sid = document.body.dataset.call;
  const refresh = () => getJSON(`/dashboard/api/calls/${encodeURIComponent(sid)}/timeline`).then(drawTimeline).catch((err) => setText("#summary", String(err)));
  refresh();
  listen(`/dashboard/events?scope=call&id=${encodeURIComponent(sid)}`, ["reading", "transcript", "decision", "keypad", "reprioritise", "reroute", "pickup", "phase", "key", "survey", "opted_out", "ended"], debounce(refresh, 100));
}

// ---- analytics --------------------------------------------------------------
const SMALL_CHART = { displayModeBar: false, responsive: true };

function isoInput(date) { return date.toISOString().slice(0, 16); }

function stacked(target, byKey, title) {
  const keys = Object.keys(byKey);
  const traces = LABELS.map((label) => ({ x: keys.map(plain), y: keys.map((k) => byKey[k][label] || 0), name: label, type: "bar", marker: { color: STYLE[label].colour } }));
  Plotly.react(target, traces, { barmode: "stack", title: { text: title }, margin: { t: 40, b: 60 } }, SMALL_CHART);
}

async function loadAnalytics() {
  const qs = `start=${encodeURIComponent($("#start").value)}&end=${encodeURIComponent($("#end").value)}`;
  $("#csv").setAttribute("href", `/dashboard/api/analytics.csv?${qs}`);
  const a = await getJSON(`/dashboard/api/analytics?${qs}`);
  const tile = (label, value) => el("div", { class: "tile" }, el("div", { class: "muted" }, label), el("div", { class: "big" }, value));
  const synthetic = $("#synthetic");
  synthetic.hidden = !a.synthetic_calls;
  synthetic.textContent = a.synthetic_calls ? `Synthetic data: ${a.synthetic_calls} of these ${a.calls} calls are a made-up demo week (emoroute demo --synthetic-week), not measurements.` : "";
  $("#kpis").replaceChildren(tile("calls", String(a.calls)), tile("escalated", `${Math.round(a.share_escalated * 100)} %`),
    tile("average priority", fmt(a.average_priority, 1)), tile("average wait", secs(a.average_wait_s)),
    tile("improved / worsened", `${a.emotion_evolution.improved} / ${a.emotion_evolution.worsened}`));
  const queues = Object.keys(a.calls_per_queue);
  Plotly.react("per-queue", [{ x: queues, y: queues.map((q) => a.calls_per_queue[q]), type: "bar", marker: { color: "#455a64" } }],
    { title: { text: "Calls per queue" }, margin: { t: 40, b: 60 } }, SMALL_CHART);
  const langs = Object.keys(a.calls_per_language || {});
  Plotly.react("per-language", [{ x: langs.map(plain), y: langs.map((l) => a.calls_per_language[l]), type: "bar", marker: { color: "#00796b" } }],
    { title: { text: "Calls per caller language" }, margin: { t: 40, b: 60 } }, SMALL_CHART);
  const checked = Object.keys(a.language_checks || {});
  const answers = [["kept", "no key: kept", "#00796b"], ["english", "keyed English", "#f9a825"], ["switched", "keyed another", "#c62828"]];
  Plotly.react("language-checks", answers.map(([k, name, colour]) => ({ x: checked.map(plain), y: checked.map((l) => a.language_checks[l][k]), name, type: "bar", marker: { color: colour } })),
    { barmode: "stack", title: { text: "Language check, per language the caller was taken for" }, margin: { t: 40, b: 60 } }, SMALL_CHART);
  stacked("emotion-queue", a.emotion_by_queue, "First emotion heard, per queue");
  stacked("emotion-hour", a.emotion_by_hour, "First emotion heard, per hour (UTC)");
  drawInsights(a, tile);
  const ev = a.emotion_evolution;
  Plotly.react("evolution", [{ labels: Object.keys(ev), values: Object.values(ev), type: "pie", hole: 0.45,
    marker: { colors: ["#2e7d32", "#90a4ae", "#c62828"] } }], { title: { text: "Valence, start to end of call" }, margin: { t: 40 } }, SMALL_CHART);
  markUpdated();
}

const PHASE_COLOURS = { greeting: "#90caf9", identification: "#ce93d8", queue: "#ffcc80", agent: "#a5d6a7", survey: "#b0bec5" };
const pct = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)} %`);

function drawInsights(a, tile) {
  const cs = a.csat, rep = a.repeat_callers;
  $("#kpis").append(tile("opted out", `${a.opt_outs.calls} (${pct(a.opt_outs.share)})`),
    tile(`repeat callers (${rep.days} d)`, `${rep.repeat_calls} (${pct(rep.share)})`),
    tile("escalation", pct(a.escalation.share_any)),
    tile("CSAT", cs.answered ? `${fmt(cs.mean, 1)} (${cs.answered})` : "–"));
  const hurts = a.phases.hurts_most;
  setText("#hurts", hurts ? `Valence worsens most often from ${hurts.from} to ${hurts.to}: ${pct(hurts.share)} of ${hurts.calls} calls.`
    : "Not enough calls with two phases to name the phase that hurts most.");
  const phases = a.phases.order.filter((p) => a.phases.all[p]);
  Plotly.react("phase-means", [
    { x: phases, y: phases.map((p) => a.phases.all[p].anger), name: "mean P(angry)", type: "bar", marker: { color: STYLE.angry.colour } },
    { x: phases, y: phases.map((p) => a.phases.all[p].valence), name: "mean valence", type: "bar", marker: { color: "#6a1b9a" } },
  ], { title: { text: "Anger and valence per call phase" }, barmode: "group", margin: { t: 40, b: 60 } }, SMALL_CHART);
  const steps = Object.keys(a.phases.worsened);
  Plotly.react("phase-worsened", [{ x: steps.map((s) => s.replace(">", " → ")), y: steps.map((s) => a.phases.worsened[s].share),
    type: "bar", marker: { color: "#c62828" }, text: steps.map((s) => `${a.phases.worsened[s].worsened}/${a.phases.worsened[s].calls}`) }],
    { title: { text: "Share of calls whose valence worsened" }, yaxis: { tickformat: ".0%" }, margin: { t: 40, b: 80 } }, SMALL_CHART);
  const pq = a.phases.per_queue, pqQueues = Object.keys(pq);
  Plotly.react("phase-queue", [{ type: "heatmap", x: phases, y: pqQueues, zmin: -1, zmax: 1, colorscale: "RdBu", reversescale: true,
    z: pqQueues.map((q) => phases.map((p) => (pq[q][p] ? pq[q][p].valence : null))),
    text: pqQueues.map((q) => phases.map((p) => (pq[q][p] ? `${pq[q][p].calls} calls, P(angry) ${fmt(pq[q][p].anger)}` : ""))),
    hoverinfo: "x+y+z+text", colorbar: { title: { text: "valence" } } }],
    { title: { text: "Mean valence per phase and queue" }, margin: { t: 40, b: 60, l: 80 } }, SMALL_CHART);
  const topics = Object.keys(a.topics.totals);
  const days = Object.keys(a.topics.by_day);
  Plotly.react("topics-day", topics.map((t) => ({ x: days, y: days.map((d) => a.topics.by_day[d][t] || 0), name: t, type: "bar" })),
    { title: { text: "Topics per day" }, barmode: "stack", xaxis: { type: "category" }, margin: { t: 40, b: 60 } }, SMALL_CHART);
  Plotly.react("topic-emotion", LABELS.map((label) => ({ x: topics, y: topics.map((t) => (a.topics.emotion[t] || {})[label] || 0),
    name: label, type: "bar", marker: { color: STYLE[label].colour } })),
    { title: { text: "First emotion heard, per topic" }, barmode: "stack", margin: { t: 40, b: 80 } }, SMALL_CHART);
  const queues = Object.keys(a.topics.by_queue);
  Plotly.react("topic-queue", topics.map((t) => ({ x: queues, y: queues.map((q) => a.topics.by_queue[q][t] || 0), name: t, type: "bar" })),
    { title: { text: "Topics per queue" }, barmode: "stack", margin: { t: 40, b: 60 } }, SMALL_CHART);
  const esc = a.escalation.by_day, edays = Object.keys(esc);
  const kinds = { anger_rose: "anger rose while waiting", rerouted: "re-routed", asked_manager: "asked for a manager" };
  Plotly.react("escalation", Object.entries(kinds).map(([k, name]) => ({ x: edays, y: edays.map((d) => esc[d][k] / Math.max(1, esc[d].calls)),
    name, type: "scatter", mode: "lines+markers" })), { title: { text: "Escalation share per day" }, xaxis: { type: "category" },
    yaxis: { tickformat: ".0%", range: [0, 1] }, margin: { t: 40, b: 60 } }, SMALL_CHART);
  const jitter = (i) => ((i * 7919) % 100) / 500 - 0.1;
  Plotly.react("csat-scatter", [{ x: cs.points.map((p) => p.valence_change), y: cs.points.map((p, i) => p.csat + jitter(i)), mode: "markers", type: "scatter",
    marker: { color: cs.points.map((p) => p.peak_anger ?? 0), colorscale: [[0, "#607d8b"], [1, "#c62828"]], cmin: 0, cmax: 1, size: 8,
      colorbar: { title: { text: "peak P(angry)" } } }, text: cs.points.map((p) => p.call_sid), hoverinfo: "text+x+y" }],
    { title: { text: "CSAT against valence change (start to end)" }, xaxis: { title: { text: "valence change" } },
      yaxis: { title: { text: "score" }, range: [0.5, 5.5] }, margin: { t: 40, b: 60 } }, SMALL_CHART);
  const corr = Object.entries(cs.correlation).filter(([, v]) => v.r !== null);
  Plotly.react("csat-correlation", [{ x: corr.map(([k]) => k.replace(/_/g, " ")), y: corr.map(([, v]) => v.r), type: "bar",
    marker: { color: corr.map(([, v]) => (v.r >= 0 ? "#2e7d32" : "#c62828")) }, text: corr.map(([, v]) => `n=${v.calls}`) }],
    { title: { text: "Correlation of CSAT with the trajectory (Pearson r)" }, yaxis: { range: [-1, 1] }, margin: { t: 40, b: 80 },
      annotations: corr.length ? [] : [{ text: "needs at least 3 scored calls with varied answers", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }] },
    SMALL_CHART);
  $("#disagreements tbody").replaceChildren(...(cs.disagreements.length ? cs.disagreements.map((d) => el("tr", {},
    el("td", {}, el("a", { href: `/dashboard/calls/${encodeURIComponent(d.call_sid)}` }, d.call_sid.slice(0, 14) + "…")),
    el("td", {}, d.csat), el("td", {}, fmt(d.valence_change)), el("td", {}, fmt(d.peak_anger)), el("td", {}, d.why)))
    : [el("tr", {}, el("td", { class: "muted", colspan: "5" }, "none"))]));
  const agents = Object.entries(a.agents);
  $("#agents tbody").replaceChildren(...(agents.length ? agents.map(([id, g]) => el("tr", { "data-agent": id },
    el("td", {}, id), el("td", {}, g.calls), el("td", {}, fmt(g.anger_with_agent)), el("td", {}, fmt(g.valence_with_agent)),
    el("td", {}, g.compared ? `${g.improved} / ${g.worsened} of ${g.compared} (${pct(g.share_improved)} improved)` : "–"),
    el("td", {}, g.csat_answered ? `${fmt(g.csat_mean, 1)} (${g.csat_answered})` : "–")))
    : [el("tr", {}, el("td", { class: "muted", colspan: "6" }, "no call reached an agent in this period"))]));
}

function initAnalytics() {
  const now = new Date();
  $("#end").value = isoInput(new Date(now.getTime() + 60000));
  const days = Number(new URLSearchParams(location.search).get("days")) || 1;  // ?days=7: the last week
  $("#start").value = isoInput(new Date(now.getTime() - days * 86400000));
  $("#range").addEventListener("submit", (ev) => { ev.preventDefault(); loadAnalytics(); });
  loadAnalytics();
}

window.emoroute = { updates: 0, lastUpdate: 0 };
const PAGES = { agent: initAgent, supervisor: initSupervisor, call: initCall, analytics: initAnalytics };
PAGES[document.body.dataset.page]?.();
