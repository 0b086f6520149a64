// orderflow console: plain ES module, no framework, no CDN. Hash routes:
//   #/signin  #/orders?status=paid&q=...  #/orders/<id>  #/new  #/stock  #/setup
// The API is reached with the token kept in sessionStorage: locally the stack's bearer token; on AWS the
// Cognito user pool's ID token (config.json says which, and where the API is). On AWS the console signs in
// through Cognito's hosted UI (authorization code + PKCE), sends `Authorization: <ID token>` to the API's
// /console-api routes, refreshes the tokens on a 401 (refresh_token grant) and signs in again when that fails.

const STATUSES = [
  ["new", "New"], ["awaiting_stock", "Awaiting stock"], ["paid", "Paid · ready to ship"],
  ["in_fulfillment", "In fulfilment"], ["partially_shipped", "Partially shipped"], ["completed", "Completed"],
  ["cancelled", "Cancelled"], ["needs_attention", "Needs attention"],
];
const LABEL = Object.fromEntries(STATUSES);
const main = document.getElementById("main");
let config = { auth: "token", api: "" };

// -- small helpers -------------------------------------------------------------------------------

const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
function html(strings, ...values) {
  return strings.reduce((out, s, i) => out + s + (i < values.length ? (values[i]?.raw ?? esc(values[i])) : ""), "");
}
const raw = (s) => ({ raw: s });
const badge = (status) => raw(`<span class="badge ${esc(status)}">${esc(LABEL[status] || status)}</span>`);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const money = (v, cur) => `${v ?? ""} ${cur ?? ""}`.trim();
function say(text) { const s = document.getElementById("status"); s.textContent = text; if (text) setTimeout(() => { if (s.textContent === text) s.textContent = ""; }, 4000); }
const token = () => sessionStorage.getItem("orderflow.token");
const KEYS = ["orderflow.token", "orderflow.access", "orderflow.refresh"];
const forget = () => KEYS.forEach((k) => sessionStorage.removeItem(k));
// Locally the stack's bearer token; Cognito's authorizer takes the ID token itself.
const authorization = () => (config.auth === "cognito" ? token() : `Bearer ${token()}`);

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status; this.body = body;
  }
  get fieldErrors() { return this.body?.error?.details?.errors || (this.body?.error?.details?.field ? [{ field: this.body.error.details.field, message: this.body.error.message }] : []); }
}

