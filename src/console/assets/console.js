// mxgate's console: every action is a call to the public API (a curl away), made with
// the credential or token this tab holds in session storage, in the Authorization
// header only: never in a URL.
"use strict";

const KEY = "mxgate.console";
const $ = (id) => document.getElementById(id);

const session = {
  get() {
    try { return JSON.parse(sessionStorage.getItem(KEY)) || {}; } catch { return {}; }
  },
  set(value) { sessionStorage.setItem(KEY, JSON.stringify(value)); },
  clear() { sessionStorage.removeItem(KEY); },
};

class ApiError extends Error {}

/** A call to the API: `as` is "basic" (the credential) or "bearer" (the token). */
async function api(method, path, { body, as = "bearer", form } = {}) {
  const s = session.get();
  const headers = {};
  if (as === "basic") {
    headers.Authorization = "Basic " + btoa(`${s.credential.id}:${s.credential.secret}`);
  } else {
    headers.Authorization = "Bearer " + s.token;
  }
  let payload;
  if (form) {
    payload = form;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, { method, headers, body: payload });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new ApiError((json && json.message) || `${response.status} ${response.statusText}`);
  }
  return json;
}

function notice(text, isError = false) {
  const el = $("notice");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

/** Runs an action, showing its error plainly instead of throwing it away. */
function guarded(action) {
  return async (event) => {
    if (event) event.preventDefault();
    try {
      await action(event);
    } catch (error) {
      notice(error.message, true);
    }
  };
}

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content); else td.textContent = content ?? "";
  row.append(td);
  return td;
}

function button(label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", guarded(action));
  return b;
}

// ---- signing in ---------------------------------------------------------------------

function show() {
  const s = session.get();
  const signedIn = Boolean(s.credential || s.token);
  $("sign-in").hidden = signedIn;
  $("sign-out").hidden = !signedIn;
  $("tokens").hidden = !s.credential;
  for (const id of ["devices", "send", "webhooks", "chats", "matrix"]) $(id).hidden = !s.token;
  $("who").textContent = s.token ? "Signed in with a token" : s.credential ? `Signed in as ${s.credential.id}` : "";
  if (s.credential) loadTokens().catch((e) => notice(e.message, true));
  if (s.token) {
    loadDevices().catch((e) => notice(e.message, true));
    loadWebhooks().catch((e) => notice(e.message, true));
  }
}

$("credential-form").addEventListener("submit", guarded(async () => {
  session.set({ credential: { id: $("client-id").value.trim(), secret: $("client-secret").value } });
  await api("GET", "/tokens", { as: "basic" });
  $("client-secret").value = "";
  notice("Signed in with the credential.");
  show();
}));

$("token-form").addEventListener("submit", guarded(async () => {
  session.set({ ...session.get(), token: $("token-input").value.trim() });
  await api("GET", "/devices");
  $("token-input").value = "";
  notice("Signed in with the token.");
  show();
}));

$("sign-out").addEventListener("click", () => {
  session.clear();
  notice("Signed out.");
  show();
});

// ---- tokens (with a credential) ------------------------------------------------------

async function loadTokens() {
  const tokens = await api("GET", "/tokens", { as: "basic" });
  const rows = $("token-rows");
  rows.replaceChildren();
  for (const token of tokens) {
    const row = document.createElement("tr");
    cell(row, token.id);
    cell(row, token.matrix_user_id);
    cell(row, token.expires_at || "never");
    cell(row, button("Revoke", async () => {
      if (!confirm("Revoke this token? Apps using it stop at once.")) return;
      await api("DELETE", `/tokens/${encodeURIComponent(token.id)}`, { as: "basic" });
      notice("Token revoked.");
      await loadTokens();
    }));
    rows.append(row);
  }
}

$("new-token-form").addEventListener("submit", guarded(async () => {
  const body = { use_host: $("use-host").checked };
  if ($("token-expiry").value) body.expires_at = new Date($("token-expiry").value).toISOString();
  const created = await api("POST", "/tokens", { as: "basic", body });
  $("new-token-value").textContent = created.token;
  $("new-token").hidden = false;
  notice("Token created. Copy it now: it is not shown again.");
  await loadTokens();
}));

$("copy-token").addEventListener("click", guarded(async () => {
  await navigator.clipboard.writeText($("new-token-value").textContent);
  notice("Copied.");
}));

