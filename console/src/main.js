// The merchant console: a person logs in with an admin session and works through the public
// GraphQL API only (what their role allows, a second factor where money moves). No framework:
// a hash router, a few pages rendering into <main>, uPlot for the time series.
import uPlot from "uplot";
import { STRINGS, DIRECTIONS } from "./i18n.js";
import { major, minorDigits } from "./money.js";

const TOKEN_KEY = "referral.console.session";
const LOCALE_KEY = "referral.console.locale";
const state = { locale: localStorage.getItem(LOCALE_KEY) || "en", programId: null, charts: [] };

// --- text ------------------------------------------------------------------------------------------
const t = (key, values = {}) =>
  (STRINGS[state.locale][key] ?? STRINGS.en[key] ?? key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
const number = (value) => new Intl.NumberFormat(state.locale).format(value);
const percent = (value) =>
  value === null || value === undefined ? "–" : new Intl.NumberFormat(state.locale, { style: "percent", maximumFractionDigits: 1 }).format(value);
function money(amount, unit) {
  if (unit === "POINTS") return `${number(amount)} ${t("points")}`;
  if (unit === "PERCENT") return percent(amount / 10000);
  return new Intl.NumberFormat(state.locale, { style: "currency", currency: unit }).format(major(amount, unit));
}

// --- DOM -------------------------------------------------------------------------------------------
function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false)
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}
const main = () => document.getElementById("main");
function announce(message) {
  const status = document.getElementById("status");
  status.textContent = "";
  setTimeout(() => (status.textContent = message), 30);
}
function table(caption, headers, rows) {
  return h("table", {},
    h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, rows.length ? rows.map((row) => h("tr", {}, row.map((cell, i) =>
      i === 0 ? h("th", { scope: "row" }, cell) : h("td", {}, cell)))) :
      h("tr", {}, h("td", { colspan: String(headers.length), text: t("nothing") }))));
}

// --- API -------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(message, code) { super(message); this.code = code; }
}
async function post(query, variables) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}
async function gql(query, variables = {}) {
  const body = await post(query, variables);
  if (body.errors?.length) {
    const code = body.errors[0].extensions?.code;
    if (code === "UNAUTHENTICATED") { sessionStorage.removeItem(TOKEN_KEY); location.hash = "#/login"; }
    throw new ApiError(body.errors[0].message, code);
  }
  return body.data;
}
// A document of several aliased mutations: each field's payload or error, none thrown.
async function gqlFields(query, variables) {
  const body = await post(query, variables);
  const errors = {};
  for (const e of body.errors || []) errors[e.path?.[0] ?? "*"] = e.message;
  return { data: body.data || {}, errors };
}
function userErrors(payload) {
  if (payload.userErrors?.length) throw new ApiError(payload.userErrors.map((e) => e.message).join("; "), payload.userErrors[0].code);
  return payload;
}

// --- the frame: header, navigation, language ------------------------------------------------------
function applyLocale() {
  document.documentElement.lang = state.locale;
  document.documentElement.dir = DIRECTIONS[state.locale];
  document.title = t("title");
}
function frame() {
  applyLocale();
  const nav = document.getElementById("nav");
  nav.replaceChildren();
  if (!sessionStorage.getItem(TOKEN_KEY)) return;
  const links = [["#/overview", t("overview")], ["#/reviews", t("reviews")], ["#/payouts", t("payouts")], ["#/rules", t("rules")],
    ["#/webhooks", t("webhooks")], ["#/keys", t("keys")]];
  nav.append(h("ul", {}, links.map(([href, label]) =>
    h("li", {}, h("a", { href, "aria-current": location.hash.startsWith(href) ? "page" : false, text: label })))),
  h("button", { type: "button", class: "link", onclick: logout, text: t("logout") }));
}
function languagePicker() {
  const select = h("select", { id: "language", onchange: (e) => {
    state.locale = e.target.value;
    localStorage.setItem(LOCALE_KEY, state.locale);
    route();
  } }, Object.keys(STRINGS).map((code) => h("option", { value: code, selected: code === state.locale, text: STRINGS[code].language })));
  return h("div", { class: "language" }, h("label", { for: "language", text: t("languageLabel") }), select);
}

// --- pages -----------------------------------------------------------------------------------------
function loginPage() {
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card narrow", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    error.textContent = "";
    try {
      const result = userErrors((await gql(
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token userErrors { field code message } } }",
        { e: data.get("email"), p: data.get("password") })).login);
      sessionStorage.setItem(TOKEN_KEY, result.token);
      location.hash = "#/overview";
    } catch (e) {
      error.textContent = t("loginFailed");
    }
  } },
  h("h1", { text: t("login") }),
  h("label", { for: "email", text: t("email") }), h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true }),
  h("label", { for: "password", text: t("password") }),
  h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }),
  h("button", { type: "submit", text: t("login") }), error);
  main().replaceChildren(languagePicker(), form);
  form.querySelector("input").focus();
}

async function logout() {
  try { await gql("mutation { logout { userErrors { code } } }"); } catch { /* the session may be gone already */ }
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = "#/login";
}

