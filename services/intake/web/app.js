// The trader's window: sign in, lodge a declaration, list one's declarations, follow one live.
// Plain ES module, no build step. Every server text is put in with textContent (never as
// HTML); the token lives in sessionStorage and travels in the Authorization header only.

const TOKEN = "sw.token";
const LANGUAGE = "sw.language";
const STATUSES = [
  "SUBMITTED", "IN_REVIEW", "RELEASED", "INSPECTION_REQUIRED", "HELD", "REJECTED", "TIMED_OUT",
  "AWAITING_PAYMENT", "WITHDRAWN", "SANCTIONED", "REMEDIATION_REQUIRED",
  "CONDITIONALLY_RELEASED", "RECALLED", "SUPPLEMENTARY_PAYMENT_DUE", "AMENDMENT_REFUSED",
];
const $ = (selector, root = document) => root.querySelector(selector);

// --- strings ---------------------------------------------------------------------------------

let strings = {};
let language = sessionStorage.getItem(LANGUAGE) || (navigator.language.startsWith("zh") ? "zh" : "en");

function t(key, fallback) {
  return strings[key] ?? fallback ?? key;
}

async function setLanguage(next) {
  const answer = await fetch(`i18n/${next}.json`);
  strings = await answer.json();
  language = next;
  sessionStorage.setItem(LANGUAGE, next);
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
  document.title = t("app.title");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-aria-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
  }
  const other = $("#language");
  other.textContent = next === "zh" ? "English" : "中文";
  other.lang = next === "zh" ? "en" : "zh-CN";
  if (lists) buildForm(currentBody());
  fillStatusFilter();
  await show();
}

// --- the token -------------------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN);
}

function claims(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const text = new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0)));
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function signedIn() {
  const jwt = token();
  const payload = jwt && claims(jwt);
  if (!payload || (payload.exp && payload.exp * 1000 < Date.now())) {
    sessionStorage.removeItem(TOKEN);
    return null;
  }
  return payload;
}

function signIn(jwt) {
  if (!claims(jwt)) return false;
  sessionStorage.setItem(TOKEN, jwt);
  location.hash = "#/list";
  return true;
}

function signOut() {
  sessionStorage.removeItem(TOKEN);
  lists = null;
  location.hash = "#/signin";
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const jwt = token();
  if (jwt) headers.Authorization = `Bearer ${jwt}`;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const answer = await fetch(path, { ...options, headers });
  if (answer.status === 401) {
    signOut();
    throw new Error(t("error.signed_out"));
  }
  return answer;
}

function announce(text) {
  const region = $("#announce");
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

// --- routing ---------------------------------------------------------------------------------

let leaving = () => {};

async function show() {
  leaving();
  leaving = () => {};
  const who = signedIn();
  for (const node of document.querySelectorAll(".signed-in")) node.hidden = !who;
  $("#who").textContent = who ? `${who.sub} · ${(who.usccs || []).join(", ")}` : "";
  let [, view, id] = location.hash.split("/");
  if (!who) view = "signin";
  else if (!["list", "new", "d"].includes(view)) view = "list";
  for (const section of document.querySelectorAll(".view")) section.hidden = true;
  const section = $(`#view-${view === "d" ? "detail" : view}`);
  section.hidden = false;
  if (view === "signin") await showSignIn();
  else if (view === "list") await showList();
  else if (view === "new") await showNew();
  else await showDetail(decodeURIComponent(id || ""));
  const heading = $("h1", section);
  heading.focus();
}

// --- sign-in ---------------------------------------------------------------------------------

let config = { dev_signin: false };

async function showSignIn() {
  $("#dev-signin").hidden = !config.dev_signin;
}

function wireSignIn() {
  $("#dev-signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#dev-uscc-error");
    const field = $("#dev-uscc");
    error.textContent = "";
    const answer = await fetch("/v1/dev/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ uscc: field.value.trim() }),
    });
    const body = await answer.json();
    if (!answer.ok) {
      field.setAttribute("aria-invalid", "true");
      error.textContent = body.detail || t("error.generic");
      return;
    }
    field.removeAttribute("aria-invalid");
    signIn(body.token);
  });
  $("#token-signin").addEventListener("submit", (event) => {
    event.preventDefault();
    const field = $("#token");
    if (!signIn(field.value.trim())) {
      field.setAttribute("aria-invalid", "true");
      $("#token-error").textContent = t("signin.bad_token");
    }
  });
  $("#sign-out").addEventListener("click", signOut);
}