$("use-token").addEventListener("click", guarded(async () => {
  session.set({ ...session.get(), token: $("new-token-value").textContent });
  $("new-token-value").textContent = "";
  $("new-token").hidden = true;
  notice("Signed in with the new token.");
  show();
}));

// ---- devices -------------------------------------------------------------------------

let devicePoll;

async function loadDevices() {
  const devices = await api("GET", "/devices");
  const rows = $("device-rows");
  rows.replaceChildren();
  for (const device of devices) {
    const row = document.createElement("tr");
    row.dataset.device = device.device_id;
    cell(row, "+" + device.device_id);
    const status = cell(row, device.error ? `${device.status}: ${device.error}` : device.status);
    status.className = "status " + device.status;
    cell(row, button("Unlink", async () => {
      if (!confirm(`Unlink +${device.device_id}? WhatsApp logs it out.`)) return;
      await api("DELETE", "/devices", { body: { device_id: device.device_id, platform: "wa" } });
      notice("Device unlinked.");
      await loadDevices();
    }));
    rows.append(row);
  }
  for (const select of document.querySelectorAll(".device-select")) {
    const chosen = select.value;
    select.replaceChildren(...devices.map((d) => new Option("+" + d.device_id, d.device_id)));
    if (chosen) select.value = chosen;
  }
  clearTimeout(devicePoll);
  if (session.get().token) devicePoll = setTimeout(() => loadDevices().catch(() => {}), 5000);
}

/** Draws a QR frame's PNG on the canvas, replacing the last code. */
function drawQr(pngBase64) {
  const canvas = $("qr");
  const image = new Image();
  image.onload = () => {
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
    canvas.dataset.code = String(Number(canvas.dataset.code || 0) + 1);
  };
  image.src = "data:image/png;base64," + pngBase64;
}

let countdown;
let lastFrameAt;

/** Counts down to the next code: WhatsApp's 20 s at first, then the gap seen between codes. */
function startCountdown() {
  const now = Date.now();
  const seconds = lastFrameAt ? Math.max(1, Math.round((now - lastFrameAt) / 1000)) : 20;
  lastFrameAt = now;
  clearInterval(countdown);
  let left = seconds;
  const tick = () => { $("qr-countdown").textContent = `This code is replaced in about ${left} s.`; left = Math.max(0, left - 1); };
  tick();
  countdown = setInterval(tick, 1000);
}

$("link-qr").addEventListener("click", guarded(async () => {
  const started = await api("POST", "/devices", { body: { platform: "wa" } });
  const result = $("link-result");
  result.textContent = "Waiting for the phone…";
  result.className = "";
  $("qr-box").hidden = false;
  lastFrameAt = undefined;
  const socket = new WebSocket(started.qr_code_url);
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "qr") {
      drawQr(frame.png_base64);
      startCountdown();
    } else {
      clearInterval(countdown);
      $("qr-box").hidden = true;
      if (frame.type === "success") {
        result.textContent = `Linked: +${frame.device_id}`;
        result.className = "ok";
        loadDevices().catch(() => {});
      } else if (frame.type === "timeout") {
        result.textContent = "Timed out: no phone scanned the codes. Start again when the phone is ready.";
        result.className = "error";
      } else {
        result.textContent = `Linking failed: ${frame.message || frame.error || "unknown error"}`;
        result.className = "error";
      }
    }
  };
  socket.onerror = () => { result.textContent = "The QR stream closed unexpectedly."; result.className = "error"; };
}));

$("pair-form").addEventListener("submit", guarded(async () => {
  const phone = $("pair-phone").value.replace(/^\+/, "");
  const started = await api("POST", "/devices", { body: { platform: "wa", phone } });
  $("pair-code").textContent = started.pair_code;
}));

// ---- sending -------------------------------------------------------------------------

$("send-form").addEventListener("submit", guarded(async () => {
  const device = $("send-device").value;
  const to = $("send-to").value.trim();
  const form = new FormData();
  form.append(to.startsWith("https://") ? "group_url" : "contact", to);
  if ($("send-text").value) form.append("text", $("send-text").value);
  if ($("send-file").files[0]) form.append("file", $("send-file").files[0]);
  const sent = await api("POST", `/devices/${encodeURIComponent(device)}/message`, { form });
  const list = $("send-results");
  list.replaceChildren(...sent.results.map((r) => {
    const item = document.createElement("li");
    item.dataset.status = r.status;
    item.textContent = `${r.recipient}: ${r.status}${r.error ? " (" + r.error + ")" : ""}`;
    return item;
  }));
}));