const OVERVIEW = `query($p: ID!, $from: Date!, $to: Date!) {
  programAnalytics(programId: $p, from: $from, to: $to) {
    timeZone rolledUpAt
    funnel { total { clicks signups referred qualified rewarded signupRate referralRate qualificationRate rewardRate }
             byChannel { channel clicks referred qualified } }
    money { revenue { currency gross refunded net } rewardCost { kind unit granted takenBack net } couponsRedeemed { unit count amount }
            returns { currency netRevenue cost costPerAcquiredCustomer roi } commission { currency earned paid owed } }
    referrers(first: 10) { leaderboard { rank previousRank rankChange customerExternalId qualified referred revenue { currency amount } }
                           codeHolders activeReferrers shareReferring invitesPerCustomer inviteConversion kFactor }
    series(granularity: DAY, measures: ["referred", "qualified", "revenue"]) { start measure dimension unit count amount }
  }
}`;

function isoDay(date) { return date.toISOString().slice(0, 10); }
const todayIn = (zone) => new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
function addDays(day, n) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + n);
  return isoDay(date);
}

async function overviewPage() {
  const programs = (await gql("query { programs(first: 50) { edges { node { id name } } } }")).programs.edges.map((e) => e.node);
  if (!programs.length) { main().replaceChildren(h("h1", { text: t("overview") }), h("p", { text: t("noPrograms") })); return; }
  state.programId = state.programId || programs[0].id;
  const days = Number(new URLSearchParams(location.hash.split("?")[1] || "").get("days") || 30);
  // the last n days of the merchant's calendar (their time zone), which the API keeps ranked
  state.zone ??= (await gql("query($p: ID!, $d: Date!) { programAnalytics(programId: $p, from: $d, to: $d) { timeZone } }",
    { p: state.programId, d: isoDay(new Date()) })).programAnalytics.timeZone;
  const to = todayIn(state.zone); const from = addDays(to, 1 - days);
  const a = (await gql(OVERVIEW, { p: state.programId, from, to })).programAnalytics;
  const total = a.funnel.total;
  const steps = [["clicks", total.clicks], ["signups", total.signups], ["referred", total.referred], ["qualified", total.qualified], ["rewarded", total.rewarded]];
  const widest = Math.max(1, ...steps.map(([, v]) => v));
  const picker = h("select", { id: "program", onchange: (e) => { state.programId = e.target.value; route(); } },
    programs.map((p) => h("option", { value: p.id, selected: p.id === state.programId, text: p.name })));
  const period = h("select", { id: "period", onchange: (e) => { location.hash = `#/overview?days=${e.target.value}`; } },
    [7, 30, 90, 365].map((d) => h("option", { value: String(d), selected: d === days, text: t("lastDays", { days: number(d) }) })));
  const k = a.referrers;
  main().replaceChildren(
    h("h1", { text: t("overview") }),
    h("div", { class: "controls" }, h("label", { for: "program", text: t("program") }), picker,
      h("label", { for: "period", text: t("period") }), period, languagePicker()),
    h("p", { class: "muted", text: t("rolledUp", { zone: a.timeZone, at: a.rolledUpAt ? new Date(a.rolledUpAt).toLocaleString(state.locale) : "–" }) }),
    h("section", { "aria-labelledby": "funnel-title", class: "card" },
      h("h2", { id: "funnel-title", text: t("funnel") }),
      h("ol", { class: "funnel" }, steps.map(([key, value]) => h("li", {},
        h("span", { class: "step", text: t(key) }),
        h("span", { class: "bar", style: `inline-size: ${(100 * value) / widest}%` }),
        h("span", { class: "value", text: number(value) })))),
      table(t("byChannel"), [t("channel"), t("clicks"), t("referred"), t("qualified")],
        a.funnel.byChannel.map((c) => [c.channel || t("noChannel"), number(c.clicks), number(c.referred), number(c.qualified)]))),
    h("section", { "aria-labelledby": "series-title", class: "card" },
      h("h2", { id: "series-title", text: t("perDay") }),
      h("div", { id: "chart-referrals", class: "chart", role: "img", "aria-label": t("chartReferrals") }),
      h("div", { id: "chart-revenue", class: "chart", role: "img", "aria-label": t("chartRevenue") })),
    h("section", { "aria-labelledby": "money-title", class: "card" },
      h("h2", { id: "money-title", text: t("money") }),
      table(t("revenue"), [t("currency"), t("gross"), t("refunded"), t("net")],
        a.money.revenue.map((r) => [r.currency, money(r.gross, r.currency), money(r.refunded, r.currency), money(r.net, r.currency)])),
      table(t("rewardCost"), [t("kind"), t("granted"), t("takenBack"), t("net")],
        a.money.rewardCost.filter((c) => c.unit !== "POINTS")
          .map((c) => [`${t(c.kind)} (${c.unit})`, money(c.granted, c.unit), money(c.takenBack, c.unit), money(c.net, c.unit)])),
      table(t("couponsRedeemed"), [t("currency"), t("count"), t("amount")],
        a.money.couponsRedeemed.map((c) => [c.unit === "PERCENT" ? t("percentNoOrder") : c.unit, number(c.count),
          c.unit === "PERCENT" ? "–" : money(c.amount, c.unit)])),
      // points are not money: their own table, in points, never in the return per currency
      table(t("pointsCost"), [t("kind"), t("granted"), t("takenBack"), t("net")],
        a.money.rewardCost.filter((c) => c.unit === "POINTS")
          .map((c) => [t(c.kind), money(c.granted, c.unit), money(c.takenBack, c.unit), money(c.net, c.unit)])),
      table(t("returns"), [t("currency"), t("netRevenue"), t("cost"), t("costPerCustomer"), t("roi")],
        a.money.returns.map((r) => [r.currency, money(r.netRevenue, r.currency), money(r.cost, r.currency),
          r.costPerAcquiredCustomer === null ? "–" : money(r.costPerAcquiredCustomer, r.currency), percent(r.roi)]))),
    h("section", { "aria-labelledby": "referrers-title", class: "card" },
      h("h2", { id: "referrers-title", text: t("referrers") }),
      h("dl", { class: "figures" },
        h("dt", { text: t("kFactor") }), h("dd", { id: "k-factor", text: k.kFactor === null ? "–" : number(k.kFactor) }),
        h("dt", { text: t("shareReferring") }), h("dd", { text: percent(k.shareReferring) }),
        h("dt", { text: t("invitesPerCustomer") }), h("dd", { text: k.invitesPerCustomer === null ? "–" : number(k.invitesPerCustomer) }),
        h("dt", { text: t("inviteConversion") }), h("dd", { text: percent(k.inviteConversion) })),
      table(t("leaderboard"), [t("rank"), t("customer"), t("qualified"), t("referred"), t("revenue"), t("change")],
        k.leaderboard.map((x) => [number(x.rank), x.customerExternalId, number(x.qualified), number(x.referred),
          x.revenue.map((r) => money(r.amount, r.currency)).join(" · ") || "–",
          x.rankChange === null ? t("new") : x.rankChange > 0 ? `▲ ${number(x.rankChange)}` : x.rankChange < 0 ? `▼ ${number(-x.rankChange)}` : "="]))),
  );
  drawCharts(a.series, from, days);
  announce(t("loaded", { page: t("overview") }));
}