// --- the list --------------------------------------------------------------------------------

let next = null;

function fillStatusFilter() {
  const select = $("#status-filter");
  const chosen = select.value;
  select.replaceChildren(new Option(t("list.all"), ""));
  for (const status of STATUSES) select.add(new Option(t(`status.${status}`), status));
  select.value = chosen;
}

function when(iso) {
  if (!iso) return "";
  const locale = language === "zh" ? "zh-CN" : "en-GB";
  return new Date(iso).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
}

async function showList(more = false) {
  const body = $("#list tbody");
  const error = $("#list-error");
  error.textContent = "";
  if (!more) {
    body.replaceChildren();
    next = null;
  }
  const query = new URLSearchParams({ limit: "20" });
  const status = $("#status-filter").value;
  if (status) query.set("status", status);
  if (more && next) query.set("after", next);
  let page;
  try {
    const answer = await api(`/v1/declarations?${query}`);
    page = await answer.json();
    if (!answer.ok) throw new Error(page.detail);
  } catch (failure) {
    error.textContent = failure.message || t("error.generic");
    return;
  }
  for (const row of page.declarations) {
    const tr = document.createElement("tr");
    const link = document.createElement("a");
    link.href = `#/d/${encodeURIComponent(row.declaration_id)}`;
    link.textContent = row.declaration_id;
    const cells = [
      link,
      t(`type.${row.declaration_type}`, row.declaration_type),
      statusBadge(row.status),
      row.next_step ? t(`next.${row.next_step.code}`, row.next_step.code) : "",
      when(row.submitted_at),
      when(row.updated_at),
    ];
    const headings = ["list.id", "list.type", "list.status", "list.next", "list.submitted", "list.updated"];
    cells.forEach((cell, i) => {
      const td = document.createElement("td");
      td.dataset.label = t(headings[i]);
      td.append(cell);
      tr.append(td);
    });
    body.append(tr);
  }
  next = page.next;
  $("#list-more").hidden = !next;
  $("#list-empty").hidden = body.children.length > 0;
  const table = $("#list");
  table.dataset.loads = String(Number(table.dataset.loads || 0) + 1); // a page shown
}

function statusBadge(status) {
  const badge = document.createElement("span");
  badge.className = `badge s-${status}`;
  badge.textContent = t(`status.${status}`, status);
  return badge;
}

// --- the form --------------------------------------------------------------------------------

let lists = null; // the code lists, once signed in
const touched = new Set();
let attempted = false;
let checking = null;