async function api(method, path, body, { blob = false } = {}) {
  let used = null;
  const send = () => {
    used = token();
    const headers = { Authorization: authorization() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    // API Gateway returns a base64-encoded answer as bytes only when the first Accept type is a binary one.
    if (blob) headers.Accept = "application/pdf, application/zpl";
    return fetch(config.api + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  };
  let res = await send();
  // An expired Cognito ID token: refresh it once (calls meeting the 401 together share one refresh; one whose
  // 401 comes back after another call refreshed just retries), then retry.
  if (res.status === 401 && config.auth === "cognito" && (token() !== used || await refreshTokens())) res = await send();
  if (res.status === 401) { forget(); location.hash = "#/signin"; throw new ApiError(401, { error: { message: "signed out: sign in again" } }); }
  if (!res.ok) { let b = null; try { b = await res.json(); } catch { /* not JSON */ } throw new ApiError(res.status, b); }
  return blob ? res.blob() : res.json();
}

function render(markup) { main.innerHTML = markup; }
function loading(what) { render(html`<p class="loading" role="status">Loading ${what}…</p>`); }
function failed(err) { render(html`<div class="banner error" role="alert"><strong>Could not load:</strong> ${err.message} <button type="button" class="secondary" id="retry">Try again</button></div>`); document.getElementById("retry").onclick = route; }
function banner(el, kind, text) { el.innerHTML = html`<div class="banner ${kind}" role="${kind === "error" ? "alert" : "status"}">${text}</div>`; }

// Run a button's action with the button disabled and the outcome shown.
async function act(button, work, okText) {
  button.disabled = true;
  const old = button.textContent; button.textContent = `${old}…`;
  try { const out = await work(); if (okText) say(okText); return out; }
  catch (err) { say(`Failed: ${err.message}`); throw err; }
  finally { button.disabled = false; button.textContent = old; }
}

// Field errors of a 422 next to the fields: inputs carry data-field="body.shipping_address.city" etc.
function showFieldErrors(form, err) {
  form.querySelectorAll(".field-error").forEach((e) => e.remove());
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  const left = [];
  for (const fe of err.fieldErrors) {
    const field = String(fe.field || "").replace(/^body\./, "");
    const input = [...form.querySelectorAll("[data-field]")].find((i) => field === i.dataset.field || field.startsWith(i.dataset.field + "."));
    if (!input) { left.push(`${field}: ${fe.message}`); continue; }
    input.setAttribute("aria-invalid", "true");
    const msg = document.createElement("div");
    msg.className = "field-error"; msg.id = `err-${input.id}`; msg.textContent = `${field}: ${fe.message}`;
    input.setAttribute("aria-describedby", msg.id);
    input.insertAdjacentElement("afterend", msg);
  }
  return left;
}

// -- sign in -------------------------------------------------------------------------------------

function signin() {
  document.getElementById("nav").hidden = true;
  if (config.auth === "cognito") return cognitoSignin();
  render(html`<section class="card signin"><h1>Sign in</h1>
    <p class="muted">Paste the token <code>make run</code> printed (the line <code>token:</code>).</p>
    <form id="f"><label for="tok">Token</label><input id="tok" name="token" type="password" autocomplete="off" required>
    <div id="msg"></div><p><button type="submit">Sign in</button></p></form></section>`);
  const form = document.getElementById("f");
  document.getElementById("tok").focus();
  form.onsubmit = async (e) => {
    e.preventDefault();
    const msg = document.getElementById("msg");
    const candidate = form.token.value.trim();
    banner(msg, "", "Checking…");
    try {
      const res = await fetch(`${config.api}/orders/counts`, { headers: { Authorization: `Bearer ${candidate}` } });
      if (res.status === 401 || res.status === 403) return banner(msg, "error", "That token was refused: copy the token line `make run` printed.");
      if (!res.ok) return banner(msg, "error", `The API answered ${res.status}; try again.`);
      sessionStorage.setItem("orderflow.token", candidate);
      location.hash = "#/orders?status=paid";
    } catch (err) { banner(msg, "error", `The API cannot be reached: ${err.message}`); }
  };
}

// Cognito hosted UI, authorization code with PKCE (RFC 7636); the ID token is what API Gateway's authorizer checks.
// The token endpoint's answers: https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const randomString = () => b64url(crypto.getRandomValues(new Uint8Array(32)));
const redirectUri = () => location.origin + location.pathname.replace(/index\.html$/, "");
function keepTokens(t) {
  sessionStorage.setItem("orderflow.token", t.id_token);
  if (t.access_token) sessionStorage.setItem("orderflow.access", t.access_token);
  if (t.refresh_token) sessionStorage.setItem("orderflow.refresh", t.refresh_token); // a refresh answers none
}
async function tokenRequest(fields) {
  const res = await fetch(`${config.cognitoDomain}/oauth2/token`, { method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ client_id: config.clientId, ...fields }) });
  let body = null; try { body = await res.json(); } catch { /* not JSON */ }
  if (!res.ok || !body?.id_token) throw new Error(body?.error_description || body?.error || `the sign-in service answered ${res.status}`);
  return body;
}
let refreshing = null;
function refreshTokens() {
  const refresh = sessionStorage.getItem("orderflow.refresh");
  if (!refresh) return Promise.resolve(false);
  refreshing ??= tokenRequest({ grant_type: "refresh_token", refresh_token: refresh })
    .then((t) => { keepTokens(t); return true; }, () => false)
    .finally(() => { refreshing = null; });
  return refreshing;
}
// Back from the hosted UI with ?code=...&state=... (or ?error=...): trade the code for tokens.
async function cognitoCallback() {
  const params = new URLSearchParams(location.search);
  const expected = sessionStorage.getItem("orderflow.state");
  const verifier = sessionStorage.getItem("orderflow.pkce");
  sessionStorage.removeItem("orderflow.state"); sessionStorage.removeItem("orderflow.pkce");
  history.replaceState(null, "", redirectUri() + "#/signin"); // the code is single-use: out of the address bar
  if (params.get("error")) return cognitoSignin(`Sign-in failed: ${params.get("error_description") || params.get("error")}`);
  if (!expected || params.get("state") !== expected || !verifier) return cognitoSignin("That sign-in did not start here; sign in again.");
  try {
    keepTokens(await tokenRequest({ grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirectUri(), code_verifier: verifier }));
  } catch (err) { return cognitoSignin(`Sign-in failed: ${err.message}`); }
  location.hash = "#/orders?status=paid";
  return route();
}
async function cognitoSignin(problem = "") {
  const verifier = randomString();
  const state = randomString();
  sessionStorage.setItem("orderflow.pkce", verifier);
  sessionStorage.setItem("orderflow.state", state);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const authorize = `${config.cognitoDomain}/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: config.clientId,
    redirect_uri: redirectUri(), scope: "openid email profile", state, code_challenge_method: "S256", code_challenge: challenge })}`;
  render(html`<section class="card signin"><h1>Sign in</h1><div id="msg"></div>
    <p class="muted">Your orderflow account: e-mail, password and authenticator app.</p>
    <p><a class="button" id="hosted-ui" href="${authorize}">Sign in with your orderflow account</a></p></section>`);
  if (problem) banner(document.getElementById("msg"), "error", problem);
}

function signout() {
  const cognito = config.auth === "cognito";
  forget();
  if (cognito) { location.assign(`${config.cognitoDomain}/logout?${new URLSearchParams({ client_id: config.clientId, logout_uri: redirectUri() })}`); return; }
  location.hash = "#/signin";
}

// -- orders --------------------------------------------------------------------------------------