function drawCharts(series, first, days) {
  for (const chart of state.charts) chart.destroy();
  state.charts = [];
  const x = Array.from({ length: days }, (_, i) => Date.parse(first) / 1000 + i * 86400);
  const index = (start) => Math.round((Date.parse(start) / 1000 - x[0]) / 86400);
  const line = (filter, value) => {
    const values = new Array(days).fill(0);
    for (const p of series) if (filter(p)) values[index(p.start)] += value(p);
    return values;
  };
  const width = Math.max(320, main().clientWidth - 48);
  const colors = ["#0b6e4f", "#b3261e", "#1d4ed8", "#7c3aed"];
  const plot = (id, lines) => {
    const element = document.getElementById(id);
    state.charts.push(new uPlot({
      width, height: 220, scales: { x: { time: true } },
      series: [{}, ...lines.map(([label], i) => ({ label, stroke: colors[i % colors.length], width: 2 }))],
      axes: [{}, { size: 60 }],
    }, [x, ...lines.map(([, values]) => values)], element));
  };
  plot("chart-referrals", [
    [t("referred"), line((p) => p.measure === "referred", (p) => p.count)],
    [t("qualified"), line((p) => p.measure === "qualified", (p) => p.count)],
  ]);
  const currencies = [...new Set(series.filter((p) => p.measure === "revenue").map((p) => p.unit))].sort();
  plot("chart-revenue", currencies.map((c) => [`${t("revenue")} ${c}`, line((p) => p.measure === "revenue" && p.unit === c, (p) => major(p.amount, c))]));
}

const REVIEWS = `query { fraudReviews(status: OPEN, first: 50) { edges { node { id score signals openedAt
  referral { id referrer { externalId } referee { externalId } }
  decisions { stage outcome score observations { signal fired evidence } } } } } }`;

// Resolve several reviews in one request (one aliased mutation each): each succeeds or fails on its own.
async function resolveReviews(reviews, resolution) {
  const fields = reviews.map((_, i) => `r${i}: resolveFraudReview(id: $id${i}, resolution: $resolution, note: "console") {
    review { status } userErrors { field code message } }`);
  const query = `mutation($resolution: FraudResolution!, ${reviews.map((_, i) => `$id${i}: ID!`).join(", ")}) { ${fields.join("\n")} }`;
  const variables = { resolution, ...Object.fromEntries(reviews.map((r, i) => [`id${i}`, r.id])) };
  const { data, errors } = await gqlFields(query, variables);
  return reviews.map((review, i) => {
    const payload = data[`r${i}`];
    const failure = errors[`r${i}`] || errors["*"] || payload?.userErrors?.map((e) => e.message).join("; ") || (payload ? "" : t("error"));
    return { who: review.referral.referee.externalId, ok: !failure, message: failure };
  });
}

