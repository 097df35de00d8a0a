/* Shrinkage explorer: asks /api/simulate for a simulated data set and its REML fit, draws the
 * cluster estimates of the chosen pooling view with Chart.js, and fills the legend, the MSE and
 * cluster tables.  The page's state (settings, view, order) is kept in the address bar. */
"use strict";

(function () {
  const PARAMS = ["J", "nbar", "sigma_u", "sigma_e", "seed"];
  const VIEWS = ["complete", "no", "partial"];
  const COLORS = { complete: "#7c3aed", no: "#2563eb", partial: "#e8590c", truth: "#1f2933", grand: "#64707d" };
  const STYLE = {
    nopoolFill: "rgba(37, 99, 235, 0.08)", nopoolLine: "rgba(37, 99, 235, 0.55)",
    path: "rgba(100, 112, 125, 0.75)", muhat: "rgba(232, 89, 12, 0.7)",
    grandDash: [6, 5], muhatDash: [2, 3],
  };
  const TITLES = { complete: "Complete pooling estimates", no: "No pooling estimates", partial: "Partial pooling estimates" };
  const CAPTIONS = {
    complete: "One grand mean for every cluster: clusters ignored.",
    no: "Each cluster's own mean ȳⱼ: nothing shared between clusters.",
    partial: "REML estimates (lme4's coef()): each cluster's mean ȳⱼ pulled toward μ̂ by 1 − αⱼ.",
  };
  const SIZE_NOTE = " Small clusters, on the left, move most.";
  const DEBOUNCE_MS = 120;

  const state = { view: "partial", sortBySize: true, showTruth: true, data: null, clusters: [], renders: 0 };
  let chart = null;
  let pending = null;   // AbortController of the request in flight
  let timer = null;

  const $ = (id) => document.getElementById(id);
  const fmt = (x, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

  // ------------------------------------------------------------------ settings <-> controls <-> address
  function readParams() {
    const out = {};
    for (const name of PARAMS) out[name] = $(`${name}-input`).value.trim();
    return out;
  }

  function writeParam(name, value) {
    $(`${name}-input`).value = value;
    const slider = $(`${name}-slider`);
    if (slider) slider.value = value;
  }

  function bindControls() {
    for (const name of PARAMS) {
      const slider = $(`${name}-slider`);
      const input = $(`${name}-input`);
      if (slider) {
        slider.addEventListener("input", () => { input.value = slider.value; schedule(); });
      }
      input.addEventListener("change", () => { if (slider) slider.value = input.value; schedule(0); });
    }
    $("new-data").addEventListener("click", () => {
      writeParam("seed", Math.floor(Math.random() * 1e6));
      schedule(0);
    });
    for (const button of document.querySelectorAll("#view-switch button")) {
      button.addEventListener("click", () => { setView(button.dataset.view); updateUrl(); render(); });
    }
    $("sort-by-size").addEventListener("change", (e) => { state.sortBySize = e.target.checked; updateUrl(); render(); });
    $("show-truth").addEventListener("change", (e) => { state.showTruth = e.target.checked; render(); });
    for (const link of document.querySelectorAll("[data-preset]")) {
      link.addEventListener("click", () => {
        for (const [name, value] of new URLSearchParams(link.dataset.preset)) writeParam(name, value);
        schedule(0);
      });
    }
  }

  function setView(view) {
    state.view = view;
    for (const button of document.querySelectorAll("#view-switch button")) {
      button.setAttribute("aria-checked", String(button.dataset.view === view));
    }
  }

  function restoreFromUrl() {
    const query = new URLSearchParams(window.location.search);
    for (const name of PARAMS) if (query.has(name)) writeParam(name, query.get(name));
    if (VIEWS.includes(query.get("view"))) setView(query.get("view"));
    if (["size", "cluster"].includes(query.get("order"))) state.sortBySize = query.get("order") === "size";
    $("sort-by-size").checked = state.sortBySize;
  }

  // the address describes what is on screen: the settings of the last answer, the view and the order
  function updateUrl() {
    const shown = state.data ? state.data.params : readParams();
    const query = new URLSearchParams(PARAMS.map((name) => [name, String(shown[name])]));
    query.set("view", state.view);
    query.set("order", state.sortBySize ? "size" : "cluster");
    window.history.replaceState(null, "", `?${query}`);
  }

  // ------------------------------------------------------------------ fetching
  function schedule(delay = DEBOUNCE_MS) {
    clearTimeout(timer);
    timer = setTimeout(load, delay);
  }

  function setStatus(kind, text) {
    document.body.dataset.state = kind;
    $("status").textContent = text;
  }

  async function load() {
    if (pending) pending.abort();
    const controller = new AbortController();
    pending = controller;
    const query = new URLSearchParams(readParams());
    setStatus("loading", "fitting…");
    try {
      const response = await fetch(`/api/simulate?${query}`, { signal: controller.signal });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
      state.data = body;
      markStale(null);
      updateUrl();
      render();
      const fit = body.fit.singular ? "singular fit" : "REML fit";
      setStatus("ready", `${body.clusters.length} clusters · ${body.fit.nobs} observations · ${fit}`);
    } catch (error) {
      if (error.name === "AbortError") return;
      setStatus("error", "not updated: error");
      markStale(error.message);
    } finally {
      if (pending === controller) pending = null;
    }
  }

  // After a failed request the last good answer stays on screen, dimmed, under a banner that says
  // why it was not replaced and which settings it belongs to; null removes the banner.
  function markStale(message) {
    const banner = $("stale");
    if (message === null) {
      banner.hidden = true;
      delete document.body.dataset.stale;
      return;
    }
    $("stale-error").textContent = /[.!?]$/.test(message) ? message : `${message}.`;
    const p = state.data && state.data.params;
    $("stale-shown").textContent = p
      ? `The chart and tables still show the last fit: J = ${p.J}, n̄ = ${p.nbar}, σᵤ = ${p.sigma_u}, σₑ = ${p.sigma_e}, seed ${p.seed}.`
      : "Nothing could be fitted yet.";
    banner.hidden = false;
    document.body.dataset.stale = "true";
  }

  // ------------------------------------------------------------------ rendering
  function orderedClusters(data) {
    const clusters = data.clusters.map((c, i) => ({ ...c, index: i }));
    if (state.sortBySize) clusters.sort((a, b) => a.n - b.n || a.index - b.index);
    return clusters.map((c, k) => ({ ...c, x: k + 1 }));
  }

  function estimateOf(c, data, view) {
    if (view === "complete") return data.grand_mean;
    return view === "no" ? c.no_pool : c.partial;
  }

  function pointRadius(clusters) {
    const nmax = Math.max(...clusters.map((c) => c.n));
    return clusters.map((c) => 3 + 5 * Math.sqrt(c.n / nmax));
  }

  function yRange(data) {
    const values = [data.grand_mean];
    for (const c of data.clusters) values.push(c.no_pool, c.partial, c.true_mean);
    const lo = Math.min(...values), hi = Math.max(...values);
    const pad = Math.max((hi - lo) * 0.06, 0.1);
    return { suggestedMin: lo - pad, suggestedMax: hi + pad };
  }

  function datasets(data, clusters) {
    const view = state.view;
    const partial = view === "partial";
    const J = clusters.length;
    const path = [];
    for (const c of clusters) path.push({ x: c.x, y: c.no_pool }, { x: c.x, y: c.partial }, { x: c.x, y: null });
    return [
      { id: "estimates", label: TITLES[view], type: "scatter", order: 1,
        data: clusters.map((c) => ({ x: c.x, y: estimateOf(c, data, view) })),
        backgroundColor: COLORS[view], borderColor: "#ffffff", borderWidth: 1, pointRadius: pointRadius(clusters),
        pointHoverRadius: 8 },
      { id: "nopool", label: "No pooling ȳⱼ (start)", type: "scatter", order: 2, hidden: !partial,
        data: clusters.map((c) => ({ x: c.x, y: c.no_pool })),
        backgroundColor: STYLE.nopoolFill, borderColor: STYLE.nopoolLine, borderWidth: 1.2,
        pointRadius: pointRadius(clusters) },
      { id: "path", label: "Shrinkage ȳⱼ → partial", type: "line", order: 3, hidden: !partial, data: path,
        borderColor: STYLE.path, borderWidth: 1.5, pointRadius: 0, spanGaps: false, fill: false },
      { id: "truth", label: "True cluster mean", type: "scatter", order: 0, hidden: !state.showTruth,
        data: clusters.map((c) => ({ x: c.x, y: c.true_mean })),
        pointStyle: "crossRot", pointRadius: 5, borderColor: COLORS.truth, borderWidth: 1.5, backgroundColor: COLORS.truth },
      { id: "grand", label: "Grand mean (complete pooling)", type: "line", order: 4,
        data: [{ x: 0.5, y: data.grand_mean }, { x: J + 0.5, y: data.grand_mean }],
        borderColor: COLORS.grand, borderDash: STYLE.grandDash, borderWidth: 1.5, pointRadius: 0, fill: false },
      { id: "muhat", label: "μ̂ (REML): where partial pooling shrinks to", type: "line", order: 5, hidden: !partial,
        data: [{ x: 0.5, y: data.mu_hat }, { x: J + 0.5, y: data.mu_hat }],
        borderColor: STYLE.muhat, borderDash: STYLE.muhatDash, borderWidth: 1.5, pointRadius: 0, fill: false },
    ];
  }

  // ----- the legend: HTML, one entry per visible series, each swatch an SVG drawn as the chart draws it
  const SVG = "http://www.w3.org/2000/svg";

  function svgEl(name, attrs) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    return el;
  }

  function swatch(kind) {
    const svg = svgEl("svg", { width: 28, height: 14, viewBox: "0 0 28 14", "aria-hidden": "true", focusable: "false" });
    const hline = (color, dash) => svgEl("line", { x1: 1, y1: 7, x2: 27, y2: 7, stroke: color, "stroke-width": 1.5,
      "stroke-dasharray": dash ? dash.join(" ") : "none" });
    if (kind === "estimates") {
      svg.append(svgEl("circle", { cx: 14, cy: 7, r: 5.5, fill: COLORS[state.view], stroke: "#ffffff", "stroke-width": 1 }));
    } else if (kind === "nopool") {
      svg.append(svgEl("circle", { cx: 14, cy: 7, r: 5.5, fill: STYLE.nopoolFill, stroke: STYLE.nopoolLine, "stroke-width": 1.2 }));
    } else if (kind === "path") {  // vertical, as each cluster's move is drawn on the chart
      svg.append(svgEl("line", { x1: 14, y1: 0, x2: 14, y2: 14, stroke: STYLE.path, "stroke-width": 1.5 }));
    } else if (kind === "truth") {
      svg.append(svgEl("path", { d: "M10.5 3.5 L17.5 10.5 M17.5 3.5 L10.5 10.5", stroke: COLORS.truth, "stroke-width": 1.5 }));
    } else if (kind === "grand") {
      svg.append(hline(COLORS.grand, STYLE.grandDash));
    } else if (kind === "muhat") {
      svg.append(hline(STYLE.muhat, STYLE.muhatDash));
    }
    return svg;
  }

  // label markup: fixed strings of this file only (no data), so innerHTML is safe
  function legendLabel(kind) {
    const yj = "<var>ȳ<sub>j</sub></var>";
    switch (kind) {
      case "estimates": return `${TITLES[state.view].replace(" estimates", "").toLowerCase()} estimate (dot area grows with <var>n<sub>j</sub></var>)`;
      case "nopool": return `no pooling ${yj}, where each cluster starts`;
      case "path": return `shrinkage path ${yj} → partial`;
      case "truth": return "true cluster mean";
      case "grand": return "grand mean <var>ȳ</var> (complete pooling)";
      case "muhat": return "<var>μ̂</var> (REML), the target of partial pooling";
      default: return kind;
    }
  }

  function drawLegend(sets) {
    const items = sets.filter((d) => !d.hidden).map((d) => {
      const li = document.createElement("li");
      li.dataset.series = d.id;
      const text = document.createElement("span");
      text.innerHTML = legendLabel(d.id);
      li.append(swatch(d.id), text);
      return li;
    });
    $("legend").replaceChildren(...items);
  }

  function tooltipLabel(clusters, data) {
    return (item) => {
      const c = clusters[Math.min(Math.round(item.parsed.x) - 1, clusters.length - 1)];
      if (item.dataset.id === "grand") return `grand mean ${fmt(data.grand_mean)}`;
      if (item.dataset.id === "muhat") return `REML mean μ̂ ${fmt(data.mu_hat)}`;
      if (!c) return "";
      return [`${c.cluster}: n = ${c.n}, α = ${fmt(c.lambda)}`,
        `true ${fmt(c.true_mean)} · no pool ${fmt(c.no_pool)} · partial ${fmt(c.partial)}`];
    };
  }

  // one tick per cluster position 1..J (every 2nd or 5th for many clusters)
  function clusterTicks(J) {
    const step = J > 40 ? 5 : J > 20 ? 2 : 1;
    const ticks = [];
    for (let v = step === 1 ? 1 : step; v <= J; v += step) ticks.push({ value: v });
    return ticks;
  }

  // ordered by size, each tick names the cluster's size n_j; otherwise the cluster's number
  function tickLabel(value) {
    const c = state.clusters[value - 1];
    if (!c) return "";
    return state.sortBySize ? String(c.n) : String(value);
  }

  function drawChart(data, clusters) {
    const sets = datasets(data, clusters);
    const range = yRange(data);
    const xTitle = state.sortBySize ? "cluster size nⱼ (one cluster per tick, smallest first)" : "cluster";
    if (!chart) {
      chart = new Chart($("chart"), {
        type: "scatter",
        data: { datasets: sets },
        options: {
          maintainAspectRatio: false,
          animation: { duration: 450 },
          interaction: { mode: "nearest", intersect: true },
          scales: {
            x: { type: "linear", title: { display: true, text: xTitle }, grid: { display: false },
                 afterBuildTicks: (axis) => { axis.ticks = clusterTicks(Math.round(axis.max - 0.5)); },
                 ticks: { callback: tickLabel, maxRotation: 0, autoSkipPadding: 6 } },
            y: { title: { display: true, text: "estimate of the cluster mean" }, grid: { color: "#eef1f4" } },
          },
          plugins: {
            legend: { display: false },  // drawn in HTML below the chart (drawLegend)
            tooltip: { callbacks: {} },
          },
        },
      });
    } else {
      // update in place so Chart.js animates each point from its old to its new estimate
      chart.data.datasets.forEach((old, i) => Object.assign(old, sets[i]));
    }
    const J = clusters.length;
    Object.assign(chart.options.scales.x, { min: 0.5, max: J + 0.5 });
    chart.options.scales.x.title.text = xTitle;
    Object.assign(chart.options.scales.y, range);
    chart.options.plugins.tooltip.callbacks.label = tooltipLabel(clusters, data);
    chart.update();
    const order = state.sortBySize ? "ordered by size, smallest first" : "in cluster order";
    $("chart").setAttribute("aria-label", `${TITLES[state.view]} of ${J} clusters, ${order}; ` +
      "the numbers are in the Clusters table.");
    drawLegend(sets);
  }

  // bars share one scale, the largest of the three MSEs, so switching views never rescales them
  function drawMse(data) {
    const mse = data.mse;
    const lowest = Math.min(...Object.values(mse));
    const top = Math.max(...Object.values(mse)) || 1;
    for (const row of document.querySelectorAll("#mse-table tbody tr")) {
      const approach = row.dataset.approach;
      const best = mse[approach] <= lowest * (1 + 1e-9);  // ties: all of them
      row.querySelector(".mse-value").textContent = fmt(mse[approach]);
      row.querySelector(".bar").style.width = `${(100 * mse[approach]) / top}%`;
      row.classList.toggle("best", best);
      row.querySelector(".badge").hidden = !best;
      row.classList.toggle("current", approach === state.view);
      // read aloud after the approach's name: "Partial pooling (lowest error, the view in the chart)"
      const notes = [best ? "lowest error" : "", approach === state.view ? "the view in the chart" : ""].filter(Boolean);
      row.querySelector(".row-note").textContent = notes.length ? `(${notes.join(", ")})` : "";
    }
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function alphaCell(alpha) {
    const td = cell("", "num alpha");
    const bar = document.createElement("span");
    bar.className = "alpha-bar";
    bar.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.style.width = `${100 * alpha}%`;
    bar.appendChild(fill);
    td.append(bar, document.createTextNode(fmt(alpha)));
    return td;
  }

  function drawClusterTable(data, clusters) {
    const rows = clusters.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.cluster = c.cluster;
      tr.append(cell(c.cluster), cell(String(c.n), "num"), alphaCell(c.lambda), cell(fmt(c.true_mean), "num"),
        cell(fmt(data.grand_mean), "num wide-only"), cell(fmt(c.no_pool), "num"), cell(fmt(c.partial), "num"));
      return tr;
    });
    document.querySelector("#cluster-table tbody").replaceChildren(...rows);
  }

  function showMessages(notes) {
    const items = notes.map((text) => { const p = document.createElement("p"); p.textContent = text; return p; });
    $("messages").replaceChildren(...items);
  }

  function drawFit(data) {
    $("fit-sigma_u").textContent = fmt(data.fit.sigma_u);
    $("fit-sigma_e").textContent = fmt(data.fit.sigma_e);
    $("fit-mu_hat").textContent = fmt(data.mu_hat);
    $("fit-grand_mean").textContent = fmt(data.grand_mean);
    $("fit-nobs").textContent = String(data.fit.nobs);
    const notes = [...data.notes];
    if (data.fit.singular) {
      notes.push("Singular fit: σ̂ᵤ = 0, so every αⱼ = 0 and every partial pooling estimate equals μ̂ (here the grand mean).");
    }
    for (const w of data.fit.warnings) if (!w.startsWith("SingularFitWarning")) notes.push(w);
    showMessages(notes);
  }

  function render() {
    const data = state.data;
    if (!data) return;
    const clusters = orderedClusters(data);
    state.clusters = clusters;
    $("chart-title").textContent = TITLES[state.view];
    const sizeNote = state.view === "partial" && state.sortBySize ? SIZE_NOTE : "";
    $("view-caption").textContent = CAPTIONS[state.view] + sizeNote;
    drawChart(data, clusters);
    drawMse(data);
    drawFit(data);
    drawClusterTable(data, clusters);
    state.renders += 1;
    document.body.dataset.renders = String(state.renders);
    document.body.dataset.view = state.view;
    document.body.dataset.order = state.sortBySize ? "size" : "cluster";
  }

  // for tests and the curious: window.explorer.data is the last /api/simulate answer
  window.explorer = {
    get data() { return state.data; },
    get view() { return state.view; },
    get chart() { return chart; },
    get order() { return state.sortBySize ? "size" : "cluster"; },
  };

  document.addEventListener("DOMContentLoaded", () => {
    bindControls();
    restoreFromUrl();
    load();
  });
})();
