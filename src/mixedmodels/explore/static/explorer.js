/* Shrinkage explorer: asks /api/simulate for a simulated data set and its REML fit, draws the
 * cluster estimates of the chosen pooling view with Chart.js, and fills the MSE and cluster tables. */
"use strict";

(function () {
  const PARAMS = ["J", "nbar", "sigma_u", "sigma_e", "seed"];
  const COLORS = { complete: "#7c3aed", no: "#2563eb", partial: "#e8590c", truth: "#1f2933", grand: "#64707d" };
  const TITLES = { complete: "Complete pooling estimates", no: "No pooling estimates", partial: "Partial pooling estimates" };
  const CAPTIONS = {
    complete: "One grand mean for every cluster: clusters ignored.",
    no: "Each cluster's own mean ȳⱼ: nothing shared between clusters.",
    partial: "REML estimates (lme4's coef()): each cluster's mean pulled toward μ̂ by 1 − λⱼ; grey lines trace the move from ȳⱼ.",
  };
  const DEBOUNCE_MS = 120;

  const state = { view: "partial", sortBySize: false, showTruth: true, data: null, renders: 0 };
  let chart = null;
  let pending = null;   // AbortController of the request in flight
  let timer = null;

  const $ = (id) => document.getElementById(id);
  const fmt = (x, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

  // ------------------------------------------------------------------ settings <-> controls
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
      button.addEventListener("click", () => setView(button.dataset.view));
    }
    $("sort-by-size").addEventListener("change", (e) => { state.sortBySize = e.target.checked; render(); });
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
    render();
  }

  function restoreFromUrl() {
    const query = new URLSearchParams(window.location.search);
    for (const name of PARAMS) if (query.has(name)) writeParam(name, query.get(name));
    if (["complete", "no", "partial"].includes(query.get("view"))) setView(query.get("view"));
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
      query.set("view", state.view);
      window.history.replaceState(null, "", `?${query}`);
      render();
      const fit = body.fit.singular ? "singular fit" : "REML fit";
      setStatus("ready", `${body.clusters.length} clusters · ${body.fit.nobs} observations · ${fit}`);
    } catch (error) {
      if (error.name === "AbortError") return;
      setStatus("error", "error");
      showMessages([], [error.message]);
    } finally {
      if (pending === controller) pending = null;
    }
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
        backgroundColor: "rgba(37, 99, 235, 0.08)", borderColor: "rgba(37, 99, 235, 0.55)", borderWidth: 1.2,
        pointRadius: pointRadius(clusters) },
      { id: "path", label: "Shrinkage ȳⱼ → partial", type: "line", order: 3, hidden: !partial, data: path,
        borderColor: "rgba(100, 112, 125, 0.75)", borderWidth: 1.5, pointRadius: 0, pointStyle: "line", spanGaps: false,
        fill: false },
      { id: "truth", label: "True cluster mean", type: "scatter", order: 0, hidden: !state.showTruth,
        data: clusters.map((c) => ({ x: c.x, y: c.true_mean })),
        pointStyle: "crossRot", pointRadius: 5, borderColor: COLORS.truth, borderWidth: 1.5, backgroundColor: COLORS.truth },
      { id: "grand", label: "Grand mean (complete pooling)", type: "line", order: 4,
        data: [{ x: 0.5, y: data.grand_mean }, { x: J + 0.5, y: data.grand_mean }],
        borderColor: COLORS.grand, borderDash: [6, 5], borderWidth: 1.5, pointRadius: 0, pointStyle: "line", fill: false },
      { id: "muhat", label: "μ̂ (REML): where partial pooling shrinks to", type: "line", order: 5, hidden: !partial,
        data: [{ x: 0.5, y: data.mu_hat }, { x: J + 0.5, y: data.mu_hat }],
        borderColor: "rgba(232, 89, 12, 0.7)", borderDash: [2, 3], borderWidth: 1.5, pointRadius: 0, pointStyle: "line",
        fill: false },
    ];
  }

  function tooltipLabel(clusters, data) {
    return (item) => {
      const c = clusters[Math.min(Math.round(item.parsed.x) - 1, clusters.length - 1)];
      if (item.dataset.id === "grand") return `grand mean ${fmt(data.grand_mean)}`;
      if (item.dataset.id === "muhat") return `μ̂ ${fmt(data.mu_hat)}`;
      if (!c) return "";
      return [`${c.cluster}: n = ${c.n}, λ = ${fmt(c.lambda)}`,
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

  function drawChart(data, clusters) {
    const sets = datasets(data, clusters);
    const range = yRange(data);
    const xTitle = state.sortBySize ? "cluster, ordered by size nⱼ" : "cluster";
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
                 afterBuildTicks: (axis) => { axis.ticks = clusterTicks(Math.round(axis.max - 0.5)); } },
            y: { title: { display: true, text: "estimate of the cluster mean" }, grid: { color: "#eef1f4" } },
          },
          plugins: {
            legend: { position: "bottom", labels: { usePointStyle: true, filter: (item, d) => !d.datasets[item.datasetIndex].hidden } },
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
  }

  function drawMse(data) {
    const mse = data.mse;
    const lowest = Math.min(...Object.values(mse));
    const top = Math.max(...Object.values(mse)) || 1;
    for (const row of document.querySelectorAll("#mse-table tbody tr")) {
      const approach = row.dataset.approach;
      row.querySelector(".mse-value").textContent = fmt(mse[approach]);
      row.querySelector(".bar").style.width = `${(100 * mse[approach]) / top}%`;
      row.classList.toggle("best", mse[approach] <= lowest * (1 + 1e-9));  // ties: all of them
      row.classList.toggle("current", approach === state.view);
    }
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function lambdaCell(lambda) {
    const td = cell("", "num lambda");
    const bar = document.createElement("span");
    bar.className = "lambda-bar";
    const fill = document.createElement("span");
    fill.style.width = `${100 * lambda}%`;
    bar.appendChild(fill);
    td.append(bar, document.createTextNode(fmt(lambda)));
    return td;
  }

  function drawClusterTable(data, clusters) {
    const rows = clusters.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.cluster = c.cluster;
      tr.append(cell(c.cluster), cell(String(c.n), "num"), lambdaCell(c.lambda), cell(fmt(c.true_mean), "num"),
        cell(fmt(data.grand_mean), "num"), cell(fmt(c.no_pool), "num"), cell(fmt(c.partial), "num"));
      return tr;
    });
    document.querySelector("#cluster-table tbody").replaceChildren(...rows);
  }

  function showMessages(notes, errors) {
    const box = $("messages");
    const items = [];
    for (const text of notes) { const p = document.createElement("p"); p.textContent = text; items.push(p); }
    for (const text of errors) { const p = document.createElement("p"); p.className = "error"; p.textContent = text; items.push(p); }
    box.replaceChildren(...items);
  }

  function drawFit(data) {
    $("fit-sigma_u").textContent = fmt(data.fit.sigma_u);
    $("fit-sigma_e").textContent = fmt(data.fit.sigma_e);
    $("fit-mu_hat").textContent = fmt(data.mu_hat);
    $("fit-grand_mean").textContent = fmt(data.grand_mean);
    $("fit-nobs").textContent = String(data.fit.nobs);
    const notes = [...data.notes];
    if (data.fit.singular) {
      notes.push("Singular fit: σ̂ᵤ = 0, so every partial pooling estimate equals μ̂ (here the grand mean).");
    }
    for (const w of data.fit.warnings) if (!w.startsWith("SingularFitWarning")) notes.push(w);
    showMessages(notes, []);
  }

  function render() {
    const data = state.data;
    if (!data) return;
    const clusters = orderedClusters(data);
    $("chart-title").textContent = TITLES[state.view];
    $("view-caption").textContent = CAPTIONS[state.view];
    drawChart(data, clusters);
    drawMse(data);
    drawFit(data);
    drawClusterTable(data, clusters);
    state.renders += 1;
    document.body.dataset.renders = String(state.renders);
    document.body.dataset.view = state.view;
  }

  // for tests and the curious: window.explorer.data is the last /api/simulate answer
  window.explorer = {
    get data() { return state.data; },
    get view() { return state.view; },
    get chart() { return chart; },
  };

  document.addEventListener("DOMContentLoaded", () => {
    bindControls();
    restoreFromUrl();
    load();
  });
})();