async function reviewsPage(outcomes = null) {
  const reviews = (await gql(REVIEWS)).fraudReviews.edges.map((e) => e.node);
  const selected = new Set();
  const dialog = h("dialog", { id: "bulk-dialog", "aria-labelledby": "bulk-title" });
  const resolve = (review, resolution) => async () => {
    try {
      userErrors((await gql(`mutation($id: ID!, $r: FraudResolution!) { resolveFraudReview(id: $id, resolution: $r, note: "console") {
        review { status } userErrors { field code message } } }`, { id: review.id, r: resolution })).resolveFraudReview);
      await reviewsPage();
      announce(t(resolution === "APPROVE" ? "reviewApproved" : "reviewRejected", { who: review.referral.referee.externalId }));
    } catch (e) { announce(e.message); }
  };
  const bulkButtons = [["APPROVE", "approveSelected", ""], ["REJECT", "rejectSelected", "secondary"]].map(([resolution, label, style]) =>
    h("button", { type: "button", id: `bulk-${resolution.toLowerCase()}`, class: style, disabled: true,
      onclick: () => confirmBulk(resolution, label) }));
  const refresh = () => {
    for (const [button, label] of [[bulkButtons[0], "approveSelected"], [bulkButtons[1], "rejectSelected"]]) {
      button.textContent = t(label, { count: number(selected.size) });
      button.disabled = selected.size === 0;
    }
    all.checked = selected.size === reviews.length && reviews.length > 0;
  };
  const confirmBulk = (resolution, label) => {
    const chosen = reviews.filter((r) => selected.has(r.id));
    const form = h("form", { method: "dialog", onsubmit: async (event) => {
      event.preventDefault();
      const results = await resolveReviews(chosen, resolution);
      dialog.close();
      await reviewsPage(results);
      announce(t("bulkDone", { done: number(results.filter((r) => r.ok).length), failed: number(results.filter((r) => !r.ok).length) }));
    } },
    h("h2", { id: "bulk-title", text: t(label, { count: number(chosen.length) }) }),
    h("ul", {}, chosen.map((r) => h("li", { text: t("reviewTitle", { referrer: r.referral.referrer.externalId, referee: r.referral.referee.externalId }) }))),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "bulk-confirm", text: t("confirm") }),
      h("button", { type: "button", class: "secondary", onclick: () => dialog.close(), text: t("cancel") })));
    dialog.replaceChildren(form);
    dialog.showModal();
    form.querySelector("button").focus();
  };
  const all = h("input", { type: "checkbox", id: "select-all", onchange: (e) => {
    for (const box of main().querySelectorAll("input[data-select]")) { box.checked = e.target.checked; }
    for (const r of reviews) { if (e.target.checked) selected.add(r.id); else selected.delete(r.id); }
    refresh();
  } });
  main().replaceChildren(h("h1", { text: t("reviews") }),
    outcomes ? h("section", { class: "card", id: "bulk-results", "aria-labelledby": "bulk-results-title" },
      h("h2", { id: "bulk-results-title", text: t("bulkResults") }),
      h("ul", {}, outcomes.map((o) => h("li", { class: o.ok ? "ok" : "error", text: o.ok ? t("bulkOk", { who: o.who }) : t("bulkFailed", { who: o.who, why: o.message }) })))) : null,
    reviews.length ? h("div", { class: "controls" }, all, h("label", { for: "select-all", text: t("selectAll") }), ...bulkButtons) : null,
    reviews.length ? h("ul", { class: "cards" }, reviews.map((r) => h("li", { class: "card review", "data-review": r.id },
      h("div", { class: "controls" },
        h("input", { type: "checkbox", id: `select-${r.id}`, "data-select": r.id, onchange: (e) => {
          if (e.target.checked) selected.add(r.id); else selected.delete(r.id);
          refresh();
        } }),
        h("label", { for: `select-${r.id}`, text: t("selectReview", { referee: r.referral.referee.externalId }) })),
      h("h2", {}, h("a", { href: `#/referral?id=${encodeURIComponent(r.referral.id)}`,
        text: t("reviewTitle", { referrer: r.referral.referrer.externalId, referee: r.referral.referee.externalId }) })),
      h("p", { text: t("score", { score: number(r.score), signals: r.signals.join(", ") }) }),
      h("ul", { class: "evidence" }, r.decisions.flatMap((d) => d.observations.filter((o) => o.fired).map((o) => h("li", { text: o.evidence || o.signal })))),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: resolve(r, "APPROVE"), text: t("approve") }),
        h("button", { type: "button", class: "secondary", onclick: resolve(r, "REJECT"), text: t("reject") })))))
      : h("p", { text: t("noReviews") }),
    dialog);
  refresh();
  announce(t("loaded", { page: t("reviews") }));
}

// Ask for a code from the admin's authenticator app, then run `action(code)`; its error stays in the dialog.
function askCode(dialog, { summary, submit, action }) {
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { method: "dialog", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const code = String(new FormData(form).get("code")).trim();
      await action(/^[0-9]{6}$/.test(code) ? { totpCode: code, recoveryCode: null } : { totpCode: null, recoveryCode: code });
      dialog.close();
    } catch (e) { error.textContent = e.message; }
  } },
  h("h2", { id: "totp-title", text: t("secondFactor") }),
  h("p", { text: summary }),
  h("label", { for: "totp-code", text: t("totpCode") }),
  h("input", { id: "totp-code", name: "code", autocomplete: "one-time-code", "aria-describedby": "totp-hint", required: true }),
  h("p", { id: "totp-hint", class: "muted", text: t("recoveryHint") }),
  h("div", { class: "actions" }, h("button", { type: "submit", text: submit }),
    h("button", { type: "button", class: "secondary", onclick: () => dialog.close(), text: t("cancel") })), error);
  dialog.replaceChildren(form);
  dialog.showModal();
  form.querySelector("input").focus();
}