async function orders(params) {
  const status = params.get("status") || "";
  const q = params.get("q") || "";
  const next = params.get("next") || "";
  loading("orders");
  let counts, page;
  try {
    const query = new URLSearchParams({ limit: "25", ...(status && { status }), ...(q && { q }), ...(next && { next }) });
    [counts, page] = await Promise.all([api("GET", "/orders/counts"), api("GET", `/orders?${query}`)]);
  } catch (err) { return failed(err); }
  const tab = (value, text, n) => raw(`<a href="#/orders?${new URLSearchParams(value ? { status: value } : {})}" ${value === status ? 'aria-current="page"' : ""}>${esc(text)}<span class="count">${n}</span></a>`);
  const needs = status === "needs_attention" && page.orders.length;
  render(html`<h1>Orders</h1>
    <nav class="tabs" aria-label="Order status">${tab("", "All", counts.total)}${raw(STATUSES.map(([s, t]) => tab(s, t, counts.counts[s] ?? 0).raw).join(""))}</nav>
    <form id="search" class="row no-print" role="search"><div><label for="q">Search: order id, channel order id, SKU or customer name</label>
      <input id="q" name="q" value="${q}" placeholder="ord_… / #1001 / MUG-12OZ / Ada"></div><button type="submit">Search</button>
      ${raw(q ? `<a class="button secondary" href="#/orders?${new URLSearchParams(status ? { status } : {})}">Clear</a>` : "")}</form>
    ${raw(needs ? '<p class="row"><button type="button" id="redrive-all" class="secondary">Redrive the selected orders</button></p><div id="progress"></div>' : "")}
    <div class="scroll"><table><caption class="muted small left">${page.orders.length ? `Newest first${q ? `, matching “${q}”` : ""}` : ""}</caption>
    <thead><tr>${raw(needs ? '<th><input type="checkbox" id="all" aria-label="Select all"></th>' : "")}<th>Order</th><th>Status</th><th class="hide-narrow">Channel</th><th>Ship to</th><th class="num">Total</th><th class="hide-narrow">Created</th></tr></thead>
    <tbody>${raw(page.orders.map((o) => html`<tr>${raw(needs ? `<td><input type="checkbox" class="pick" value="${esc(o.order_id)}" aria-label="Select ${esc(o.order_id)}"></td>` : "")}<td><a href="#/orders/${o.order_id}">${o.order_id}</a>${raw(o.attention_reason ? `<div class="small error">${esc(o.attention_reason)}</div>` : "")}</td><td>${badge(o.status)}</td><td class="hide-narrow">${o.channel ? `${o.channel} ${o.external_id}` : "manual"}</td><td>${o.shipping_address?.name}, ${o.shipping_address?.city}</td><td class="num">${money(o.total, o.currency)}</td><td class="hide-narrow">${when(o.created_at)}</td></tr>`).join(""))}</tbody></table></div>
    ${raw(page.orders.length ? "" : '<p class="muted">No orders here.</p>')}
    <p class="row">${raw(next ? `<a class="button secondary" href="#/orders?${new URLSearchParams({ ...(status && { status }), ...(q && { q }) })}">First page</a>` : "")}
    ${raw(page.next ? `<a class="button secondary" id="more" href="#/orders?${new URLSearchParams({ ...(status && { status }), ...(q && { q }), next: page.next })}">Next page</a>` : "")}</p>`);
  document.getElementById("search").onsubmit = (e) => {
    e.preventDefault();
    const value = e.target.q.value.trim();
    location.hash = `#/orders?${new URLSearchParams({ ...(status && !value && { status }), ...(value && { q: value }) })}`;
  };
  if (needs) {
    document.getElementById("all").onchange = (e) => document.querySelectorAll(".pick").forEach((c) => { c.checked = e.target.checked; });
    document.getElementById("redrive-all").onclick = (e) => redriveMany(e.target, [...document.querySelectorAll(".pick:checked")].map((c) => c.value));
  }
}

async function redriveMany(button, ids) {
  const out = document.getElementById("progress");
  if (!ids.length) return banner(out, "error", "Select the orders to redrive first.");
  button.disabled = true;
  let done = 0; const failures = [];
  const draw = () => { out.innerHTML = html`<label for="bar">Redriving ${done} of ${ids.length}</label><progress id="bar" max="${ids.length}" value="${done}"></progress>${raw(failures.map((f) => `<div class="error small">${esc(f)}</div>`).join(""))}`; };
  draw();
  for (const id of ids) {
    try { await api("POST", `/orders/${id}/redrive`, { reason: "redriven from the console" }); } catch (err) { failures.push(`${id}: ${err.message}`); }
    done += 1; draw();
  }
  button.disabled = false;
  say(`Redrove ${ids.length - failures.length} of ${ids.length}`);
  setTimeout(route, 800);
}

// -- one order -----------------------------------------------------------------------------------

