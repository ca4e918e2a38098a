// Skillstream alerts inbox. Plain script, no build step, no third-party code.
//
// The staff token lives in sessionStorage (this tab only) and goes to the JSON API as
// "Authorization: Bearer". Every piece of data reaches the page through textContent or
// setAttribute on elements created here: never through innerHTML.
"use strict";

(() => {
  const TOKEN_KEY = "skillstream.inbox.token";
  const PAGE_SIZE = 25;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const KINDS = {
    wheel_spinning: "Wheel-spinning",
    failure_streak: "Failure streak",
    inactivity: "Inactivity",
    gaming: "Gaming the system",
    regression: "Regression",
    missed_sessions: "Missed live sessions",
  };
  const STATUSES = {
    open: "Open",
    acknowledged: "Acknowledged",
    snoozed: "Snoozed",
    resolved: "Resolved",
  };
  const ACTIONS = {
    opened: "Opened",
    updated: "New evidence",
    acknowledged: "Acknowledged",
    resolved: "Resolved",
    assigned: "Assigned",
    snoozed: "Snoozed",
    unsnoozed: "Snooze ended",
  };
  // which staff action is allowed from which status (services/alerts/lifecycle.py)
  const ALLOWED = {
    acknowledge: ["open", "snoozed"],
    resolve: ["open", "acknowledged", "snoozed"],
    assign: ["open", "acknowledged", "snoozed"],
    snooze: ["open", "acknowledged"],
  };
  const DONE = {
    acknowledge: "acknowledged",
    resolve: "resolved",
    assign: "assigned",
    snooze: "snoozed",
  };
  // evidence keys shown elsewhere than in the counts
  const EVIDENCE_APART = new Set(["statement_ids", "mastery_trajectory", "rule"]);

  const $ = (id) => document.getElementById(id);
  const state = { offset: 0, total: 0, selected: null, busy: false };
  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  // --- small helpers -------------------------------------------------------------------------

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function humanize(key) {
    const words = String(key).replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function when(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : dateFormat.format(date);
  }

  function shortKey(key) {
    const text = String(key || "");
    return text.length > 14 ? `${text.slice(0, 6)}…${text.slice(-4)}` : text;
  }

  function say(message, kind) {
    const status = $("status");
    status.textContent = message;
    status.className = `status${kind ? ` status-${kind}` : ""}`;
  }

  function badge(className, text) {
    return el("span", text, `badge ${className}`);
  }

  // --- the API -------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options = {}) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { Accept: "application/json", Authorization: `Bearer ${token || ""}` };
    const init = { method: options.method || "GET", headers, cache: "no-store" };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, "The alerts service cannot be reached.");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (response.status === 401 && !options.signingIn) {
      signOut("Your session has ended or the token was revoked: sign in again.");
    }
    if (!response.ok) {
      const reason = body && (body.reason || body.error);
      throw new ApiError(response.status, reason || `HTTP ${response.status}`);
    }
    return body;
  }

  // --- signing in and out ----------------------------------------------------------------------

  function showSignIn(message) {
    $("inbox").hidden = true;
    $("who").hidden = true;
    $("sign-in").hidden = false;
    $("token-error").textContent = message || "";
    $("token").value = "";
    $("token").focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.selected = null;
    clear($("alert-rows"));
    showDetail(null);
    showSignIn(message);
    say(message ? "" : "Signed out.");
  }

  async function start() {
    let me;
    try {
      me = await api("api/me", { signingIn: true });
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(
        error.status === 401 ? "This token is unknown or revoked." : error.message,
      );
      return;
    }
    $("who-name").textContent = me.name;
    $("who-scope").textContent = me.team ? `${me.tenant} · team ${me.team}` : `${me.tenant} · all teams`;
    $("who").hidden = false;
    $("sign-in").hidden = true;
    $("inbox").hidden = false;
    await loadList();
  }

  // --- the list --------------------------------------------------------------------------------

  function query() {
    const params = new URLSearchParams();
    for (const name of ["status", "kind", "team", "business_unit", "programme", "learner"]) {
      const field = $("filters").elements.namedItem(name);
      const value = field.value.trim();
      if (value) params.set(name, value);
    }
    params.set("sort", $("f-sort").value);
    params.set("limit", String(PAGE_SIZE));
    params.set("offset", String(state.offset));
    return params;
  }

  function remember(listId, values) {
    const list = $(listId);
    const known = new Set(Array.from(list.options, (option) => option.value));
    for (const value of values) {
      if (value && !known.has(value)) {
        known.add(value);
        const option = document.createElement("option");
        option.value = value;
        list.appendChild(option);
      }
    }
  }

  function row(alert) {
    const tr = el("tr");
    tr.dataset.alertId = alert.id;
    tr.dataset.kind = alert.kind;
    tr.dataset.status = alert.status;
    if (alert.id === state.selected) tr.setAttribute("aria-current", "true");

    tr.appendChild(el("td")).appendChild(badge(`sev sev-${alert.severity}`, humanize(alert.severity)));

    const kindCell = el("td");
    const open = el("button", KINDS[alert.kind] || humanize(alert.kind), "link");
    open.type = "button";
    open.setAttribute("aria-label", `${KINDS[alert.kind] || alert.kind} for learner ${alert.learner_name || shortKey(alert.learner_key)}: show details`);
    open.addEventListener("click", () => select(alert.id));
    kindCell.appendChild(open);
    if (alert.competency) kindCell.appendChild(el("div", alert.competency, "sub"));
    tr.appendChild(kindCell);

    // learner_name is only sent to tokens allowed to see names (null when ingest knows none)
    const learner = alert.learner_name ? el("td", alert.learner_name) : el("td", shortKey(alert.learner_key), "mono");
    if (alert.learner_name) learner.appendChild(el("div", shortKey(alert.learner_key), "sub mono"));
    learner.title = alert.learner_key;
    tr.appendChild(learner);

    const programme = el("td", alert.programme || "—");
    if (alert.business_unit) programme.appendChild(el("div", alert.business_unit, "sub"));
    tr.appendChild(programme);

    const status = el("td", null, "status-cell");
    status.appendChild(badge(`st st-${alert.status}`, STATUSES[alert.status] || alert.status));
    if (alert.assignee) status.appendChild(el("div", `→ ${alert.assignee}`, "sub"));
    tr.appendChild(status);

    tr.appendChild(el("td", when(alert.last_seen_at), "nowrap"));
    tr.addEventListener("click", (event) => {
      if (event.target === open) return;
      select(alert.id);
    });
    return tr;
  }

  async function loadList() {
    const tbody = $("alert-rows");
    $("alerts-heading").setAttribute("aria-busy", "true");
    let page;
    try {
      page = await api(`api/alerts?${query()}`);
    } catch (error) {
      if (error.status !== 401) say(`Could not load the alerts: ${error.message}`, "error");
      return;
    } finally {
      $("alerts-heading").removeAttribute("aria-busy");
    }
    if (page.items.length === 0 && state.offset > 0 && page.total > 0) {
      state.offset = Math.max(0, page.total - PAGE_SIZE);
      await loadList();
      return;
    }
    state.total = page.total;
    clear(tbody);
    for (const alert of page.items) tbody.appendChild(row(alert));
    remember("teams", page.items.map((a) => a.team));
    remember("business-units", page.items.map((a) => a.business_unit));
    remember("programmes", page.items.map((a) => a.programme));
    $("empty").hidden = page.items.length > 0;
    $("count").textContent = `${page.total} ${page.total === 1 ? "alert" : "alerts"}`;
    const first = page.items.length ? state.offset + 1 : 0;
    $("page-info").textContent = `${first}–${state.offset + page.items.length} of ${page.total}`;
    $("prev").disabled = state.offset === 0;
    $("next").disabled = state.offset + page.items.length >= page.total;
  }

  // --- one alert -------------------------------------------------------------------------------

  function sparkline(points) {
    const values = points.map((p) => Number(p[1])).filter((v) => Number.isFinite(v));
    const width = 480;
    const height = 88;
    const pad = 6;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    svg.setAttribute("role", "img");
    const first = values[0];
    const last = values[values.length - 1];
    const label = `Mastery over ${values.length} points, from ${first.toFixed(2)} to ${last.toFixed(2)}`;
    svg.setAttribute("aria-label", label);
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = label;
    svg.appendChild(title);

    const x = (i) => pad + (values.length === 1 ? (width - 2 * pad) / 2 : (i * (width - 2 * pad)) / (values.length - 1));
    const y = (v) => pad + (1 - Math.min(1, Math.max(0, v))) * (height - 2 * pad);
    for (const level of [0, 0.5, 1]) {
      const grid = document.createElementNS(SVG_NS, "line");
      grid.setAttribute("x1", String(pad));
      grid.setAttribute("x2", String(width - pad));
      grid.setAttribute("y1", String(y(level)));
      grid.setAttribute("y2", String(y(level)));
      grid.setAttribute("class", level === 0.5 ? "grid grid-mid" : "grid");
      svg.appendChild(grid);
    }
    const coords = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const area = document.createElementNS(SVG_NS, "polygon");
    area.setAttribute("points", `${x(0).toFixed(1)},${y(0)} ${coords} ${x(values.length - 1).toFixed(1)},${y(0)}`);
    area.setAttribute("class", "spark-area");
    svg.appendChild(area);
    const line = document.createElementNS(SVG_NS, "polyline");
    line.setAttribute("points", coords);
    line.setAttribute("class", "spark-line");
    svg.appendChild(line);
    const dot = document.createElementNS(SVG_NS, "circle");
    dot.setAttribute("cx", x(values.length - 1).toFixed(1));
    dot.setAttribute("cy", y(last).toFixed(1));
    dot.setAttribute("r", "3.5");
    dot.setAttribute("class", "spark-dot");
    svg.appendChild(dot);

    const wrap = el("div", null, "spark");
    wrap.appendChild(svg);
    const legend = el("p", null, "spark-legend");
    legend.appendChild(el("span", `from ${first.toFixed(2)}`));
    legend.appendChild(el("span", `min ${Math.min(...values).toFixed(2)} · max ${Math.max(...values).toFixed(2)}`));
    legend.appendChild(el("strong", `now ${last.toFixed(2)}`));
    wrap.appendChild(legend);
    return wrap;
  }

  function pair(dl, term, value, className) {
    dl.appendChild(el("dt", term));
    dl.appendChild(el("dd", value === null || value === undefined || value === "" ? "—" : value, className));
  }

  function evidenceValue(value) {
    if (Array.isArray(value)) return value.map((v) => humanize(v)).join(", ");
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(2);
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return when(value);
    if (value && typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function actorName(actor) {
    const text = String(actor || "");
    if (text === "system") return "Skillstream";
    return text.startsWith("staff:") ? text.slice("staff:".length) : text;
  }

  function historyItem(entry) {
    const li = el("li", null, `event event-${entry.action}`);
    const head = el("div", null, "event-head");
    head.appendChild(el("strong", ACTIONS[entry.action] || humanize(entry.action), "event-action"));
    head.appendChild(el("span", `by ${actorName(entry.actor)}`, "event-actor"));
    const time = el("time", when(entry.at), "event-time");
    time.dateTime = entry.at;
    head.appendChild(time);
    li.appendChild(head);
    if (entry.from_status && entry.from_status !== entry.to_status) {
      li.appendChild(el("div", `${STATUSES[entry.from_status] || entry.from_status} → ${STATUSES[entry.to_status] || entry.to_status}`, "event-change"));
    }
    const details = entry.details || {};
    if (details.note) li.appendChild(el("blockquote", details.note, "event-note"));
    const extras = [];
    if (details.assignee) extras.push(`assigned to ${details.assignee}`);
    if (details.until) extras.push(`until ${when(details.until)}`);
    if (details.reason) extras.push(String(details.reason));
    if (extras.length) li.appendChild(el("div", extras.join(" · "), "event-extra"));
    return li;
  }

  function showDetail(alert) {
    $("detail-empty").hidden = Boolean(alert);
    $("detail-body").hidden = !alert;
    if (!alert) return;
    const kind = KINDS[alert.kind] || humanize(alert.kind);
    $("detail-heading").textContent = alert.competency ? `${kind} · ${alert.competency}` : kind;
    const status = $("detail-status");
    status.textContent = STATUSES[alert.status] || alert.status;
    status.className = `badge st st-${alert.status}`;
    $("detail-body").dataset.alertId = alert.id;
    $("detail-body").dataset.status = alert.status;

    const meta = $("detail-meta");
    clear(meta);
    if (alert.learner_name) pair(meta, "Learner", alert.learner_name);
    pair(meta, "Learner key", alert.learner_key, "mono");
    pair(meta, "Severity", humanize(alert.severity));
    pair(meta, "Support", humanize(alert.support));
    pair(meta, "Programme", alert.programme);
    pair(meta, "Business unit", alert.business_unit);
    pair(meta, "Team", alert.team);
    pair(meta, "Assignee", alert.assignee);
    pair(meta, "Signals", alert.signals);
    pair(meta, "First seen", when(alert.first_seen_at));
    pair(meta, "Last evidence", when(alert.last_seen_at));
    if (alert.snoozed_until) pair(meta, "Snoozed until", when(alert.snoozed_until));
    if (alert.resolved_at) {
      const how = alert.resolution === "auto" ? "condition cleared" : "by staff";
      pair(meta, "Resolved", `${when(alert.resolved_at)} (${how})`);
    }
    if (alert.note) pair(meta, "Note", alert.note, "note");

    const evidence = alert.evidence || {};
    $("evidence-rule").textContent = evidence.rule ? `Rule: ${evidence.rule}` : "";
    $("evidence-rule").hidden = !evidence.rule;
    const counts = $("evidence-counts");
    clear(counts);
    for (const [key, value] of Object.entries(evidence)) {
      if (!EVIDENCE_APART.has(key)) pair(counts, humanize(key), evidenceValue(value));
    }
    const trajectory = Array.isArray(evidence.mastery_trajectory) ? evidence.mastery_trajectory : [];
    const spark = $("sparkline");
    clear(spark);
    $("trajectory").hidden = trajectory.length === 0;
    if (trajectory.length) spark.appendChild(sparkline(trajectory));
    const ids = Array.isArray(evidence.statement_ids) ? evidence.statement_ids : [];
    $("statement-count").textContent = String(ids.length);
    $("statements").hidden = ids.length === 0;
    const list = $("statement-ids");
    clear(list);
    for (const id of ids) list.appendChild(el("li", id, "mono"));

    for (const button of document.querySelectorAll("#act [data-action]")) {
      const allowed = ALLOWED[button.dataset.action].includes(alert.status);
      button.disabled = !allowed;
      button.title = allowed ? "" : `Not possible while ${STATUSES[alert.status] || alert.status}`;
    }
    $("act-section").hidden = alert.status === "resolved";

    const history = $("history");
    clear(history);
    for (const entry of alert.history || []) history.appendChild(historyItem(entry));
  }

  async function loadDetail(id) {
    try {
      const alert = await api(`api/alerts/${encodeURIComponent(id)}`);
      showDetail(alert);
      return alert;
    } catch (error) {
      if (error.status === 404) {
        state.selected = null;
        showDetail(null);
        say("That alert is no longer visible to you.", "error");
      } else if (error.status !== 401) {
        say(`Could not load the alert: ${error.message}`, "error");
      }
      return null;
    }
  }

  async function select(id) {
    state.selected = id;
    for (const tr of $("alert-rows").rows) {
      if (tr.dataset.alertId === id) tr.setAttribute("aria-current", "true");
      else tr.removeAttribute("aria-current");
    }
    $("act-note").value = "";
    const alert = await loadDetail(id);
    if (alert) $("detail-heading").focus();
  }

  async function act(action) {
    if (!state.selected || state.busy) return;
    const note = $("act-note").value.trim();
    const body = note ? { note } : {};
    if (action === "assign") {
      const assignee = $("act-assignee").value.trim();
      if (!assignee) {
        say("Type who to assign the alert to.", "error");
        $("act-assignee").focus();
        return;
      }
      body.assignee = assignee;
    }
    if (action === "snooze") {
      const hours = Number($("act-snooze").value);
      body.until = new Date(Date.now() + hours * 3600 * 1000).toISOString();
    }
    state.busy = true;
    const buttons = document.querySelectorAll("#act [data-action]");
    for (const button of buttons) button.disabled = true;
    try {
      await api(`api/alerts/${encodeURIComponent(state.selected)}/${action}`, { method: "POST", body });
      $("act-note").value = "";
      if (action === "assign") $("act-assignee").value = "";
      say(`Alert ${DONE[action]}.`, "ok");
    } catch (error) {
      if (error.status !== 401) say(`Could not ${action} the alert: ${error.message}`, "error");
    } finally {
      state.busy = false;
    }
    if (sessionStorage.getItem(TOKEN_KEY)) {
      await Promise.all([loadList(), loadDetail(state.selected)]);
    }
  }

  // --- wiring ------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      $("token-error").textContent = "";
      await start();
    });
    $("sign-out").addEventListener("click", () => signOut());
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      state.offset = 0;
      loadList();
    });
    $("filters").addEventListener("reset", () => {
      state.offset = 0;
      setTimeout(loadList, 0); // after the form has put its defaults back
    });
    for (const select of $("filters").querySelectorAll("select")) {
      select.addEventListener("change", () => {
        state.offset = 0;
        loadList();
      });
    }
    $("prev").addEventListener("click", () => {
      state.offset = Math.max(0, state.offset - PAGE_SIZE);
      loadList();
    });
    $("next").addEventListener("click", () => {
      state.offset += PAGE_SIZE;
      loadList();
    });
    for (const button of document.querySelectorAll("#act [data-action]")) {
      button.addEventListener("click", () => act(button.dataset.action));
    }
    if (sessionStorage.getItem(TOKEN_KEY)) start();
    else showSignIn();
  });
})();