// kind: text, decimal, integer, select:<list>, bool, list (space or comma separated)
const SECTIONS = [
  ["declaration", [
    ["declaration_type", "select:declaration_types"], ["trade_mode", "select:trade_modes"],
    ["levy_nature", "select:levy_natures"], ["declaration_office", "select:customs_offices"],
    ["record_number", "text?"],
  ]],
  ["declarant", [["declarant.uscc", "text"], ["declarant.customs_code", "text"], ["declarant.name", "text"]]],
  ["domestic_party", [
    ["domestic_party.uscc", "text"], ["domestic_party.customs_code", "text"], ["domestic_party.name", "text"],
  ]],
  ["overseas_party", [["overseas_party.name", "text"], ["overseas_party.country", "select:countries"]]],
  ["valuation", [
    ["valuation.incoterm", "select:incoterms"], ["valuation.currency", "select:currencies"],
    ["valuation.freight", "decimal?"], ["valuation.insurance", "decimal?"], ["valuation.other_costs", "decimal?"],
    ["valuation.special_relationship", "bool"], ["valuation.price_influenced", "bool"],
    ["valuation.royalties_payable", "bool"],
  ]],
  ["transport", [
    ["transport.mode", "select:transport_modes"], ["transport.vessel_imo", "text?"], ["transport.voyage", "text?"],
    ["transport.bill_of_lading", "text"], ["transport.port_of_loading", "text"],
    ["transport.port_of_discharge", "text"], ["transport.containers", "list?"],
    ["transport.gross_weight_kg", "decimal"], ["transport.net_weight_kg", "decimal"],
    ["transport.packages", "integer"], ["transport.package_kind", "select:package_kinds"],
    ["transport.trade_country", "select:countries"], ["transport.departure_country", "select:countries"],
    ["transport.entry_customs", "select:customs_offices"], ["transport.entry_port", "text"],
  ]],
];
const ITEM = [
  ["hs_code", "text"], ["description", "text"], ["declaration_elements", "text"],
  ["origin_country", "select:countries"], ["quantity", "decimal"], ["unit", "select:units"],
  ["second_quantity", "decimal?"], ["second_unit", "select:units?"], ["invoice_price", "decimal"],
];
const DOCUMENT = [["type", "select:document_types"], ["reference", "text"]];

function optionsOf(name) {
  const zh = language === "zh";
  const rows = lists[name] || [];
  return rows.map((row) => {
    if (typeof row === "string") return [row, t(`${name}.${row}`, row)];
    const code = row.code || row.alpha_2 || row.alpha_3;
    const label = (zh && row.name_zh) || row.name_en || row.name || "";
    return [code, `${code} ${label}`];
  });
}

function idOf(path) {
  return `f-${path.replace(/[^a-zA-Z0-9]+/g, "-")}`;
}

function field(path, kind, labelKey) {
  const optional = kind.endsWith("?");
  kind = kind.replace("?", "");
  const wrap = document.createElement("div");
  wrap.className = kind === "bool" ? "field check" : "field";
  const id = idOf(path);
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = t(`f.${labelKey}`) + (optional ? ` (${t("new.optional")})` : "");
  let input;
  if (kind.startsWith("select:")) {
    input = document.createElement("select");
    if (optional || !kind.endsWith("types")) input.add(new Option(optional ? "—" : t("new.choose"), ""));
    for (const [value, text] of optionsOf(kind.slice(7))) input.add(new Option(text, value));
  } else {
    input = document.createElement("input");
    input.type = kind === "bool" ? "checkbox" : "text";
    if (kind === "decimal" || kind === "integer") input.inputMode = "decimal";
    input.autocomplete = "off";
    input.spellcheck = false;
  }
  input.id = id;
  input.name = path;
  input.dataset.kind = kind;
  input.dataset.optional = optional ? "1" : "";
  if (!optional && kind !== "bool") input.required = true;
  const hint = document.createElement("p");
  hint.className = "hint";
  hint.id = `${id}-hint`;
  const hintKey = `h.${labelKey}`;
  if (strings[hintKey]) hint.textContent = strings[hintKey];
  const error = document.createElement("p");
  error.className = "error";
  error.id = `${id}-error`;
  input.setAttribute("aria-describedby", `${hint.id} ${error.id}`);
  if (kind === "bool") wrap.append(input, label, error);
  else wrap.append(label, input, hint, error);
  return wrap;
}

function group(legendText, className) {
  const set = document.createElement("fieldset");
  set.className = className;
  const legend = document.createElement("legend");
  legend.textContent = legendText;
  set.append(legend);
  return set;
}