async function order(id) {
  loading(`order ${id}`);
  let o, carriers;
  try { [o, carriers] = await Promise.all([api("GET", `/orders/${id}`), api("GET", "/carriers").catch(() => ({ carriers: [] }))]); } catch (err) { return failed(err); }
  const open = o.shipments.filter((s) => !s.tracking_number && ["self_ship"].includes(s.method ?? "self_ship"));
  const shippable = ["paid", "in_fulfillment", "partially_shipped"].includes(o.status);
  const a = o.shipping_address;
  const carrierList = carriers.carriers || [];
  render(html`<p class="no-print"><a href="#/orders?status=${o.status}">← ${LABEL[o.status] || o.status}</a></p>
    <h1>Order ${o.order_id} ${badge(o.status)}</h1>
    ${raw(o.attention_reason ? html`<div class="banner error" role="alert">Needs attention: ${o.attention_reason}</div>` : "")}
    ${raw(o.hold_reason ? html`<div class="banner">Held: ${o.hold_reason}</div>` : "")}
    <div id="msg"></div>
    <div class="row no-print" id="actions">
      ${raw(o.status === "needs_attention" ? '<button type="button" id="redrive">Redrive</button>' : "")}
      ${raw(shippable ? '<button type="button" id="complete" class="secondary">Mark complete</button>' : "")}
      ${raw(!["completed", "cancelled"].includes(o.status) ? '<button type="button" id="cancel" class="danger">Cancel order</button>' : "")}
    </div>
    <div class="grid">
      <section class="card"><h2>Ship to</h2><address>${a.name}<br>${a.line1}${raw(a.line2 ? "<br>" + esc(a.line2) : "")}<br>${a.postal_code} ${a.city} ${a.region ?? ""}<br>${a.country}</address>
        ${raw(o.customer ? html`<p class="small muted">Customer: ${o.customer.name ?? ""} ${o.customer.email ?? ""}</p>` : "")}</section>
      <section class="card"><h2>Summary</h2><dl class="kv"><dt>Channel</dt><dd>${o.channel ? `${o.channel} · ${o.external_id}` : "manual"}</dd>
        <dt>Created</dt><dd>${when(o.created_at)}</dd><dt>Updated</dt><dd>${when(o.updated_at)}</dd><dt>Total</dt><dd>${money(o.total, o.currency)}</dd></dl></section>
    </div>
    <h2>Lines</h2><div class="scroll"><table><thead><tr><th>SKU</th><th class="num">Qty</th><th class="num">Unit price</th></tr></thead>
      <tbody>${raw(o.lines.map((l) => html`<tr><td>${l.sku}</td><td class="num">${l.quantity}</td><td class="num">${l.unit_price}</td></tr>`).join(""))}</tbody></table></div>
    <h2>Shipments</h2>${raw(o.shipments.length ? "" : '<p class="muted">None yet (the allocation makes them).</p>')}
    <div class="scroll"><table><thead><tr><th>Shipment</th><th>Route</th><th>Status</th><th>Tracking</th><th>Label</th></tr></thead><tbody>
      ${raw(o.shipments.map((s) => html`<tr><td>${s.shipment_id}</td><td>${s.method} from ${s.warehouse_id}</td><td>${s.status}</td><td>${s.tracking_number ? `${s.carrier ?? ""} ${s.tracking_number}` : "—"}</td>
        <td>${raw(s.label?.file_key || s.label?.format || s.label ? `<button type="button" class="secondary label-view" data-shipment="${esc(s.shipment_id)}">Download</button> <button type="button" class="secondary label-print" data-shipment="${esc(s.shipment_id)}">Print</button>` : "—")}</td></tr>`).join(""))}
    </tbody></table></div>
    ${raw(shippable && open.length ? html`<div class="grid no-print">
      <section class="card"><h2>Buy a label</h2><form id="label">
        ${raw(open.length > 1 ? `<label for="l-ship">Shipment</label><select id="l-ship" name="shipment_id">${open.map((s) => `<option>${esc(s.shipment_id)}</option>`).join("")}</select>` : "")}
        <label for="l-carrier">Carrier account</label><select id="l-carrier" name="carrier_id" data-field="carrier_id">${raw(carrierList.map((c) => `<option value="${esc(c.carrier_id)}">${esc(c.carrier_id)} ${c.provider ? ` (${esc(c.provider)})` : ""}</option>`).join("") || '<option value="">default</option>')}</select>
        <label for="l-service">Service (optional)</label><input id="l-service" name="service" data-field="service" placeholder="cheapest rate">
        <div class="row"><div><label for="l-weight">Weight (oz)</label><input id="l-weight" name="weight_oz" data-field="parcel.weight_oz" inputmode="decimal" value="16" required></div>
          <div><label for="l-len">L (in)</label><input id="l-len" name="length_in" data-field="parcel.length_in" inputmode="decimal"></div>
          <div><label for="l-wid">W (in)</label><input id="l-wid" name="width_in" data-field="parcel.width_in" inputmode="decimal"></div>
          <div><label for="l-hei">H (in)</label><input id="l-hei" name="height_in" data-field="parcel.height_in" inputmode="decimal"></div></div>
        <div id="label-msg"></div><p><button type="submit">Buy label</button></p></form></section>
      <section class="card"><h2>Enter tracking</h2><p class="small muted">For a label made elsewhere.</p><form id="tracking">
        ${raw(open.length > 1 ? `<label for="t-ship">Shipment</label><select id="t-ship" name="shipment_id">${open.map((s) => `<option>${esc(s.shipment_id)}</option>`).join("")}</select>` : "")}
        <label for="t-carrier">Carrier</label><input id="t-carrier" name="carrier" data-field="carrier" required placeholder="UPS">
        <label for="t-number">Tracking number</label><input id="t-number" name="tracking_number" data-field="tracking_number" required>
        <div id="tracking-msg"></div><p><button type="submit">Save tracking</button></p></form></section></div>` : "")}
    <h2>Allocation</h2>${raw(allocationTables(o))}
    <h2>Events</h2><ol class="card">${raw(o.events.map((e) => html`<li><strong>${e.type}</strong> <span class="muted small">${when(e.at)}</span> ${e.detail ?? ""}</li>`).join(""))}</ol>
    ${raw(o.events_dropped ? `<p class="muted small">${o.events_dropped} older event(s) not kept on the order.</p>` : "")}
    <h2>Workflow trace</h2><div id="trace"><p class="loading">Loading the workflow trace…</p></div>`);

  const msg = document.getElementById("msg");
  const done = (text) => (r) => { say(text); order(id).then(() => banner(document.getElementById("msg"), "ok", text)); return r; };
  const fail = (err) => banner(msg, "error", err.message);
  const on = (sel, fn) => { const el = document.getElementById(sel); if (el) el.onclick = () => fn(el); };
  on("redrive", (b) => act(b, () => api("POST", `/orders/${id}/redrive`, { reason: "redriven from the console" })).then(done("Redriven: the workflow starts again"), fail));
  on("complete", (b) => { if (confirm("Mark this order complete?")) act(b, () => api("POST", `/orders/${id}/complete`)).then(done("Marked complete"), fail); });
  on("cancel", (b) => { const reason = prompt("Why cancel this order?", "cancelled by the seller"); if (reason) act(b, () => api("POST", `/orders/${id}/cancel`, { reason })).then(done("Cancelled"), fail); });
  document.querySelectorAll(".label-view, .label-print").forEach((b) => { b.onclick = () => label(b, id, b.dataset.shipment, b.classList.contains("label-print")); });
  const lf = document.getElementById("label");
  if (lf) lf.onsubmit = async (e) => {
    e.preventDefault();
    const f = lf.elements; const num = (x) => (x && x.value.trim() ? x.value.trim() : undefined);
    const body = { parcel: { weight_oz: num(f.weight_oz), length_in: num(f.length_in), width_in: num(f.width_in), height_in: num(f.height_in) },
      ...(f.carrier_id.value && { carrier_id: f.carrier_id.value }), ...(num(f.service) && { service: num(f.service) }), ...(f.shipment_id && { shipment_id: f.shipment_id.value }) };
    try { await act(lf.querySelector("button"), () => api("POST", `/orders/${id}/labels`, body)); done("Label bought")(); }
    catch (err) { const left = showFieldErrors(lf, err); banner(document.getElementById("label-msg"), "error", [err.message, ...left].join(" · ")); }
  };
  const tf = document.getElementById("tracking");
  if (tf) tf.onsubmit = async (e) => {
    e.preventDefault();
    const f = tf.elements;
    const body = { carrier: f.carrier.value, tracking_number: f.tracking_number.value, ...(f.shipment_id && { shipment_id: f.shipment_id.value }) };
    try { await act(tf.querySelector("button"), () => api("POST", `/orders/${id}/tracking`, body)); done("Tracking saved")(); }
    catch (err) { const left = showFieldErrors(tf, err); banner(document.getElementById("tracking-msg"), "error", [err.message, ...left].join(" · ")); }
  };
  trace(id);
  // The workflow moves on after an action (tracking resumes it, a new order is allocated): while the order is
  // between states, read it again until it settles.
  const settling = o.status === "new" || (shippable && o.shipments.length && !open.length);
  if (settling && (polls[id] = (polls[id] || 0) + 1) <= 30) {
    document.getElementById("actions").insertAdjacentHTML("beforeend", '<span class="muted small" role="status">Updating…</span>');
    setTimeout(() => { if (location.hash === `#/orders/${id}`) order(id); }, 1500);
  }
}
const polls = {};

