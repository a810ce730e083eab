"use strict";
// reward report: search, sort, filter and page every group and rollout of the run, in the browser.
// The page's CSP allows this script by its hash. Values from the scored file are only ever set as text
// (textContent, never innerHTML): a rollout is the policy's output and may contain markup.
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const DIMS = D.dims, G = D.groups, R = D.rollouts, SCALE = D.scale;
  const REL = !!D.rel; // the group table has the reliability columns
  const PAGE = 100;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "title") e.title = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }
  function num(x, d) {
    if (x === null || x === undefined) return "–";
    const p = d === undefined ? 2 : d;
    const v = Math.abs(x) < 0.5 * Math.pow(10, -p) ? 0 : x; // never "-0.00"
    return v.toFixed(p);
  }
  function metaText(m) { return m === undefined ? "" : JSON.stringify(m); }

  // ---- state, kept in the URL's fragment so a view can be linked or reloaded
  const S = { q: "", group: "", status: "", why: "", dim: "", op: "le", val: "", meta: "", sort: "group", desc: false, page: 0,
              gq: "", gfilt: false, gsort: "", gdesc: false, gpage: 0 };
  const KEYS = Object.keys(S);
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    for (const k of KEYS) {
      if (!p.has(k)) continue;
      const v = p.get(k);
      S[k] = typeof S[k] === "boolean" ? v === "1" : typeof S[k] === "number" ? (parseInt(v, 10) || 0) : v;
    }
  }
  function writeHash() {
    const p = new URLSearchParams();
    for (const k of KEYS) {
      const v = S[k];
      if (v === "" || v === false || v === 0) continue;
      if ((k === "op" && v === "le") || (k === "sort" && v === "group")) continue;
      p.set(k, typeof v === "boolean" ? "1" : String(v));
    }
    const h = p.toString();
    try { history.replaceState(null, "", h ? "#" + h : location.pathname + location.search); } catch (e) { /* a file: URL may refuse */ }
  }

  // ---- controls
  const whys = [...new Set(R.map((r) => r.why).filter(Boolean))].sort();
  for (const w of whys) $("f-why").append(el("option", { value: w }, w));
  $("f-why").append(el("option", { value: "-" }, "none"));
  DIMS.forEach((d, i) => $("f-dim").append(el("option", { value: String(i) }, d.n + (d.g ? " (" + d.g + ")" : ""))));
  const CONTROLS = { q: "q", group: "f-group", status: "f-status", why: "f-why", dim: "f-dim", op: "f-op", val: "f-val", meta: "f-meta", gq: "g-q" };
  function syncControls() {
    for (const [k, id] of Object.entries(CONTROLS)) $(id).value = S[k];
    $("g-filtered").checked = S.gfilt;
  }
  for (const [k, id] of Object.entries(CONTROLS)) {
    $(id).addEventListener(id === "f-status" || id === "f-why" || id === "f-dim" || id === "f-op" ? "change" : "input", () => {
      S[k] = $(id).value;
      if (k === "gq") { S.gpage = 0; renderGroups(); } else { S.page = 0; renderRollouts(); }
      writeHash();
    });
  }
  $("g-filtered").addEventListener("change", () => { S.gfilt = $("g-filtered").checked; S.gpage = 0; renderGroups(); writeHash(); });
  $("reset").addEventListener("click", () => {
    Object.assign(S, { q: "", group: "", status: "", why: "", dim: "", op: "le", val: "", meta: "", sort: "group", desc: false, page: 0 });
    syncControls(); renderRollouts(); writeHash();
  });

  // ---- filtering
  let texts = null; // lower-cased searchable text of each rollout, built on the first search
  function searchText(i) {
    if (texts === null) texts = new Array(R.length);
    if (texts[i] === undefined) {
      const r = R[i];
      const tx = r.tx ? r.tx.steps.map((x) => x[0] + "\n" + x[2]).join("\n") + "\n" + r.tx.fa : "";
      texts[i] = [G[r.g].id, r.id, r.st, r.why, r.det, metaText(r.meta), (r.rs || []).join("\n"), (r.warn || []).join("\n"), r.plan, tx]
        .filter(Boolean).join("\n").toLowerCase();
    }
    return texts[i];
  }
  function metaTest(spec) {
    const m = /^\s*(?:meta\.)?([^=!]+?)\s*(?:(!?=)\s*(.*?))?\s*$/.exec(spec);
    if (!m) return () => true;
    const path = m[1].split("."), op = m[2], want = m[3];
    return (r) => {
      let v = r.meta;
      for (const p of path) { if (v === null || typeof v !== "object" || !(p in v)) { v = undefined; break; } v = v[p]; }
      if (!op) return v !== undefined;
      const got = v === undefined ? undefined : typeof v === "string" ? v : JSON.stringify(v);
      return op === "=" ? got === want : got !== want;
    };
  }
  function groupTest(spec) {
    if (!spec) return () => true;
    const exact = G.findIndex((g) => g.id === spec);
    if (exact >= 0) return (r) => r.g === exact;
    const s = spec.toLowerCase();
    const hit = new Set(G.map((g, i) => (g.id.toLowerCase().includes(s) ? i : -1)).filter((i) => i >= 0));
    return (r) => hit.has(r.g);
  }
  function matching() {
    const terms = S.q.toLowerCase().split(/\s+/).filter(Boolean);
    const inGroup = groupTest(S.group);
    const meta = S.meta.trim() ? metaTest(S.meta) : null;
    const di = S.dim === "" ? -1 : parseInt(S.dim, 10);
    const v = S.val === "" ? null : parseFloat(S.val);
    const out = [];
    for (let i = 0; i < R.length; i++) {
      const r = R[i];
      if (S.status && r.st !== S.status) continue;
      if (S.why && (S.why === "-" ? r.why : r.why !== S.why)) continue;
      if (!inGroup(r)) continue;
      if (di >= 0) {
        if (S.op === "weakest") { if (!r.w || r.w[0] !== di) continue; }
        else if (v !== null && !isNaN(v)) {
          const s = r.s ? r.s[di] : null;
          if (s === null || s === undefined || (S.op === "le" ? s > v : s < v)) continue;
        }
      }
      if (meta && !meta(r)) continue;
      if (terms.length) { const t = searchText(i); if (!terms.every((x) => t.includes(x))) continue; }
      out.push(i);
    }
    return out;
  }

  // ---- sorting: missing values always last, ties in file order
  function distance(r) {
    if (!r.w || !r.w.length) return null;
    const i = r.w[0], s = r.s[i], span = (SCALE[1] - SCALE[0]) || 1;
    return DIMS[i].worse ? (s - SCALE[0]) / span : (SCALE[1] - s) / span;
  }
  const RKEY = {
    group: (r, i) => i, id: (r) => r.id, reward: (r) => r.r, adv: (r) => r.adv, tok: (r) => r.tok,
    status: (r) => r.st + " " + (r.why || ""), weak: distance,
    dim: (r) => (S.dim === "" || !r.s ? null : r.s[parseInt(S.dim, 10)]),
  };
  function sortIdx(idx, keyOf, desc) {
    const keyed = idx.map((i) => [keyOf(i), i]);
    keyed.sort((a, b) => {
      const x = a[0], y = b[0];
      const nx = x === null || x === undefined, ny = y === null || y === undefined;
      if (nx || ny) return nx && ny ? a[1] - b[1] : nx ? 1 : -1;
      const c = typeof x === "string" ? x.localeCompare(y) : x - y;
      return c !== 0 ? (desc ? -c : c) : a[1] - b[1];
    });
    return keyed.map((k) => k[1]);
  }

  function pager(node, total, page, onPage) {
    node.textContent = "";
    const pages = Math.max(1, Math.ceil(total / PAGE));
    if (pages <= 1) return;
    const go = (p) => el("button", { class: "link", "data-page": String(p) }, String(p + 1));
    node.append("page ");
    const shown = new Set([0, pages - 1, page - 2, page - 1, page, page + 1, page + 2]);
    let gap = false;
    for (let p = 0; p < pages; p++) {
      if (!shown.has(p)) { if (!gap) node.append(" … "); gap = true; continue; }
      gap = false;
      const b = p === page ? el("b", {}, String(p + 1)) : go(p);
      if (p !== page) b.addEventListener("click", () => onPage(p));
      node.append(" ", b, " ");
    }
  }

  // ---- rollouts
  function weakList(r, n) {
    const span = el("span", { class: "weak" });
    (r.w || []).slice(0, n).forEach((i, k) => {
      if (k) span.append(", ");
      span.append(el("b", {}, DIMS[i].n), " " + num(r.s[i], 1));
    });
    return span;
  }
  function detail(r) {
    const box = el("div", {});
    if (r.det) box.append(el("p", {}, el("b", {}, r.st === "error" ? "error: " : "penalty: "), (r.why ? r.why + ": " : "") + r.det));
    for (const w of r.warn || []) box.append(el("p", { class: "reason" }, "warning: " + w));
    if (r.w && r.w.length) {
      const t = el("table", {}, el("tr", {}, el("th", {}, "dimension"), el("th", {}, "group"), el("th", { class: "num" }, "score"), el("th", {}, "reason")));
      for (const i of r.w) {
        const sd = r.ssd && r.ssd[i] !== null ? " ± " + num(r.ssd[i], 1) : "";
        t.append(el("tr", {}, el("td", {}, DIMS[i].n), el("td", {}, DIMS[i].g + (DIMS[i].worse ? " (higher is worse)" : "")),
          el("td", { class: "num" }, num(r.s[i], 1) + sd), el("td", { class: "reason" }, r.rs[i] || "")));
      }
      box.append(el("p", {}, "Every dimension, furthest from its best value first:"), t);
    }
    const extra = [];
    if (r.sd !== undefined) extra.push("reward SD across samples " + num(r.sd));
    if (r.fa !== undefined) extra.push("final answer: " + (r.fa ? "yes" : "no"));
    if (extra.length) box.append(el("p", { class: "muted" }, extra.join(" · ")));
    if (r.meta !== undefined) box.append(el("p", {}, "meta ", el("code", {}, JSON.stringify(r.meta, null, 1))));
    if (r.tx) {
      const tx = el("details", {}, el("summary", {}, "Transcript as the judge saw it (" + r.tx.steps.length + " commands)"));
      r.tx.steps.forEach((s, i) => {
        tx.append(el("p", {}, el("b", {}, "$ "), el("code", {}, s[0]), " (exit code " + (s[1] === null ? "unknown" : String(s[1])) + ")"));
        if (s[2]) tx.append(el("pre", { class: "plan" }, s[2]));
      });
      tx.append(el("p", {}, el("b", {}, "Final answer")), el("pre", { class: "plan" }, r.tx.fa || "(none)"));
      box.append(tx);
    }
    if (r.plan) box.append(el("p", {}, el("b", {}, "Plan graded"), " (the reference plan is in the group's panel above)"), el("pre", { class: "plan" }, r.plan));
    return box;
  }
  const open = new Set();
  function renderGroupPanel() {
    const node = $("grouppanel");
    node.textContent = "";
    const gi = G.findIndex((g) => g.id === S.group);
    if (gi < 0) return;
    const g = G[gi];
    const box = el("div", { class: "grouppanel", id: "group-" + gi });
    box.append(el("p", {}, el("b", {}, "Group "), el("code", {}, g.id), ` · ${g.n} rollouts (${g.ok} graded, ${g.pen} penalised, ${g.err} errors) · mean ${num(g.mean)} · SD ${num(g.std)}` +
      (g.snr !== undefined ? ` · SNR ${num(g.snr)}` : "") +
      (g.rel !== undefined ? ` · reliability ${num(g.rel)} (K-sample mean ${num(g.relk)}), K needed ${g.kn === undefined ? "–" : g.kn}` : "") + (g.filt ? " · filtered" + (g.fr ? ": " + g.fr : "") : "")));
    if (g.ref) box.append(el("details", { open: "" }, el("summary", {}, "reference plan (once for the group)"), el("pre", { class: "plan" }, g.ref)));
    node.append(box);
  }
  function renderRollouts() {
    let idx = matching();
    const key = RKEY[S.sort] || RKEY.group;
    idx = sortIdx(idx, (i) => key(R[i], i), S.desc);
    const pages = Math.max(1, Math.ceil(idx.length / PAGE));
    if (S.page >= pages) S.page = pages - 1;
    const body = $("r-table").tBodies[0];
    body.textContent = "";
    const di = S.dim === "" ? -1 : parseInt(S.dim, 10);
    $("dim-col").textContent = di >= 0 ? DIMS[di].n : "dimension";
    for (const i of idx.slice(S.page * PAGE, (S.page + 1) * PAGE)) {
      const r = R[i], g = G[r.g];
      const gid = el("button", { class: "link" }, g.id);
      gid.addEventListener("click", (ev) => { ev.stopPropagation(); S.group = g.id; S.page = 0; syncControls(); renderRollouts(); writeHash(); });
      const tr = el("tr", { class: "rollout" + (g.filt ? " filtered" : "") + (open.has(i) ? " open" : ""), "data-i": String(i) },
        el("td", { class: "gid" }, gid), el("td", {}, el("code", {}, r.id)),
        el("td", { class: "num" }, num(r.r) + (r.sd !== undefined ? " ± " + num(r.sd) : "")),
        el("td", { class: "num" }, num(r.adv)),
        el("td", { class: "st-" + r.st }, r.st + (r.why ? ": " + r.why : "")),
        el("td", { class: "num" }, r.tok === undefined ? "–" : String(r.tok)),
        el("td", { class: "num" }, di >= 0 && r.s ? num(r.s[di], 1) : ""),
        el("td", {}, weakList(r, 3)),
        el("td", { class: "meta" }, r.meta === undefined ? "" : el("code", {}, metaText(r.meta).slice(0, 120))));
      tr.addEventListener("click", () => { if (open.has(i)) open.delete(i); else open.add(i); renderRollouts(); });
      body.append(tr);
      if (open.has(i)) body.append(el("tr", { class: "detail" }, el("td", { colspan: "9" }, detail(r))));
    }
    $("count").textContent = `${idx.length} of ${R.length} rollouts`;
    const onPage = (p) => { S.page = p; renderRollouts(); writeHash(); };
    pager($("pager"), idx.length, S.page, onPage);
    pager($("pager2"), idx.length, S.page, onPage);
    markSorted($("r-table"), S.sort, S.desc);
    renderGroupPanel();
  }

  // ---- groups
  const GKEY = { id: (g) => g.id, filt: (g) => (g.filt ? 1 : 0) };
  function renderGroups() {
    const q = S.gq.toLowerCase();
    let idx = G.map((g, i) => i).filter((i) => (!q || G[i].id.toLowerCase().includes(q)) && (!S.gfilt || G[i].filt));
    if (S.gsort) idx = sortIdx(idx, (i) => (GKEY[S.gsort] || ((g) => g[S.gsort]))(G[i]), S.gdesc);
    const pages = Math.max(1, Math.ceil(idx.length / PAGE));
    if (S.gpage >= pages) S.gpage = pages - 1;
    const body = $("g-table").tBodies[0];
    body.textContent = "";
    for (const i of idx.slice(S.gpage * PAGE, (S.gpage + 1) * PAGE)) {
      const g = G[i];
      const b = el("button", { class: "link" }, g.id);
      b.addEventListener("click", () => { S.group = g.id; S.page = 0; syncControls(); renderRollouts(); writeHash(); $("rollouts").scrollIntoView(); });
      body.append(el("tr", { class: g.filt ? "filtered" : "" }, el("td", { class: "gid" }, b),
        el("td", { class: "num" }, String(g.n)), el("td", { class: "num" }, String(g.ok)), el("td", { class: "num" }, String(g.pen)), el("td", { class: "num" }, String(g.err)),
        el("td", { class: "num" }, num(g.mean)), el("td", { class: "num" }, num(g.std)), el("td", { class: "num" }, num(g.snr)),
        REL && el("td", { class: "num rel" }, num(g.rel) + (g.relk === undefined ? "" : " (" + num(g.relk) + ")")),
        REL && el("td", { class: "num kn" }, g.kn === undefined ? "–" : String(g.kn)),
        el("td", { class: "num" }, g.rmin === undefined ? "–" : num(g.rmin) + " … " + num(g.rmax)),
        el("td", { class: "num" }, g.amin === undefined ? "–" : num(g.amin) + " … " + num(g.amax)),
        el("td", { class: "num" }, g.tok === undefined ? "–" : String(g.tok)),
        el("td", { class: "num" }, g.jc === undefined ? "–" : String(g.jc) + " / " + String(g.jt)),
        el("td", { class: "num" }, g.cost === undefined ? (g.jc === undefined ? "–" : "unknown") : "$" + (g.cost >= 0.01 || g.cost === 0 ? g.cost.toFixed(4) : g.cost.toPrecision(2))),
        el("td", {}, g.filt ? "yes" + (g.fr ? ": " + g.fr : "") : "")));
    }
    $("g-count").textContent = `${idx.length} of ${G.length} groups`;
    pager($("g-pager"), idx.length, S.gpage, (p) => { S.gpage = p; renderGroups(); writeHash(); });
    markSorted($("g-table"), S.gsort, S.gdesc);
  }

  function markSorted(table, key, desc) {
    for (const th of table.tHead.rows[0].cells) {
      th.classList.toggle("sorted", th.dataset.sort === key);
      th.classList.toggle("desc", th.dataset.sort === key && desc);
    }
  }
  for (const [table, k, d, render] of [[$("r-table"), "sort", "desc", () => renderRollouts()], [$("g-table"), "gsort", "gdesc", () => renderGroups()]]) {
    for (const th of table.tHead.rows[0].cells) {
      if (!th.dataset.sort) continue;
      th.addEventListener("click", () => {
        if (S[k] === th.dataset.sort) S[d] = !S[d]; else { S[k] = th.dataset.sort; S[d] = false; }
        render(); writeHash();
      });
    }
  }

  readHash();
  syncControls();
  renderGroups();
  renderRollouts();
  window.addEventListener("hashchange", () => { readHash(); syncControls(); renderGroups(); renderRollouts(); });
  document.documentElement.dataset.ready = String(Math.round(performance.now()));
})();
