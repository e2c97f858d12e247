// The page of `mqtt-policy serve`: asks /page/api/* and shows the answers. Every value goes in with
// textContent (usernames, client ids and topics come from MQTT clients), never as HTML.
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = el("tr");
  for (const c of cells) {
    if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); }
    else tr.appendChild(el("td", c));
  }
  return tr;
}

async function api(path, params) {
  const url = new URL(path, window.location.href);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
  const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
  return r.json();
}

function who(prefix) {
  return {
    user: document.getElementById(prefix + "-user").value,
    client_id: document.getElementById(prefix + "-client").value,
  };
}

async function showStatus() {
  const out = document.getElementById("status");
  try {
    const s = await api("/page/api/status");
    let text = `acl_file ${s.acl_file} (${s.rules} rules)`;
    text += s.password_file ? `; password_file ${s.password_file} (${s.users} users)` : "; no password_file";
    text += `; deciding as ${s.semantics}'s acl_file; loaded ${s.loaded_at}; ${s.fingerprint}`;
    out.textContent = text;
    for (const w of s.warnings) out.appendChild(el("div", "warning: " + w, "error"));
  } catch (e) {
    out.textContent = "cannot read the status: " + e.message;
    out.className = "error";
  }
}

function filterList(title, filters) {
  const div = el("div");
  div.appendChild(el("strong", title));
  if (filters.length === 0) { div.appendChild(el("span", " nothing", "muted")); return div; }
  const ul = el("ul", null, "filters");
  for (const f of filters) ul.appendChild(el("li", f, "mono"));
  div.appendChild(ul);
  return div;
}

async function showWho(ev) {
  if (ev) ev.preventDefault();
  const out = document.getElementById("who-result");
  out.replaceChildren(el("p", "…", "muted"));
  try {
    const v = await api("/page/api/client", who("who"));
    const parts = [];
    const name = v.username === null ? "an anonymous client" : `user "${v.username}"`;
    parts.push(el("p", `${name}, client id "${v.client_id}" (${v.semantics}'s acl_file)`));
    if (v.login) parts.push(el("p", "login: " + v.login.message, v.login.can_log_in ? "muted" : "error"));
    parts.push(filterList("May read (receive) topics matching:", v.read));
    parts.push(filterList("May write (publish) to topics matching:", v.write));
    if (v.denied.length) parts.push(filterList("Denied (checked first):", v.denied));
    const table = el("table");
    const head = el("thead");
    head.appendChild(row(["Rule", "As written", "List", "Grants", "Filter for this client"]));
    table.appendChild(head);
    const body = el("tbody");
    body.id = "who-rules";
    for (const r of v.rules) {
      const list = r.list === "user" ? `user ${r.user}` : r.list;
      body.appendChild(row([r.location, r.text, list, r.permission, r.effective_filter]));
    }
    for (const r of v.skipped) {
      body.appendChild(row([r.location, r.text, "pattern", r.permission, "does not apply: " + r.why]));
    }
    table.appendChild(body);
    parts.push(table);
    for (const n of v.notes) parts.push(el("p", n, "muted"));
    out.replaceChildren(...parts);
  } catch (e) {
    out.replaceChildren(el("p", "error: " + e.message, "error"));
  }
}

async function ask(ev) {
  if (ev) ev.preventDefault();
  const out = document.getElementById("ask-answer");
  out.className = "";
  out.textContent = "…";
  try {
    const q = who("ask");
    q.access = document.getElementById("ask-access").value;
    q.topic = document.getElementById("ask-topic").value;
    const a = await api("/page/api/check", q);
    out.textContent = a.text;
    out.className = a.verdict;
  } catch (e) {
    out.textContent = "error: " + e.message;
    out.className = "deny";
  }
}

async function showDenials() {
  const rows = document.getElementById("denials-rows");
  const note = document.getElementById("denials-note");
  try {
    const d = await api("/page/api/denials", { limit: 50 });
    note.textContent = d.note || (d.file ? `from ${d.file}, newest first` : "");
    note.className = d.note ? "error" : "muted";
    const trs = d.records.map((r) => {
      const now = r.now ? el("span", r.now, r.now) : el("span", "");
      const why = el("div");
      if (r.rule) why.appendChild(el("div", r.rule, "mono"));
      why.appendChild(el("div", r.message));
      return row([r.time, r.access, r.username === null ? "(anonymous)" : r.username,
        r.client_id, r.topic, why, now]);
    });
    if (trs.length === 0) trs.push(row(["no denial recorded", "", "", "", "", "", ""]));
    rows.replaceChildren(...trs);
  } catch (e) {
    note.textContent = "cannot read the denials: " + e.message;
    note.className = "error";
  }
}

const COUNTED = [
  "mqtt_policy_decisions_total", "mqtt_policy_logins_total", "mqtt_policy_rule_hits_total",
  "mqtt_policy_withheld_deliveries_total", "mqtt_policy_reloads_total", "mqtt_policy_policy_info",
  "mqtt_policy_shadow_loaded", "mqtt_policy_shadow_disagreements_total",
  "mqtt_policy_shadow_records_suppressed_total", "mqtt_policy_decision_duration_seconds_count",
];

async function showCounters() {
  const out = document.getElementById("counters-sources");
  try {
    const c = await api("/page/api/counters");
    const parts = [];
    for (const s of c.sources) {
      parts.push(el("h3", s.name + (s.url ? ` — ${s.url}` : "")));
      if (s.error) { parts.push(el("p", s.error, "error")); continue; }
      const table = el("table");
      table.appendChild(row(["Counter", "Labels", "Value"]));
      for (const m of s.samples.filter((m) => COUNTED.includes(m.name))) {
        let labels = Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(", ");
        if (m.rule_text) labels += `  (${m.rule_text})`;
        const tr = row([m.name, labels, m.value]);
        tr.dataset.metric = m.name;
        table.appendChild(tr);
      }
      parts.push(table);
    }
    out.replaceChildren(...parts);
  } catch (e) {
    out.replaceChildren(el("p", "cannot read the counters: " + e.message, "error"));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("who-form").addEventListener("submit", showWho);
  document.getElementById("ask-form").addEventListener("submit", ask);
  document.getElementById("denials-refresh").addEventListener("click", showDenials);
  document.getElementById("counters-refresh").addEventListener("click", showCounters);
  showStatus();
  showDenials();
  showCounters();
});