function allocationTables(o) {
  if (!o.allocations?.length) return '<p class="muted">Not allocated yet.</p>';
  return o.allocations.map((p, i) => html`<section class="card"><h3 class="small">Plan ${p.plan_no ?? i + 1} ${p.policy_version ? `· policy ${p.policy_version}` : ""} ${p.decided_at ? `· ${when(p.decided_at)}` : ""}</h3>
    ${raw(p.candidates?.length ? html`<div class="scroll"><table><thead><tr><th>Warehouse</th><th>Kept?</th><th>Rule</th><th>Why</th></tr></thead><tbody>${raw(p.candidates.map((c) => html`<tr><td>${c.warehouse_id}</td><td class="${c.kept ? "kept" : "dropped"}">${c.kept ? "kept" : "dropped"}</td><td>${c.rule ?? ""}</td><td>${c.reason ?? c.why ?? ""}</td></tr>`).join(""))}</tbody></table></div>` : '<p class="muted small">Candidate notes are kept for the newest plan only.</p>')}
    ${raw(p.lines?.length ? html`<p class="small">Chosen: ${p.lines.map((l) => `${l.quantity} × ${l.sku} from ${l.warehouse_id}`).join(", ")}</p>` : "")}
    ${raw(p.backordered?.length ? html`<p class="small error">Backordered: ${p.backordered.map((l) => `${l.quantity} × ${l.sku}`).join(", ")}</p>` : "")}</section>`).join("");
}

async function label(button, orderId, shipmentId, print) {
  try {
    const blob = await act(button, () => api("GET", `/orders/${orderId}/labels/${shipmentId}`, undefined, { blob: true }));
    const url = URL.createObjectURL(blob);
    if (!print) {
      const a = document.createElement("a"); a.href = url; a.download = `${shipmentId}.${blob.type.includes("pdf") ? "pdf" : "zpl"}`;
      a.id = "label-link"; a.textContent = "label"; document.body.append(a); a.click(); a.remove();
      return;
    }
    const frame = document.createElement("iframe");
    frame.style.display = "none"; frame.src = url; frame.title = "label to print";
    frame.onload = () => { try { frame.contentWindow.print(); } catch { window.open(url); } };
    document.body.append(frame);
  } catch (err) { banner(document.getElementById("msg"), "error", `Label: ${err.message}`); }
}