function buildForm(body) {
  const form = $("#declaration");
  form.replaceChildren();
  for (const [name, fields] of SECTIONS) {
    const set = group(t(`s.${name}`), "section");
    for (const [path, kind] of fields) set.append(field(path, kind, path));
    form.append(set);
  }
  const items = group(t("s.items"), "section");
  items.id = "items";
  form.append(items);
  const documents = group(t("s.documents"), "section");
  documents.id = "documents";
  form.append(documents);
  const addItem = button(t("new.add_item"), () => { addRow("items", ITEM, "item"); });
  const addDocument = button(t("new.add_document"), () => { addRow("documents", DOCUMENT, "document"); });
  items.append(addItem);
  documents.append(addDocument);
  fill(body || { items: [{}], documents: [] });
}

function button(text, onClick) {
  const node = document.createElement("button");
  node.type = "button";
  node.textContent = text;
  node.addEventListener("click", onClick);
  return node;
}

function addRow(where, spec, kind) {
  const container = $(`#${where}`);
  const index = container.querySelectorAll(`.${kind}`).length;
  const set = group(`${t(`s.${kind}`)} ${index + 1}`, kind);
  for (const [name, type] of spec) set.append(field(`${where}[${index}].${name}`, type, `${kind}.${name}`));
  if (kind === "item") {
    const hs = $(`input[name="items[${index}].hs_code"]`, set);
    hs.setAttribute("list", `${idOf(hs.name)}-list`);
    const options = document.createElement("datalist");
    options.id = `${idOf(hs.name)}-list`;
    set.append(options);
    hs.addEventListener("input", () => lookUp(hs, options, index));
  }
  set.append(button(t("new.remove"), () => {
    const body = currentBody();
    body[where].splice(index, 1);
    fill(body);
    schedule();
  }));
  container.insertBefore(set, container.lastElementChild);
  return set;
}

// the tariff's lines for what the HS code field holds (the latest answer of each field wins)
async function lookUp(input, options, index) {
  const query = input.value.trim();
  if (query.length < 2) return;
  const mine = String(Number(input.dataset.lookups || 0) + 1);
  input.dataset.lookups = mine;
  const answer = await api(`/v1/reference/hs?${new URLSearchParams({ q: query, limit: "15" })}`);
  if (!answer.ok || mine !== input.dataset.lookups) return;
  const { lines } = await answer.json();
  options.replaceChildren(...lines.map((line) => new Option(`${line.hs_code} ${line.description}`, line.hs_code)));
  const exact = lines.find((line) => line.hs_code === query);
  const hint = $(`#${input.id}-hint`);
  hint.textContent = exact ? exact.description : lines.length ? "" : t("new.hs_unknown");
  if (exact) {
    const unit = $(`select[name="items[${index}].unit"]`);
    const second = $(`select[name="items[${index}].second_unit"]`);
    if (unit && !unit.value && exact.unit) unit.value = exact.unit;
    if (second && !second.value && exact.second_unit) second.value = exact.second_unit;
  }
}

function fill(body) {
  for (const where of ["items", "documents"]) {
    for (const old of document.querySelectorAll(`#${where} > fieldset`)) old.remove();
    for (const _ of body[where] || []) addRow(where, where === "items" ? ITEM : DOCUMENT, where === "items" ? "item" : "document");
  }
  for (const input of $("#declaration").elements) {
    if (!input.name) continue;
    const value = get(body, input.name);
    if (input.dataset.kind === "bool") input.checked = value === true;
    else if (Array.isArray(value)) input.value = value.join(" ");
    else input.value = value === undefined || value === null ? "" : String(value);
  }
  (body.items || []).forEach((_, index) => {
    const hs = $(`input[name="items[${index}].hs_code"]`);
    if (hs && hs.value) lookUp(hs, $(`#${hs.id}-list`), index).catch(() => {});
  });
}

function get(body, path) {
  return path.split(/[.[\]]+/).filter(Boolean).reduce((node, key) => (node == null ? undefined : node[key]), body);
}

function set(body, path, value) {
  const keys = path.split(/[.[\]]+/).filter(Boolean);
  let node = body;
  keys.forEach((key, i) => {
    if (i === keys.length - 1) node[key] = value;
    else node = node[key] ??= /^\d+$/.test(keys[i + 1]) ? [] : {};
  });
}