const PAYOUTS = `query { payouts(status: PENDING_APPROVAL, first: 100) { edges { node { id reference amount currency customerExternalId
  account { masked } createdAt } } } }`;

async function payoutsPage() {
  const payouts = (await gql(PAYOUTS)).payouts.edges.map((e) => e.node);
  const totals = {};
  for (const p of payouts) totals[p.currency] = (totals[p.currency] || 0) + p.amount;
  const expected = Object.entries(totals).sort().map(([currency, amount]) => ({ currency, amount }));
  const dialog = h("dialog", { id: "totp-dialog", "aria-labelledby": "totp-title" });
  const approve = () => askCode(dialog, {
    summary: t("approveSummary", { count: number(payouts.length), totals: expected.map((x) => money(x.amount, x.currency)).join(" + ") }),
    submit: t("approve"),
    action: async (proof) => {
      const result = userErrors((await gql(`mutation($ids: [ID!]!, $totals: [CurrencyAmountInput!]!, $totpCode: String, $recoveryCode: String) {
        approvePayouts(ids: $ids, expectedTotals: $totals, totpCode: $totpCode, recoveryCode: $recoveryCode) {
          approvedCount userErrors { field code message } } }`,
      { ids: payouts.map((p) => p.id), totals: expected, ...proof })).approvePayouts);
      dialog.close();
      await payoutsPage();
      announce(t("payoutsApproved", { count: number(result.approvedCount) }));
    },
  });
  main().replaceChildren(h("h1", { text: t("payouts") }),
    table(t("awaitingApproval"), [t("reference"), t("customer"), t("account"), t("amount")],
      payouts.map((p) => [p.reference, p.customerExternalId ?? "–", p.account?.masked ?? "–", money(p.amount, p.currency)])),
    h("p", { id: "payout-totals", text: expected.length ? t("totals", { totals: expected.map((x) => money(x.amount, x.currency)).join(" + ") }) : "" }),
    payouts.length ? h("button", { type: "button", id: "approve-payouts", onclick: approve, text: t("approveAll") }) : null,
    dialog);
  announce(t("loaded", { page: t("payouts") }));
}


const REFERRAL = `query($id: ID!) { referral(id: $id) { id status source referredAt qualifiedAt
  referrer { externalId } referee { externalId }
  actions { type occurredAt orderId attribution amount { amount currency } }
  fraudDecisions { stage outcome score createdAt observations { signal fired evidence } }
  rewards { kind recipient status amount unit createdAt endReason } } }`;

const when = (iso) => new Date(iso).toLocaleString(state.locale);

async function referralPage() {
  const id = new URLSearchParams(location.hash.split("?")[1] || "").get("id");
  const r = (await gql(REFERRAL, { id })).referral;
  if (!r) { main().replaceChildren(h("h1", { text: t("referral") }), h("p", { text: t("notFound") })); return; }
  const events = [
    ...r.actions.map((a) => [a.occurredAt, t("eventAction", { type: a.type, order: a.orderId ?? "" }),
      a.amount ? money(a.amount.amount, a.amount.currency) : "", a.attribution]),
    ...r.fraudDecisions.map((d) => [d.createdAt, t("eventDecision", { stage: d.stage, outcome: d.outcome }),
      t("scoreOnly", { score: number(d.score) }), d.observations.filter((o) => o.fired).map((o) => o.evidence || o.signal).join("; ")]),
    ...r.rewards.map((w) => [w.createdAt, t("eventReward", { kind: t(w.kind), recipient: w.recipient }), money(w.amount, w.unit),
      w.status + (w.endReason ? ` (${w.endReason})` : "")]),
  ].sort((a, b) => a[0].localeCompare(b[0]));
  main().replaceChildren(
    h("h1", { text: t("reviewTitle", { referrer: r.referrer.externalId, referee: r.referee.externalId }) }),
    h("dl", { class: "figures" },
      h("dt", { text: t("status") }), h("dd", { id: "referral-status", text: r.status }),
      h("dt", { text: t("source") }), h("dd", { text: r.source }),
      h("dt", { text: t("referredAt") }), h("dd", { text: when(r.referredAt) }),
      h("dt", { text: t("qualifiedAt") }), h("dd", { text: r.qualifiedAt ? when(r.qualifiedAt) : "–" })),
    table(t("timeline"), [t("when"), t("what"), t("amount"), t("details")], events.map(([at, ...rest]) => [when(at), ...rest])));
  announce(t("loaded", { page: t("referral") }));
}

const RULE_FIELDS = `id ruleId version name enabled trigger recipient kind amount currency percentBps couponPoolId couponMinOrderAmount
  recurringMonths createdAt supersededAt conditions { minActionAmount minActionCurrency firstActionOnly withinDaysOfReferral
  metadataFilters { key op values } milestone capPerReferrerMonthly capPerReferrerLifetime programMonthlyBudget holdDays expiresInDays }`;