async function trace(id) {
  const box = document.getElementById("trace");
  let t;
  try { t = await api("GET", `/orders/${id}/trace`); } catch (err) { box.innerHTML = html`<p class="error">Could not read the trace: ${err.message}</p>`; return; }
  if (!document.body.contains(box)) return;
  if (!t.executions.length) { box.innerHTML = '<p class="muted">No workflow execution yet.</p>'; return; }
  box.innerHTML = t.executions.map((x) => html`<section class="card"><h3 class="small">${x.name} · ${x.status} · started ${when(x.started_at)}
      ${raw(x.console_url ? `· <a href="${esc(x.console_url)}" target="_blank" rel="noopener">open in the Step Functions console</a>` : "")}</h3>
    <div class="scroll"><table><thead><tr><th class="num">+s</th><th>Event</th><th>State</th><th>Detail</th></tr></thead><tbody>
    ${raw(x.events.filter((e) => /State(Entered|Exited)|Failed|TimedOut|Retry|Aborted|Succeeded$/.test(e.type)).map((e) => html`<tr><td class="num">${e.offset_s}</td><td>${e.type}</td><td>${e.state ?? ""}</td><td class="small ${e.error ? "error" : "muted"}">${e.error ? `${e.error}: ${e.cause ?? ""}` : ""}</td></tr>`).join(""))}
    </tbody></table></div></section>`).join("");
}

// -- new order -----------------------------------------------------------------------------------

function newOrder() {
  const line = (i) => `<div class="row line"><div><label for="sku${i}">SKU</label><input id="sku${i}" name="sku" data-field="lines.${i}.sku"></div>
    <div><label for="qty${i}">Quantity</label><input id="qty${i}" name="quantity" data-field="lines.${i}.quantity" inputmode="numeric" value="1"></div>
    <div><label for="price${i}">Unit price</label><input id="price${i}" name="unit_price" data-field="lines.${i}.unit_price" inputmode="decimal"></div></div>`;
  const field = (name, text, extra = "") => `<div><label for="a-${name}">${text}</label><input id="a-${name}" name="${name}" data-field="shipping_address.${name}" ${extra}></div>`;
  render(html`<h1>New order</h1><form id="f" class="card" novalidate>
    <h2>Lines</h2><div id="lines">${raw(line(0))}</div><p><button type="button" class="secondary" id="add">Add a line</button></p>
    <h2>Ship to</h2><div class="row">${raw(field("name", "Name") + field("line1", "Address") + field("line2", "Address line 2"))}</div>
    <div class="row">${raw(field("city", "City") + field("region", "Region / state") + field("postal_code", "Postal code") + field("country", "Country (2 letters)", 'maxlength="2"'))}</div>
    <h2>Customer (optional)</h2><div class="row"><div><label for="c-name">Name</label><input id="c-name" name="customer_name" data-field="customer.name"></div>
      <div><label for="c-email">Email</label><input id="c-email" name="customer_email" data-field="customer.email" type="email"></div></div>
    <div id="msg"></div><p><button type="submit">Create order</button></p></form>`);
  let n = 1;
  document.getElementById("add").onclick = () => { document.getElementById("lines").insertAdjacentHTML("beforeend", line(n)); n += 1; };
  const form = document.getElementById("f");
  form.onsubmit = async (e) => {
    e.preventDefault();
    const v = (id) => { const x = document.getElementById(id); return x && x.value.trim() !== "" ? x.value.trim() : undefined; };
    const lines = [...form.querySelectorAll(".line")].map((row) => {
      const [sku, qty, price] = row.querySelectorAll("input");
      return { sku: sku.value.trim(), quantity: /^\d+$/.test(qty.value.trim()) ? Number(qty.value) : qty.value, ...(price.value.trim() && { unit_price: price.value.trim() }) };
    });
    const address = Object.fromEntries(["name", "line1", "line2", "city", "region", "postal_code", "country"].map((k) => [k, v(`a-${k}`)]).filter(([, x]) => x !== undefined));
    const customer = { ...(v("c-name") && { name: v("c-name") }), ...(v("c-email") && { email: v("c-email") }) };
    const body = { lines, shipping_address: address, ...(Object.keys(customer).length && { customer }) };
    try {
      const created = await act(form.querySelector("button[type=submit]"), () => api("POST", "/orders", body));
      location.hash = `#/orders/${created.order_id}`;
    } catch (err) {
      const left = showFieldErrors(form, err);
      banner(document.getElementById("msg"), "error", `The order was not created: ${[err.message, ...left].join(" · ")}`);
      form.querySelector("[aria-invalid=true]")?.focus();
    }
  };
}

// -- stock ---------------------------------------------------------------------------------------