function currentBody() {
  const body = { items: [], documents: [] };
  const form = $("#declaration");
  if (!form.elements.length) return null;
  for (const input of form.elements) {
    if (!input.name) continue;
    const kind = input.dataset.kind;
    const raw = kind === "bool" ? input.checked : input.value.trim();
    if (raw === "" && input.dataset.optional) continue;
    let value = raw;
    if (kind === "integer" && /^\d+$/.test(raw)) value = Number(raw);
    if (kind === "list") value = raw.split(/[\s,;]+/).filter(Boolean);
    set(body, input.name, value);
  }
  body.items = body.items.filter(Boolean);
  body.documents = body.documents.filter(Boolean);
  return body;
}

function inputFor(path) {
  const form = $("#declaration");
  return form.elements.namedItem(path) || form.elements.namedItem(path.replace(/\[\d+\]$/, ""));
}

function showErrors(problems) {
  const form = $("#declaration");
  for (const input of form.elements) {
    if (!input.name) continue;
    input.removeAttribute("aria-invalid");
    $(`#${input.id}-error`).textContent = "";
  }
  const summary = $("#summary");
  const list = $("ul", summary);
  list.replaceChildren();
  for (const problem of problems) {
    const input = inputFor(problem.field);
    const shown = input && (attempted || touched.has(input.name));
    if (input && !shown) continue;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      const error = $(`#${input.id}-error`);
      error.textContent = error.textContent ? `${error.textContent}; ${problem.message}` : problem.message;
    }
    if (attempted) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = input ? `#${input.id}` : "#declaration";
      link.textContent = `${problem.field}: ${problem.message}`;
      link.addEventListener("click", (event) => {
        event.preventDefault();
        (input || form).focus();
      });
      item.append(link);
      list.append(item);
    }
  }
  summary.hidden = list.children.length === 0;
}

async function validate() {
  const body = currentBody();
  const answer = await api("/v1/declarations/validate", { method: "POST", json: body });
  const result = await answer.json();
  if (answer.ok) {
    showErrors([]);
    const agencies = result.agencies.map((a) => t(`agency.${a}`, a)).join(", ");
    $("#routing").textContent = `${t("new.routed")} ${agencies}`;
    return true;
  }
  $("#routing").textContent = "";
  if (answer.status === 403) {
    showErrors([{ field: "declarant.uscc", message: result.detail }]);
  } else {
    showErrors(result.errors || [{ field: "body", message: result.detail }]);
  }
  return false;
}

function schedule() {
  clearTimeout(checking);
  checking = setTimeout(() => { validate().catch(() => {}); }, 300);
}

async function showNew() {
  if (!lists) {
    const answer = await api("/v1/reference");
    lists = await answer.json();
    buildForm(null);
  }
}

function wireForm() {
  const form = $("#declaration");
  form.addEventListener("input", (event) => {
    if (event.target.name) touched.add(event.target.name);
    schedule();
  });
  form.addEventListener("change", (event) => {
    if (event.target.name) touched.add(event.target.name);
    schedule();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    attempted = true;
    clearTimeout(checking);
    if (!(await validate())) {
      $("#summary").focus();
      return;
    }
    const key = crypto.randomUUID();
    const answer = await api("/v1/declarations", {
      method: "POST",
      json: currentBody(),
      headers: { "Idempotency-Key": key },
    });
    const result = await answer.json();
    if (answer.status !== 202) {
      showErrors(result.errors || [{ field: "body", message: result.detail }]);
      $("#summary").focus();
      return;
    }
    attempted = false;
    touched.clear();
    announce(`${t("new.lodged")} ${result.declaration_id}`);
    location.hash = `#/d/${encodeURIComponent(result.declaration_id)}`;
  });
  $("#upload").addEventListener("change", async (event) => {
    const [file] = event.target.files;
    if (!file) return;
    try {
      const body = JSON.parse(await file.text());
      fill(body);
      attempted = true;
      await validate();
    } catch {
      showErrors([{ field: "body", message: t("new.bad_file") }]);
    }
  });
  $("#example").addEventListener("click", async () => {
    const answer = await fetch("example.json");
    const body = await answer.json();
    const who = signedIn();
    if (who && who.usccs && who.usccs.length) body.declarant.uscc = who.usccs[0];
    fill(body);
    for (const input of form.elements) if (input.name) touched.add(input.name);
    await validate();
  });
}

