// sifa console: sign in with a credential (kept in this tab only), find and open dossiers, upload,
// download, admit lawyers and parties. No build step; talks only to its own node (strict CSP).
"use strict";

const TEXT = {
  zh: { title: "电子卷宗", token: "凭证（只保存在本标签页）", signin: "登录", search: "案号或当事人姓名", find: "查找",
    caseNumber: "案号", status: "状态", opened: "立案时间", more: "下一页", drop: "把文件拖到这里上传",
    catalogue: "卷内目录", evidence: "电子证据", services: "电子送达", contracts: "电子合约", transfers: "移送",
    timeline: "时间线", admit: "准许律师或当事人阅卷（其凭证编号）", admitGo: "准许", lang: "English",
    who: "已登录：", download: "下载", receipt: "存证凭证", uploaded: "已上传：", admitted: "已准许",
    zone: "北京时间", events: { Opened: "立案", DocumentUploaded: "上传文件", Catalogued: "编目", DocumentWithdrawn: "撤回文件",
      EvidenceSubmitted: "提交电子证据", ServiceRecorded: "电子送达", ContractRegistered: "登记电子合约", Transferred: "移送",
      Received: "接收卷宗", DocumentReceived: "接收文件", Archived: "归档", FirstInstanceLinked: "关联一审卷宗" },
    statuses: { open: "在办", transferred: "已移送", received: "已接收", archived: "已归档", closed: "已结案" } },
  en: { title: "E-dossiers", token: "Credential (kept in this tab only)", signin: "Sign in",
    search: "Case number or party name", find: "Find", caseNumber: "Case number", status: "Status", opened: "Opened",
    more: "Next page", drop: "Drop files here to upload", catalogue: "Catalogue (卷内目录)", evidence: "Evidence",
    services: "E-service", contracts: "Contracts", transfers: "Transfers", timeline: "Timeline",
    admit: "Admit a lawyer or party (their principal id)", admitGo: "Admit", lang: "中文", who: "Signed in: ",
    download: "Download", receipt: "Receipt", uploaded: "Uploaded: ", admitted: "Admitted", zone: "Beijing time", events: {},
    statuses: { open: "open", transferred: "transferred", received: "received", archived: "archived", closed: "closed" } },
};
let lang = "zh";
const t = (k) => TEXT[lang][k];
const $ = (id) => document.getElementById(id);
let cursor = null, current = null;

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}
function beijing(utc) {
  const d = new Date(Date.parse(utc) + 8 * 3600 * 1000);
  return Number.isNaN(d.getTime()) ? utc : d.toISOString().replace("T", " ").slice(0, 19) + ` ${t("zone")}`;
}
function token() { return sessionStorage.getItem("sifa-token"); }
async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...(options.headers || {}), Authorization: `Bearer ${token()}` } });
  if (!r.ok) {
    let message = `HTTP ${r.status}`;
    try { const body = await r.json(); message = `${body.code}: ${body.message}`; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return r;
}
function fail(e) { $("note").textContent = ""; $("error").textContent = String(e.message || e); }

async function list(more = false) {
  $("error").textContent = "";
  const q = $("q").value.trim();
  const params = new URLSearchParams({ limit: "20" });
  if (q) params.set(/[（(]\s*\d/.test(q) ? "case_number" : "party", q);
  if (more && cursor) params.set("cursor", cursor);
  const page = await (await api(`/v1/dossiers?${params}`)).json();
  const body = $("list").tBodies[0];
  if (!more) body.replaceChildren();
  for (const d of page.dossiers) {
    const row = el("tr", { class: "pick", tabindex: "0", "data-id": d.id },
      el("td", {}, d.case_number), el("td", {}, t("statuses")[d.status] || d.status), el("td", {}, beijing(d.opened_at)));
    row.addEventListener("click", () => open(d.id).catch(fail));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") open(d.id).catch(fail); });
    body.append(row);
  }
  cursor = page.next_cursor;
  $("more").hidden = !cursor;
}

async function download(url, name) {
  const blob = await (await api(url)).blob();
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a); a.click(); a.remove();
}

async function open(id) {
  const d = await (await api(`/v1/dossiers/${id}`)).json();
  current = d;
  $("dossier").hidden = false;
  $("dossier").dataset.id = id;
  $("case").textContent = d.case_number;
  const cat = $("catalogue").tBodies[0];
  cat.replaceChildren();
  for (const c of d.catalogue) {
    const doc = d.documents[c.document_id] || {};
    const get = el("button", { type: "button", "data-file": doc.sha256 || "" }, t("download"));
    get.addEventListener("click", () => download(doc.download, doc.name).catch(fail));
    const receipt = el("button", { type: "button" }, t("receipt"));
    receipt.addEventListener("click", () => download(doc.receipt, `${doc.name}.receipt.json`).catch(fail));
    cat.append(el("tr", { "data-doc": c.document_id }, el("td", {}, c.volume), el("td", {}, c.title),
      el("td", {}, c.pages === null || c.pages === undefined ? "" : String(c.pages)), el("td", {}, get, receipt)));
  }
  const fill = (id2, items, say) => { $(id2).replaceChildren(...items.map((x) => el("li", {}, say(x)))); };
  fill("evidence", d.evidence, (e) => `${e.name} · ${e.sha256.slice(0, 16)}…`);
  fill("services", d.services, (s) => `${s.channel} · ${s.recipient.role} · ${beijing(s.sent_at)}`);
  fill("contracts", d.contracts, (c) => `${c.contract_sha256.slice(0, 16)}… · ${beijing(c.signed_at)}`);
  fill("transfers", d.transfers, (x) => `${x.kind} → ${x.to_court}`);
  fill("timeline", d.timeline.filter((x) => x.type !== "Retrieved"), (x) => `${beijing(x.recorded_at)} · ${t("events")[x.type] || x.name}`
    + (x.leaf_index === null ? "" : ` · #${x.leaf_index}`));
  $("admit").hidden = sessionStorage.getItem("sifa-role") !== "clerk";
}

function upload(files) {
  const id = $("dossier").dataset.id;
  if (!id || !files.length) return;
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name);
  const xhr = new XMLHttpRequest(); // fetch reports no upload progress
  const bar = $("progress");
  bar.hidden = false; bar.value = 0;
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
  xhr.onload = () => {
    bar.hidden = true;
    if (xhr.status >= 300) { try { const b = JSON.parse(xhr.responseText); fail(new Error(`${b.code}: ${b.message}`)); } catch { fail(new Error(`HTTP ${xhr.status}`)); } return; }
    const names = JSON.parse(xhr.responseText).documents.map((x) => x.document_id);
    $("error").textContent = "";
    $("who").dataset.uploaded = names.join(",");
    open(id).catch(fail);
  };
  xhr.onerror = () => { bar.hidden = true; fail(new Error("upload failed")); };
  xhr.open("POST", `/v1/dossiers/${id}/documents/form`);
  xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
  xhr.send(form);
}

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = `${t("title")} · sifa`;
  document.querySelectorAll("[data-t]").forEach((n) => { n.textContent = t(n.dataset.t); });
  $("lang").textContent = t("lang");
  $("lang").lang = lang === "zh" ? "en" : "zh-CN";
}

async function signedIn() {
  await list();
  $("signin").hidden = true;
  $("work").hidden = false;
  $("who").textContent = `${t("who")}${sessionStorage.getItem("sifa-name") || ""} (${sessionStorage.getItem("sifa-role") || ""})`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; translate(); if (current) open(current.id).catch(fail); });
  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("sifa-token", $("token").value.trim());
    api("/v1/me").then((r) => r.json()).then((who) => {
      sessionStorage.setItem("sifa-role", who.role);
      sessionStorage.setItem("sifa-name", who.name);
      return signedIn();
    }).catch(fail);
  });
  $("search").addEventListener("submit", (e) => { e.preventDefault(); list().catch(fail); });
  $("more").addEventListener("click", () => list(true).catch(fail));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); upload(e.dataTransfer.files); });
  $("files").addEventListener("change", () => upload($("files").files));
  $("admit").addEventListener("submit", (e) => {
    e.preventDefault();
    api(`/v1/principals/${encodeURIComponent($("principal").value.trim())}/admissions`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ dossier: current.id }) })
      .then(() => { $("note").textContent = t("admitted"); }).catch(fail);
  });
  translate();
  if (token()) signedIn().catch(fail);
  document.body.dataset.ready = "1";
});