// A rule as RewardRuleInput (what updateRewardRule and simulateRewardRules take).
function ruleInput(r) {
  return { name: r.name, trigger: r.trigger, recipient: r.recipient, kind: r.kind, enabled: r.enabled, amount: r.amount,
    currency: r.currency, percentBps: r.percentBps, couponPoolId: r.couponPoolId, couponMinOrderAmount: r.couponMinOrderAmount,
    recurringMonths: r.recurringMonths, conditions: r.conditions };
}
const rewardText = (r) => r.percentBps !== null && r.percentBps !== undefined
  ? `${t(r.kind)} ${percent(r.percentBps / 10000)}` : `${t(r.kind)} ${money(r.amount ?? 0, r.currency || "POINTS")}`;

// Totals per (kind, unit): what the current rules granted, what the edited set would have, and the difference.
function costDifference(result) {
  const rows = {};
  for (const [side, totals] of [["current", result.currentTotals], ["proposed", result.proposedTotals]])
    for (const x of totals) (rows[`${x.kind} ${x.unit}`] ??= { kind: x.kind, unit: x.unit, current: 0, proposed: 0 })[side] += x.amount;
  return Object.values(rows).sort((a, b) => `${a.kind}${a.unit}`.localeCompare(`${b.kind}${b.unit}`));
}

async function rulesPage() {
  const programs = (await gql("query { programs(first: 50) { edges { node { id name } } } }")).programs.edges.map((e) => e.node);
  const editor = h("section", { id: "rule-editor", "aria-live": "polite" });
  const sections = [];
  for (const program of programs) {
    const rules = (await gql(`query($p: ID!) { rewardRules(programId: $p) { ${RULE_FIELDS} history { version name enabled kind amount
      currency percentBps createdAt supersededAt } } }`, { p: program.id })).rewardRules;
    sections.push(h("section", { class: "card", "aria-label": program.name },
      table(program.name, [t("name"), t("trigger"), t("recipient"), t("reward"), t("version"), t("enabled"), t("actions")],
        rules.map((r) => [r.name, r.trigger, r.recipient, rewardText(r), number(r.version), r.enabled ? t("yes") : t("no"),
          h("div", { class: "row-actions" },
            h("button", { type: "button", class: "link", "aria-expanded": "false", "aria-controls": `history-${r.ruleId}`,
              onclick: (e) => {
                const open = e.target.getAttribute("aria-expanded") !== "true";
                e.target.setAttribute("aria-expanded", String(open));
                document.getElementById(`history-${r.ruleId}`).hidden = !open;
              }, text: t("history") }),
            h("button", { type: "button", class: "link", "data-edit": r.ruleId, "aria-label": t("editRule", { name: r.name }), onclick: () => editRule(editor, program, rules, r),
              text: t("edit") }))])),
      rules.map((r) => h("div", { id: `history-${r.ruleId}`, hidden: true },
        table(t("historyOf", { name: r.name }), [t("version"), t("name"), t("reward"), t("enabled"), t("from"), t("until")],
          r.history.map((v) => [number(v.version), v.name, rewardText(v), v.enabled ? t("yes") : t("no"), when(v.createdAt),
            v.supersededAt ? when(v.supersededAt) : t("current")]))))));
  }
  main().replaceChildren(h("h1", { text: t("rules") }), ...sections, editor);
  announce(t("loaded", { page: t("rules") }));
}

