// The sub-campaign page: pass cards with funnels, updated by server-sent events,
// and the manager's actions (pause, resume, stop, amend with a preview first).
"use strict";

const header = document.querySelector("header.sub");
const sub = header.dataset.sub;
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
};
const pct = (part, whole) => (whole ? Math.round((1000 * part) / whole) / 10 : 0);

function bar(label, value, whole, kind) {
  const row = el("div", { class: "bar-row" });
  const fill = el("div", { class: `bar ${kind}`, style: `width:${pct(value, whole)}%` });
  row.append(el("span", { class: "label" }, label), el("div", { class: "track" }, fill),
             el("span", { class: "value", "data-label": label }, value.toLocaleString()));
  return row;
}

function card(pass) {
  const f = pass.funnel;
  const node = el("article", { class: `pass ${pass.status}`, id: `pass-${pass.number}` });
  node.append(el("h3", {}, `${pass.number}. ${pass.name} `,
                 el("small", {}, `${pass.channel} · `),
                 el("span", { class: `status ${pass.status}` }, pass.status)));
  if (pass.note) node.append(el("p", { class: "note" }, pass.note));
  const whole = Math.max(f.selected, 1);
  const funnel = el("div", { class: "funnel" });
  funnel.append(bar("selected", f.selected, whole, "selected"),
                bar("attempted", f.attempted, whole, "attempted"),
                bar("skipped", f.skipped, whole, "skipped"));
  for (const [group, count] of Object.entries(f.groups)) {
    funnel.append(bar(`group ${group}`, count, whole, "group"));
  }
  node.append(funnel);
  const stacked = el("div", { class: "stacked", title: "attempt rows by result code" });
  const rows = Object.values(f.results).reduce((a, b) => a + b, 0) || 1;
  for (const [code, count] of Object.entries(f.results)) {
    stacked.append(el("span", { class: `code c-${code}`, style: `flex:${count}`,
                                 title: `${code}: ${count}` }, count / rows > 0.08 ? code : ""));
  }
  node.append(stacked);
  const skips = Object.entries(pass.skips_by_reason);
  if (skips.length) {
    node.append(el("p", { class: "skips" },
      "skip rows by reason: " + skips.map(([reason, n]) => `${reason} ${n}`).join(" · ")));
  }
  const rates = [];
  if (pass.rates.contact !== null) rates.push(`contact ${(100 * pass.rates.contact).toFixed(1)}%`);
  if (pass.rates.abandon !== null) rates.push(`abandon ${(100 * pass.rates.abandon).toFixed(1)}%`);
  if (pass.rates.agent_utilisation !== null) {
    rates.push(`agents busy ${(100 * pass.rates.agent_utilisation).toFixed(1)}%`);
  }
  if (rates.length) node.append(el("p", { class: "rates" }, rates.join(" · ")));
  node.append(el("p", { class: "remaining" }, `remaining ${pass.remaining.toLocaleString()}`));
  return node;
}

function render(status) {
  if (status.error) {
    document.getElementById("action-result").textContent = status.error;
    return;
  }
  const state = document.getElementById("state");
  state.textContent = status.state;
  state.className = `state ${status.state}`;
  document.getElementById("day").textContent = status.day || "…";
  document.getElementById("db-ms").textContent = status.db_ms;
  const passes = document.getElementById("passes");
  passes.replaceChildren(...status.passes.map(card));
  const select = document.getElementById("amend-pass");
  const pending = status.passes.filter((p) => p.status === "pending" || p.status === "waiting");
  const chosen = select.value;
  select.replaceChildren(...pending.map((p) => el("option", { value: p.name }, `${p.number}. ${p.name}`)));
  if (pending.some((p) => p.name === chosen)) select.value = chosen;
  document.getElementById("amendments").replaceChildren(...status.amendments.map((a) =>
    el("li", {}, `#${a.number} ${a.outcome} by ${a.author}: ${a.operations.join(", ")} ${a.reason ? "(" + a.reason + ")" : ""} ${a.message || ""}`)));
  document.getElementById("actions").replaceChildren(...status.actions.map((a) =>
    el("li", {}, `${a.at} ${a.actor} ${a.action} ${a.detail} → ${a.outcome}`)));
}

async function post(path, body) {
  const response = await fetch(`/api/sub/${sub}/${path}`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify(body), credentials: "same-origin",
  });
  return [response.status, await response.json()];
}

for (const button of document.querySelectorAll("[data-action]")) {
  button.addEventListener("click", async () => {
    const action = button.dataset.action;
    if (action === "stop" && !confirm("Stop is final: the sub-campaign cannot resume. Stop?")) return;
    const [, result] = await post("lifecycle", { action });
    document.getElementById("action-result").textContent = `${action}: ${result.outcome}`;
  });
}

const amendForm = document.getElementById("amend");
const confirmButton = document.getElementById("amend-confirm");
const amendResult = document.getElementById("amend-result");
const amendment = () => ({
  pass: document.getElementById("amend-pass").value,
  filter: document.getElementById("amend-filter").value,
  reason: document.getElementById("amend-reason").value,
});
document.getElementById("amend-filter").addEventListener("input", () => { confirmButton.disabled = true; });
document.getElementById("amend-preview").addEventListener("click", async () => {
  const [status, result] = await post("preview", amendment());
  confirmButton.disabled = status !== 200;
  amendResult.textContent = status === 200
    ? `would select ${result.selected.toLocaleString()} contacts now — confirm to apply`
    : result.error;
});
amendForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const [, result] = await post("amend", amendment());
  amendResult.textContent = result.outcome;
  confirmButton.disabled = true;
});

const source = new EventSource(`/events/${sub}`);
source.onmessage = (event) => render(JSON.parse(event.data));