// --- a declaration, live ---------------------------------------------------------------------

async function showDetail(id) {
  shownStatus = null;
  $("#detail-title").textContent = `${t("detail.title")} ${id}`;
  $("#detail-error").textContent = "";
  for (const part of ["#detail-status", "#detail-version", "#detail-next", "#detail-verdicts", "#detail-duties", "#detail-steps"]) {
    $(part).replaceChildren();
  }
  const stop = new AbortController();
  leaving = () => stop.abort();
  follow(id, stop.signal);
}

// Reads the status stream with fetch (an EventSource cannot send the bearer header); on a drop
// it reconnects with Last-Event-ID, waiting longer each time (1 s, 2 s, ... 15 s).
async function follow(id, signal) {
  let last = null;
  let pause = 1000;
  const live = $("#detail-live");
  while (!signal.aborted) {
    try {
      const headers = { Accept: "text/event-stream" };
      if (last !== null) headers["Last-Event-ID"] = last;
      const answer = await api(`/v1/declarations/${encodeURIComponent(id)}/events`, { headers, signal });
      if (!answer.ok) {
        // 404: not (yet) among one's declarations: just lodged, the status database may lag
        const problem = await answer.json();
        $("#detail-error").textContent = answer.status === 404 ? t("detail.unknown") : problem.detail;
        throw new Error(problem.detail);
      }
      live.hidden = false;
      pause = 1000;
      for await (const event of events(answer.body)) {
        if (event.event !== "status") continue;
        last = event.id;
        $("#detail-error").textContent = "";
        render(JSON.parse(event.data));
      }
    } catch (failure) {
      if (signal.aborted) return;
    }
    live.hidden = true;
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 15000);
  }
}

async function* events(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { data: "" };
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const at = line.indexOf(":");
        const name = at < 0 ? line : line.slice(0, at);
        const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
        event[name] = name === "data" && event.data ? `${event.data}\n${value}` : value;
      }
      if (event.event) yield event;
    }
  }
}

let shownStatus = null;

function render(view) {
  const status = $("#detail-status");
  status.replaceChildren(statusBadge(view.status));
  if (shownStatus !== null && shownStatus !== view.status) {
    announce(`${t("detail.status")}: ${t(`status.${view.status}`, view.status)}`);
  }
  shownStatus = view.status;
  $("#detail-version").textContent = view.version ? `${t("detail.version")} ${view.version}` : "";
  const nextStep = $("#detail-next");
  nextStep.replaceChildren();
  if (view.next_step) {
    const heading = document.createElement("h2");
    heading.textContent = `${t("detail.next")}: ${t(`next.${view.next_step.code}`, view.next_step.code)}`;
    const message = document.createElement("p");
    message.textContent = view.next_step.message;
    nextStep.append(heading, message);
  }
  renderVerdicts(view.verdicts || []);
  renderDuties(view.verdicts || []);
  renderNotice(view.payment_notice);
  renderInspection(view.inspection, view.findings || []);
  const steps = $("#detail-steps");
  steps.replaceChildren(...(view.steps || []).map((step) => {
    const item = document.createElement("li");
    item.append(statusBadge(step.status), ` ${when(step.decided_at)}`);
    return item;
  }));
}