// Edit one rule: the simulation of the edited rule set over the last 30 days must run (on
// exactly these values) before the change can be saved.
function editRule(editor, program, rules, rule) {
  const percentRule = rule.percentBps !== null;
  const digits = percentRule || !rule.currency ? 0 : minorDigits(rule.currency);
  const error = h("p", { class: "error", role: "alert" });
  const outcome = h("div", { id: "simulation" });
  let simulated = null; // the JSON of the values the shown simulation ran on
  const values = () => {
    const data = new FormData(form);
    const edited = { ...ruleInput(rule), name: String(data.get("name")), enabled: data.get("enabled") === "on" };
    const value = Number(data.get("value"));
    if (percentRule) edited.percentBps = Math.round(value * 100);
    else edited.amount = Math.round(value * 10 ** digits);
    return edited;
  };
  const save = h("button", { type: "button", id: "save-rule", disabled: true, onclick: async () => {
    try {
      userErrors((await gql(`mutation($r: ID!, $input: RewardRuleInput!) { updateRewardRule(ruleId: $r, input: $input) {
        rewardRule { version } userErrors { field code message } } }`, { r: rule.ruleId, input: values() })).updateRewardRule);
      await rulesPage();
      announce(t("ruleSaved", { name: values().name }));
    } catch (e) { error.textContent = e.message; }
  }, text: t("save") });
  const simulate = async () => {
    error.textContent = "";
    const edited = values();
    const to = new Date(); const from = new Date(to.getTime() - 30 * 86400000);
    try {
      const result = (await gql(`query($p: ID!, $rules: [RewardRuleInput!]!, $from: DateTime!, $to: DateTime!) {
        simulateRewardRules(programId: $p, rules: $rules, from: $from, to: $to) { actionsReplayed
          proposedTotals { kind unit amount count } currentTotals { kind unit amount count } } }`,
      { p: program.id, from: from.toISOString(), to: to.toISOString(),
        rules: rules.filter((r) => r.enabled || r.ruleId === rule.ruleId).map((r) => (r.ruleId === rule.ruleId ? edited : ruleInput(r))) })).simulateRewardRules;
      const lines = costDifference(result);
      outcome.replaceChildren(
        h("p", { text: t("simulated", { actions: number(result.actionsReplayed) }) }),
        table(t("costDifference"), [t("kind"), t("currentCost"), t("proposedCost"), t("difference")],
          lines.map((x) => [`${t(x.kind)} (${x.unit})`, money(x.current, x.unit), money(x.proposed, x.unit),
            (x.proposed >= x.current ? "+" : "−") + money(Math.abs(x.proposed - x.current), x.unit)])));
      simulated = JSON.stringify(edited);
      save.disabled = false;
      announce(t("simulationReady"));
    } catch (e) { error.textContent = e.message; }
  };
  const form = h("form", { class: "card narrow", onsubmit: (event) => { event.preventDefault(); simulate(); },
    oninput: () => { if (simulated !== JSON.stringify(values())) { save.disabled = true; } } },
  h("h2", { id: "editor-title", tabindex: "-1", text: t("editRule", { name: rule.name }) }),
  h("label", { for: "rule-name", text: t("name") }), h("input", { id: "rule-name", name: "name", value: rule.name, required: true }),
  h("label", { for: "rule-value", text: percentRule ? t("percentValue") : t("amountIn", { unit: rule.currency || t("points") }) }),
  h("input", { id: "rule-value", name: "value", type: "number", min: "0", step: percentRule ? "0.01" : String(1 / 10 ** digits),
    value: String(percentRule ? rule.percentBps / 100 : (rule.amount ?? 0) / 10 ** digits), required: true }),
  h("div", { class: "controls" }, h("input", { id: "rule-enabled", name: "enabled", type: "checkbox", checked: rule.enabled }),
    h("label", { for: "rule-enabled", text: t("enabled") })),
  h("p", { class: "muted", text: t("simulateFirst") }),
  h("div", { class: "actions" }, h("button", { type: "submit", id: "simulate-rule", text: t("simulate") }), save,
    h("button", { type: "button", class: "secondary", onclick: () => editor.replaceChildren(), text: t("cancel") })),
  outcome, error);
  editor.replaceChildren(form);
  form.querySelector("h2").focus();
}

async function webhooksPage(secret = null) {
  const data = await gql(`query { webhookEventTypes { type description }
    webhookEndpoints { id url enabled eventTypes disabledReason failingSince }
    webhookDeliveries(first: 20) { edges { node { id endpointId eventType status attemptCount nextAttemptAt deliveredAt createdAt lastError } } } }`);
  const error = h("p", { class: "error", role: "alert" });
  const toggle = (endpoint) => async () => {
    try {
      userErrors((await gql(`mutation($id: ID!, $input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $input) {
        endpoint { enabled } userErrors { field code message } } }`, { id: endpoint.id, input: { enabled: !endpoint.enabled } })).updateWebhookEndpoint);
      await webhooksPage();
      announce(t(endpoint.enabled ? "endpointDisabled" : "endpointEnabled", { url: endpoint.url }));
    } catch (e) { error.textContent = e.message; }
  };
  const form = h("form", { class: "card narrow", onsubmit: async (event) => {
    event.preventDefault();
    const values = new FormData(form);
    try {
      const created = userErrors((await gql(`mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) {
        endpoint { url } secret userErrors { field code message } } }`,
      { input: { url: values.get("url"), eventTypes: values.getAll("events"), description: values.get("description") || null } })).createWebhookEndpoint);
      await webhooksPage(created);
      announce(t("endpointAdded", { url: created.endpoint.url }));
    } catch (e) { error.textContent = e.message; }
  } },
  h("h2", { text: t("addEndpoint") }),
  h("label", { for: "endpoint-url", text: t("url") }), h("input", { id: "endpoint-url", name: "url", type: "url", required: true }),
  h("label", { for: "endpoint-description", text: t("description") }), h("input", { id: "endpoint-description", name: "description" }),
  h("fieldset", {}, h("legend", { text: t("events") }), data.webhookEventTypes.map((e, i) => h("div", {},
    h("input", { type: "checkbox", id: `event-${i}`, name: "events", value: e.type }),
    h("label", { for: `event-${i}`, title: e.description, text: e.type })))),
  h("button", { type: "submit", text: t("addEndpoint") }), error);
  const urls = Object.fromEntries(data.webhookEndpoints.map((e) => [e.id, e.url]));
  main().replaceChildren(h("h1", { text: t("webhooks") }),
    secret ? h("div", { class: "card secret", role: "alert", id: "new-secret" },
      h("p", { text: t("secretOnce", { url: secret.endpoint.url }) }), h("code", { text: secret.secret })) : null,
    table(t("endpoints"), [t("url"), t("events"), t("status"), t("actions")], data.webhookEndpoints.map((e) =>
      [e.url, e.eventTypes.join(", "),
        e.enabled ? (e.failingSince ? t("failingSince", { when: when(e.failingSince) }) : t("enabledState")) : `${t("disabledState")} ${e.disabledReason ?? ""}`,
        h("button", { type: "button", class: e.enabled ? "secondary" : "", onclick: toggle(e),
          "aria-label": t(e.enabled ? "disableEndpoint" : "enableEndpoint", { url: e.url }), text: t(e.enabled ? "disable" : "enable") })])),
    form,
    table(t("deliveries"), [t("event"), t("url"), t("status"), t("attempts"), t("nextAttempt"), t("when")], data.webhookDeliveries.edges.map(({ node: d }) =>
      [d.eventType, urls[d.endpointId] ?? "–", d.status + (d.lastError ? ` (${d.lastError})` : ""), number(d.attemptCount),
        d.status === "PENDING" && d.nextAttemptAt ? when(d.nextAttemptAt) : "–", when(d.createdAt)])));
  announce(t("loaded", { page: t("webhooks") }));
}