async function stock() {
  loading("stock");
  let levels, pos, waiting, warehouses;
  try {
    [levels, pos, waiting, warehouses] = await Promise.all([api("GET", "/inventory"), api("GET", "/purchase-orders"),
      api("GET", "/orders?status=awaiting_stock&limit=50"), api("GET", "/warehouses")]);
  } catch (err) { return failed(err); }
  const whOptions = warehouses.warehouses.map((w) => `<option value="${esc(w.warehouse_id)}">${esc(w.warehouse_id)}</option>`).join("");
  render(html`<h1>Stock</h1><div id="msg"></div>
    <h2>Levels</h2><div class="scroll"><table><thead><tr><th>SKU</th><th>Warehouse</th><th class="num">On hand</th><th class="num">Committed</th><th class="num">Available</th></tr></thead><tbody>
    ${raw(levels.levels.map((l) => html`<tr><td><button type="button" class="link ledger" data-sku="${l.sku}">${l.sku}</button></td><td>${l.warehouse_id}</td><td class="num">${l.on_hand}</td><td class="num">${l.committed}</td><td class="num">${l.available ?? l.on_hand - l.committed}</td></tr>`).join(""))}</tbody></table></div>
    <div id="ledger"></div>
    <section class="card"><h2>Adjust stock</h2><form id="adjust" class="row">
      <div><label for="adj-sku">SKU</label><input id="adj-sku" name="sku" required data-field="sku"></div>
      <div><label for="adj-wh">Warehouse</label><select id="adj-wh" name="warehouse_id">${raw(whOptions)}</select></div>
      <div><label for="adj-delta">Change (+/−)</label><input id="adj-delta" name="delta" inputmode="numeric" required data-field="delta"></div>
      <div><label for="adj-reason">Reason</label><input id="adj-reason" name="reason" value="count" data-field="reason"></div>
      <button type="submit">Apply</button></form></section>
    <h2>Backordered orders <span class="count">${waiting.orders.length}</span></h2>
    ${raw(waiting.orders.length ? html`<ul>${raw(waiting.orders.map((o) => html`<li><a href="#/orders/${o.order_id}">${o.order_id}</a>: ${o.lines.map((l) => `${l.quantity} × ${l.sku}`).join(", ")}</li>`).join(""))}</ul>` : '<p class="muted">None: nothing waits for stock.</p>')}
    <h2>Purchase orders</h2><div class="scroll"><table><thead><tr><th>PO</th><th>Supplier</th><th>Warehouse</th><th>Status</th><th>Lines (received / ordered)</th><th></th></tr></thead><tbody>
    ${raw(pos.purchase_orders.map((p) => html`<tr><td>${p.po_id}</td><td>${p.supplier}</td><td>${p.warehouse_id}</td><td>${p.status}</td><td>${p.lines.map((l) => `${l.sku} ${l.received}/${l.quantity}`).join(", ")}</td>
      <td>${raw(p.status === "draft" ? `<button type="button" class="secondary po-submit" data-po="${esc(p.po_id)}">Submit</button>` : "")}
      ${raw(["ordered", "submitted", "partially_received"].includes(p.status) ? `<button type="button" class="po-receive" data-po="${esc(p.po_id)}">Receive all</button>` : "")}</td></tr>`).join(""))}</tbody></table></div>
    <section class="card"><h2>New purchase order</h2><form id="po" class="row">
      <div><label for="po-supplier">Supplier</label><input id="po-supplier" name="supplier" data-field="supplier" required></div>
      <div><label for="po-wh">Warehouse</label><select id="po-wh" name="warehouse_id">${raw(whOptions)}</select></div>
      <div><label for="po-sku">SKU</label><input id="po-sku" name="sku" data-field="lines" required></div>
      <div><label for="po-qty">Quantity</label><input id="po-qty" name="quantity" inputmode="numeric" required></div>
      <div><label for="po-status">As</label><select id="po-status" name="status"><option value="draft">draft</option><option value="ordered">ordered</option></select></div>
      <button type="submit">Create</button></form></section>`);
  const msg = document.getElementById("msg");
  const fail = (err) => banner(msg, "error", err.message);
  document.querySelectorAll(".ledger").forEach((b) => { b.onclick = async () => {
    const box = document.getElementById("ledger"); box.innerHTML = '<p class="loading">Loading the ledger…</p>';
    try { const s = await api("GET", `/inventory/${encodeURIComponent(b.dataset.sku)}`);
      box.innerHTML = html`<section class="card"><h2>Recent changes of ${s.sku}</h2><div class="scroll"><table><thead><tr><th>When</th><th>Warehouse</th><th>Kind</th><th class="num">On hand Δ</th><th class="num">Committed Δ</th><th>Reason / order</th></tr></thead><tbody>${raw(s.ledger.map((e) => html`<tr><td>${when(e.at)}</td><td>${e.warehouse_id}</td><td>${e.kind}</td><td class="num">${e.d_on_hand ?? e.delta ?? ""}</td><td class="num">${e.d_committed ?? ""}</td><td>${e.reason ?? e.order_id ?? ""}</td></tr>`).join(""))}</tbody></table></div></section>`;
    } catch (err) { box.innerHTML = html`<p class="error">${err.message}</p>`; }
  }; });
  const adj = document.getElementById("adjust");
  adj.onsubmit = async (e) => {
    e.preventDefault();
    const f = adj.elements;
    try {
      const out = await act(adj.querySelector("button"), () => api("POST", `/inventory/${encodeURIComponent(f.sku.value.trim())}/${f.warehouse_id.value}/adjustments`,
        { delta: /^-?\d+$/.test(f.delta.value.trim()) ? Number(f.delta.value) : f.delta.value, reason: f.reason.value }));
      await stock(); banner(document.getElementById("msg"), "ok", `Adjusted; released ${out.released_orders.length} waiting order(s).`);
    } catch (err) { showFieldErrors(adj, err); fail(err); }
  };
  document.querySelectorAll(".po-submit").forEach((b) => { b.onclick = () => act(b, () => api("POST", `/purchase-orders/${b.dataset.po}/submit`)).then(stock, fail); });
  document.querySelectorAll(".po-receive").forEach((b) => { b.onclick = async () => {
    const p = pos.purchase_orders.find((x) => x.po_id === b.dataset.po);
    const lines = p.lines.filter((l) => l.quantity > l.received).map((l) => ({ sku: l.sku, quantity: l.quantity - l.received }));
    try {
      const out = await act(b, () => api("POST", `/purchase-orders/${p.po_id}/receive`, { lines }));
      await stock(); banner(document.getElementById("msg"), "ok", `Received ${p.po_id}; released ${out.released_orders.length} waiting order(s): ${out.released_orders.join(", ")}`);
    } catch (err) { fail(err); }
  }; });
  const po = document.getElementById("po");
  po.onsubmit = async (e) => {
    e.preventDefault();
    const f = po.elements;
    const body = { supplier: f.supplier.value.trim(), warehouse_id: f.warehouse_id.value, status: f.status.value,
      lines: [{ sku: f.sku.value.trim(), quantity: /^\d+$/.test(f.quantity.value.trim()) ? Number(f.quantity.value) : f.quantity.value }] };
    try { await act(po.querySelector("button"), () => api("POST", "/purchase-orders", body)); await stock(); say("Purchase order created"); }
    catch (err) { showFieldErrors(po, err); fail(err); }
  };
}

