// Live updates and the flash takeover. The pages work without this script;
// it only refetches the fragments marked data-live when the terminal reports
// an event (server-sent events from /api/events), and sounds the flash alarm.
"use strict";

const live = () => Array.from(document.querySelectorAll("[data-live]"));
const pending = new Set();
let timer = null;

async function refresh(el) {
  try {
    const r = await fetch(el.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (r.redirected || r.status === 401) { window.location = "/login?next=" + window.location.pathname; return; }
    if (!r.ok) return;
    el.innerHTML = await r.text();
    if (el.id === "flash") showFlash(el);
  } catch (e) { /* the next event or tick tries again */ }
}

function schedule(name) {
  for (const el of live()) {
    if ((el.dataset.on || "").split(" ").includes(name)) pending.add(el);
  }
  if (timer === null) {
    timer = setTimeout(() => { timer = null; const els = Array.from(pending); pending.clear(); els.forEach(refresh); }, 100);
  }
}

// -- the flash takeover: visible until a person acknowledges, audible as long as it shows --
let audio = null;
let beeping = null;

function beep() {
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "square";
    osc.frequency.value = 880;
    gain.gain.value = 0.15;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.35);
  } catch (e) { /* no audio device: the screen still shows it */ }
}

function showFlash(el) {
  const active = el.querySelector(".flash-alert") !== null;
  el.hidden = !active;
  document.body.classList.toggle("flash-active", active);
  if (active && beeping === null) { beep(); beeping = setInterval(beep, 1200); }
  if (!active && beeping !== null) { clearInterval(beeping); beeping = null; }
  document.body.dataset.flashAlarm = active ? "sounding" : "quiet";
}

document.addEventListener("DOMContentLoaded", () => {
  for (const sel of document.querySelectorAll("select.autosubmit")) {
    sel.addEventListener("change", () => sel.form.submit());
  }
  const flash = document.getElementById("flash");
  if (flash) refresh(flash);
  const events = new EventSource("/api/events");
  const names = ["received", "accepted", "delivered", "read", "read-here", "acknowledged", "acknowledged-here", "alarm", "status"];
  for (const name of names) {
    events.addEventListener(name, () => schedule(name));
  }
  events.addEventListener("expired", () => {  // logged out elsewhere, or the session ran out
    events.close();
    window.location = "/login?next=" + window.location.pathname;
  });
  events.addEventListener("open", () => { document.body.dataset.live = "connected"; });
  events.addEventListener("error", async () => {
    document.body.dataset.live = "reconnecting";
    if (events.readyState !== EventSource.CLOSED) return;  // the browser retries by itself
    // Refused outright (the session ended while the stream was down): find out why.
    try {
      const r = await fetch("/api/whoami", { credentials: "same-origin" });
      if (r.status === 401) window.location = "/login?next=" + window.location.pathname;
    } catch (e) { /* the terminal is away; the status bar says so */ }
  });
});
