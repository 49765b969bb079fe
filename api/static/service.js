// sifa — check a served document (送达核验). The file is hashed here, only its SHA-256 (and the
// 送达码, if typed) is sent to /v1/service/check; the answer is shown with textContent only.
// hex and sha256 are bytes.js's (/verify/bytes.js, loaded before this).
"use strict";

const LABELS = [
  ["record_id", "存证编号"], ["channel", "送达方式"], ["sent_at", "发送时间"], ["delivered_at", "送达时间"],
  ["read_at", "阅读时间"], ["receipt_sha256", "送达回执 SHA-256"], ["recipient", "受送达人"],
  ["tracking_number", "邮件号"], ["recipient_commitment", "受送达人承诺值"],
];

function beijing(utc) {
  if (!utc) return "—";
  const t = new Date(utc);
  const local = new Date(t.getTime() + 8 * 3600 * 1000).toISOString().replace("T", " ").slice(0, 19);
  return `${local}（北京时间）`;
}

function line(dl, label, value) {
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  dl.append(dt, dd);
}

function show(answer) {
  const out = document.getElementById("result");
  out.replaceChildren();
  const head = document.createElement("p");
  head.id = "verdict";
  head.textContent = answer.served
    ? `本文书由${answer.court}送达，共 ${answer.services.length} 条送达记录。`
    : `未查到${answer.court}送达本文书的记录。`;
  out.append(head);
  for (const s of answer.services) {
    const dl = document.createElement("dl");
    dl.className = "service";
    for (const [key, label] of LABELS) {
      if (key === "tracking_number" && !s[key]) continue;
      let value = s[key];
      if (key.endsWith("_at")) value = beijing(value);
      if (key === "recipient" && !value) value = "（需送达码）";
      line(dl, label, value ?? "—");
    }
    out.append(dl);
  }
}

async function check(event) {
  event.preventDefault();
  const file = document.getElementById("file").files[0];
  const out = document.getElementById("result");
  if (!file) {
    out.textContent = "请选择文书。";
    return;
  }
  out.textContent = "正在本机计算文件哈希…";
  const digest = hex(await sha256(await file.arrayBuffer()));
  const code = document.getElementById("code").value.trim();
  const response = await fetch("/v1/service/check", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(code ? { sha256: digest, code } : { sha256: digest }),
  });
  if (!response.ok) {
    out.textContent = `核验失败（${response.status}）`;
    return;
  }
  show(await response.json());
}

document.getElementById("form").addEventListener("submit", (e) => { check(e).catch((err) => {
  document.getElementById("result").textContent = `核验失败：${err}`;
}); });