// -- setup (read-mostly) ---------------------------------------------------------------------------

async function setup() {
  loading("setup");
  const get = (path, key) => api("GET", path).then((b) => b[key] || []).catch((err) => ({ error: err.message }));
  const [channels, warehouses, carriers, suppliers, fba] = await Promise.all([get("/channels", "channels"), get("/warehouses", "warehouses"),
    get("/carriers", "carriers"), get("/suppliers", "suppliers"), get("/fba", "fba_accounts")]);
  // Secrets are never shown: the API leaves them out, and the console shows only these plain fields.
  const table = (rows, cols) => (rows.error ? html`<p class="error">${rows.error}</p>` : !rows.length ? '<p class="muted">None.</p>'
    : html`<div class="scroll"><table><thead><tr>${raw(cols.map(([, t]) => `<th>${esc(t)}</th>`).join(""))}</tr></thead><tbody>${raw(rows.map((r) => `<tr>${cols.map(([k]) => `<td>${esc(typeof k === "function" ? k(r) : r[k])}</td>`).join("")}</tr>`).join(""))}</tbody></table></div>`);
  render(html`<h1>Setup</h1><div id="msg"></div>
    <h2>Channels</h2>${raw(channels.error ? table(channels) : !channels.length ? '<p class="muted">None connected.</p>' : html`<div class="scroll"><table><thead><tr><th>Channel</th><th>Type</th><th>Last import</th><th>Watermark</th><th></th></tr></thead><tbody>${raw(channels.map((c) => html`<tr><td>${c.channel_id}</td><td>${c.type ?? c.channel_type ?? ""}</td><td>${c.last_run ? `${when(c.last_run.finished_at ?? c.last_run.at)} ${JSON.stringify(c.last_run.counts ?? c.last_run.result ?? "")}` : "never"}</td><td>${c.cursor?.watermark ?? c.watermark ?? ""}</td><td><button type="button" class="secondary import" data-channel="${c.channel_id}">Import now</button></td></tr>`).join(""))}</tbody></table></div>`)}
    <div id="import-progress"></div>
    <h2>Warehouses</h2>${raw(table(warehouses, [["warehouse_id", "Id"], ["name", "Name"], ["kind", "Kind"], ["priority", "Priority"], [(w) => [w.address?.city, w.address?.country].filter(Boolean).join(", "), "Where"]]))}
    <h2>Carriers</h2>${raw(table(carriers, [["carrier_id", "Account"], [(c) => c.provider ?? c.kind ?? "", "Provider"], [(c) => c.default_service ?? "", "Default service"], [(c) => (c.is_default ? "yes" : ""), "Default"]]))}
    <h2>Suppliers</h2>${raw(table(suppliers, [["warehouse_id", "Warehouse"], [(s) => s.sftp?.host ?? s.host ?? "", "SFTP host"], [(s) => s.sla_hours ?? "", "SLA (h)"]]))}
    <h2>FBA accounts</h2>${raw(table(fba, [["warehouse_id", "Warehouse"], [(a) => a.marketplace_id ?? a.region ?? "", "Marketplace"]]))}`);
  document.querySelectorAll(".import").forEach((b) => { b.onclick = async () => {
    const box = document.getElementById("import-progress");
    box.innerHTML = html`<label for="imp">Importing ${b.dataset.channel}…</label><progress id="imp"></progress>`;
    try { const r = await act(b, () => api("POST", `/channels/${b.dataset.channel}/import`));
      banner(box, "ok", `${b.dataset.channel}: ${JSON.stringify(r.counts ?? r)}`);
    } catch (err) { banner(box, "error", `${b.dataset.channel}: ${err.message}`); }
  }; });
}

// -- routing ---------------------------------------------------------------------------------------

async function route() {
  const [path, query] = (location.hash.slice(1) || "/orders").split("?");
  const params = new URLSearchParams(query || "");
  if (!token() || path === "/signin") return signin();
  document.getElementById("nav").hidden = false;
  document.querySelectorAll("#nav a").forEach((a) => (a.getAttribute("href").slice(1) === path.split("/").slice(0, 2).join("/") ? a.setAttribute("aria-current", "page") : a.removeAttribute("aria-current")));
  const m = path.match(/^\/orders\/([^/]+)$/);
  if (m) await order(decodeURIComponent(m[1]));
  else if (path === "/new") newOrder();
  else if (path === "/stock") await stock();
  else if (path === "/setup") await setup();
  else await orders(params);
  main.focus({ preventScroll: true });
}

async function start() {
  try { const r = await fetch("config.json"); if (r.ok) config = { ...config, ...(await r.json()) }; } catch { /* defaults: same origin, token */ }
  document.getElementById("signout").onclick = signout;
  window.addEventListener("hashchange", route);
  const back = new URLSearchParams(location.search);
  if (config.auth === "cognito" && (back.has("code") || back.has("error"))) return cognitoCallback();
  route();
}
start();