function renderVerdicts(verdicts) {
  const where = $("#detail-verdicts");
  if (!verdicts.length) {
    const waiting = document.createElement("p");
    waiting.textContent = t("detail.no_decisions");
    where.replaceChildren(waiting);
    return;
  }
  where.replaceChildren(...verdicts.map((verdict) => {
    const card = document.createElement("article");
    card.className = "card verdict";
    const heading = document.createElement("h3");
    heading.textContent = `${t(`agency.${verdict.agency}`, verdict.agency)}: ${t(`decision.${verdict.decision}`, verdict.decision)}`;
    card.append(heading);
    const reasons = document.createElement("ul");
    for (const reason of verdict.reasons || []) {
      const item = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = reason.code;
      item.append(code, ` ${reason.message}`, reason.item ? ` (${t("detail.item")} ${reason.item})` : "");
      reasons.append(item);
    }
    if (reasons.children.length) card.append(reasons);
    return card;
  }));
}

function renderDuties(verdicts) {
  const lines = verdicts.flatMap((verdict) => verdict.duties || []);
  $("#detail-duties-block").hidden = lines.length === 0;
  if (!lines.length) return;
  const table = document.createElement("table");
  table.className = "list";
  const head = ["detail.item", "detail.customs_value", "detail.duty_rate", "detail.duty", "detail.vat_rate", "detail.vat"];
  const header = document.createElement("tr");
  for (const key of head) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = t(key);
    header.append(th);
  }
  const thead = document.createElement("thead");
  thead.append(header);
  const body = document.createElement("tbody");
  for (const line of lines) {
    const tr = document.createElement("tr");
    const cells = [line.item, line.customs_value_cny, line.duty_rate, line.duty, line.vat_rate, line.vat];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      td.dataset.label = t(head[i]);
      td.textContent = value;
      tr.append(td);
    });
    body.append(tr);
  }
  table.append(thead, body);
  const totals = document.createElement("p");
  const total = verdicts.map((v) => v.total_duties).filter(Boolean);
  totals.textContent = total.length ? `${t("detail.total")}: ${total.join(" + ")} CNY` : "";
  $("#detail-duties").replaceChildren(table, totals);
}

function renderNotice(notice) {
  $("#detail-notice-block").hidden = !notice;
  if (!notice) return;
  const facts = [
    ["detail.notice_id", notice.notice_id], ["detail.amount", `${notice.amount} CNY`],
    ["detail.outstanding", `${notice.outstanding} CNY`], ["detail.due_by", notice.due_by],
  ];
  $("#detail-notice").replaceChildren(...facts.flatMap(([key, value]) => {
    const term = document.createElement("dt");
    term.textContent = t(key);
    const detail = document.createElement("dd");
    detail.textContent = value;
    return [term, detail];
  }));
}

function renderInspection(order, findings) {
  $("#detail-inspection-block").hidden = !order;
  if (!order) return;
  const id = document.createElement("p");
  id.textContent = `${t("detail.order")} ${order.order_id}`;
  const checks = document.createElement("ul");
  for (const check of order.checks || []) {
    const item = document.createElement("li");
    item.textContent = `${t(`agency.${check.agency}`, check.agency)}: ${check.check}${check.item ? ` (${t("detail.item")} ${check.item})` : ""}`;
    checks.append(item);
  }
  const found = document.createElement("ul");
  for (const finding of findings) {
    const item = document.createElement("li");
    item.textContent = `${t(`agency.${finding.agency}`, finding.agency)}: ${finding.outcome}`;
    found.append(item);
  }
  $("#detail-inspection").replaceChildren(id, checks, found);
}

// --- start -----------------------------------------------------------------------------------

async function start() {
  try {
    config = await (await fetch("config.json")).json();
  } catch {
    config = { dev_signin: false };
  }
  wireSignIn();
  wireForm();
  $("#status-filter").addEventListener("change", () => showList());
  $("#list-more").addEventListener("click", () => showList(true));
  $("#language").addEventListener("click", () => setLanguage(language === "zh" ? "en" : "zh"));
  window.addEventListener("hashchange", show);
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest('a[href^="#/"]');
    if (link && link.hash === location.hash) show(); // the same page again: shown afresh
  });
  await setLanguage(language);
}

start();