// ---- webhooks ------------------------------------------------------------------------

async function loadWebhooks() {
  const hooks = await api("GET", "/webhooks");
  const rows = $("webhook-rows");
  rows.replaceChildren();
  for (const hook of hooks) {
    const row = document.createElement("tr");
    cell(row, hook.url);
    cell(row, hook.events.join(", "));
    cell(row, hook.active ? "yes" : "paused");
    const actions = cell(row, "");
    actions.append(
      button("Deliveries", () => loadDeliveries(hook)),
      button(hook.active ? "Pause" : "Resume", async () => {
        await api("PUT", `/webhooks/${hook.id}`, { body: { active: !hook.active } });
        await loadWebhooks();
      }),
      button("Edit", async () => {
        const url = prompt("URL", hook.url);
        if (url === null) return;
        const events = prompt("Events (comma-separated)", hook.events.join(", "));
        if (events === null) return;
        await api("PUT", `/webhooks/${hook.id}`, { body: { url, events: splitEvents(events) } });
        await loadWebhooks();
      }),
      button("Rotate secret", async () => {
        const rotated = await api("POST", `/webhooks/${hook.id}/rotate-secret`);
        $("webhook-secret").textContent = `New signing secret (shown once): ${rotated.secret}`;
      }),
    );
    rows.append(row);
  }
}

function splitEvents(text) {
  return text.split(",").map((e) => e.trim()).filter(Boolean);
}

$("webhook-form").addEventListener("submit", guarded(async () => {
  const body = { url: $("webhook-url").value.trim() };
  const events = splitEvents($("webhook-events").value);
  if (events.length) body.events = events;
  const created = await api("POST", "/webhooks", { body });
  $("webhook-secret").textContent = `Signing secret (shown once): ${created.secret}`;
  await loadWebhooks();
}));

async function loadDeliveries(hook) {
  const [deliveries, feed] = await Promise.all([
    api("GET", `/webhooks/${hook.id}/deliveries?limit=100`),
    api("GET", "/events?limit=500"),
  ]);
  const payloads = new Map(feed.events.map((e) => [e.event_id, e.payload]));
  $("deliveries-of").textContent = hook.url;
  $("deliveries").hidden = false;
  const rows = $("delivery-rows");
  rows.replaceChildren();
  for (const delivery of deliveries) {
    const row = document.createElement("tr");
    row.dataset.status = delivery.status;
    cell(row, delivery.event_id);
    cell(row, delivery.status);
    cell(row, String(delivery.attempts));
    cell(row, delivery.last_error || "");
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = "payload";
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(payloads.get(delivery.event_id) ?? "not in the latest events", null, 2);
    details.append(summary, pre);
    cell(row, details);
    cell(row, button("Redeliver", async () => {
      await api("POST", `/webhooks/${hook.id}/deliveries/${delivery.id}/retry`);
      notice("Delivery queued again.");
      await loadDeliveries(hook);
    }));
    rows.append(row);
  }
}

// ---- chats ---------------------------------------------------------------------------

$("load-chats").addEventListener("click", guarded(async () => {
  const device = $("chats-device").value;
  const { chats } = await api("GET", `/devices/${encodeURIComponent(device)}/chats`);
  $("chat-list").replaceChildren(...chats.map((chat) => {
    const item = document.createElement("li");
    item.append(button(`${chat.name || chat.chat_id} (${chat.unread} unread)`, async () => {
      const path = `/devices/${encodeURIComponent(device)}/chats/${encodeURIComponent(chat.chat_id)}/messages`;
      const { messages } = await api("GET", path);
      $("history").replaceChildren(...messages.map((m) => {
        const line = document.createElement("li");
        line.textContent = `${new Date(m.timestamp).toLocaleString()} ${m.from}: ${m.message || m.type}`;
        return line;
      }));
    }));
    return item;
  }));
}));

// ---- Matrix --------------------------------------------------------------------------

$("matrix-login").addEventListener("click", guarded(async () => {
  const login = await api("POST", "/matrix/credentials");
  $("matrix-homeserver").textContent = login.homeserver_url;
  $("matrix-username").textContent = login.username;
  $("matrix-password").textContent = login.password;
  $("matrix-details").hidden = false;
  $("element-link").hidden = false;
}));

show();