async function keysPage(issued = null) {
  const keys = (await gql("query { apiKeys { id maskedKey kind name createdAt revokedAt active } }")).apiKeys;
  const dialog = h("dialog", { id: "totp-dialog", "aria-labelledby": "totp-title" });
  const error = h("p", { class: "error", role: "alert" });
  const revoke = (key) => () => askCode(dialog, {
    summary: t("revokeSummary", { key: key.maskedKey }), submit: t("revoke"),
    action: async (proof) => {
      userErrors((await gql(`mutation($id: ID!, $totpCode: String, $recoveryCode: String) {
        revokeApiKey(id: $id, totpCode: $totpCode, recoveryCode: $recoveryCode) { apiKey { active } userErrors { field code message } } }`,
      { id: key.id, ...proof })).revokeApiKey);
      dialog.close();
      await keysPage();
      announce(t("keyRevoked", { key: key.maskedKey }));
    },
  });
  const form = h("form", { class: "card narrow", onsubmit: (event) => {
    event.preventDefault();
    const values = new FormData(form);
    askCode(dialog, {
      summary: t("createSummary", { kind: values.get("kind") }), submit: t("createKey"),
      action: async (proof) => {
        const created = userErrors((await gql(`mutation($kind: ApiKeyKind!, $name: String, $totpCode: String, $recoveryCode: String) {
          createApiKey(kind: $kind, name: $name, totpCode: $totpCode, recoveryCode: $recoveryCode) {
            key apiKey { maskedKey } userErrors { field code message } } }`,
        { kind: values.get("kind"), name: values.get("name") || null, ...proof })).createApiKey);
        dialog.close();
        await keysPage(created);
        announce(t("keyCreated", { key: created.apiKey.maskedKey }));
      },
    });
  } },
  h("h2", { text: t("createKey") }),
  h("label", { for: "key-kind", text: t("kind") }),
  h("select", { id: "key-kind", name: "kind" }, h("option", { value: "SECRET", text: t("secretKey") }),
    h("option", { value: "PUBLISHABLE", text: t("publishableKey") })),
  h("label", { for: "key-name", text: t("name") }), h("input", { id: "key-name", name: "name" }),
  h("button", { type: "submit", id: "create-key", text: t("createKey") }), error);
  main().replaceChildren(h("h1", { text: t("keys") }),
    issued ? h("div", { class: "card secret", role: "alert", id: "new-key" },
      h("p", { text: t("keyOnce") }), h("code", { text: issued.key })) : null,
    table(t("keys"), [t("key"), t("kind"), t("name"), t("created"), t("active"), t("actions")],
      keys.map((k) => [k.maskedKey, k.kind, k.name ?? "–", when(k.createdAt), k.active ? t("yes") : t("no"),
        k.active ? h("button", { type: "button", class: "secondary", "data-revoke": k.id, onclick: revoke(k),
          "aria-label": t("revokeKey", { key: k.maskedKey }), text: t("revoke") }) : "–"])),
    form, dialog);
  announce(t("loaded", { page: t("keys") }));
}

// --- routing -----------------------------------------------------------------------------------------
const PAGES = { "#/login": loginPage, "#/overview": overviewPage, "#/reviews": reviewsPage, "#/payouts": payoutsPage,
  "#/referral": referralPage, "#/rules": rulesPage, "#/webhooks": webhooksPage, "#/keys": keysPage };

async function route() {
  const signedIn = Boolean(sessionStorage.getItem(TOKEN_KEY));
  let path = location.hash.split("?")[0] || "#/overview";
  if (!signedIn) path = "#/login";
  else if (!PAGES[path] || path === "#/login") path = "#/overview";
  if (location.hash.split("?")[0] !== path) {
    location.hash = path; // hashchange routes again
    return;
  }
  frame();
  main().setAttribute("aria-busy", "true");
  try {
    await PAGES[path]();
  } catch (e) {
    main().replaceChildren(h("h1", { text: t("error") }), h("p", { role: "alert", text: e.message }));
  } finally {
    main().removeAttribute("aria-busy");
    const heading = document.querySelector("#main h1");
    if (heading && path !== "#/login") { heading.setAttribute("tabindex", "-1"); heading.focus(); }
  }
}

window.addEventListener("hashchange", route);
route();
