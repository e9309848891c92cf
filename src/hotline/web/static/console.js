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

// Browsers hold sound back until the page has been clicked or typed in: the first gesture
// unlocks it, and until then the alert says so (the screen takeover works regardless).
function unlockAudio() {
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === "suspended") return audio.resume();
  } catch (e) { /* no audio device */ }
  return Promise.resolve();
}

function showSoundNote() {
  const flash = document.getElementById("flash");
  // Shown or not, the note keeps its place: a button that moved between press and release
  // would lose the click.
  if (flash) for (const note of flash.querySelectorAll(".flash-sound-off")) note.classList.toggle("shown", soundHeldBack());
}

function soundHeldBack() {
  return audio === null || audio.state !== "running";
}

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

// Flashes a reader without the right to acknowledge chose to hide (an auditor): shown again
// only when another flash arrives.
const dismissed = new Set();

function showFlash(el) {
  const ids = Array.from(el.querySelectorAll(".flash-alert")).map((a) => a.dataset.id);
  const active = ids.some((id) => !dismissed.has(id));
  el.hidden = !active;
  document.body.classList.toggle("flash-active", active);
  // The takeover is modal: nothing behind it takes a click or a key (an Enter meant for the
  // alert must not send a half-written draft), and the focus goes to the acknowledgement.
  for (const part of document.querySelectorAll("header, #status, #offline, main")) part.inert = active;
  if (active) {
    const button = el.querySelector(".flash-ack, .flash-dismiss");
    if (button && !el.contains(document.activeElement)) button.focus();
    if (beeping === null) { beep(); beeping = setInterval(beep, 1200); }
    showSoundNote();
    for (const hide of el.querySelectorAll(".flash-dismiss")) {
      hide.onclick = () => { ids.forEach((id) => dismissed.add(id)); showFlash(el); };
    }
    // Acknowledged in place: the page behind (a half-written draft, say) is not reloaded.
    for (const form of el.querySelectorAll("form")) {
      form.onsubmit = async (event) => {
        event.preventDefault();
        try {
          const r = await fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" });
          if (!r.ok) { form.submit(); return; }
          await refresh(el);
          schedule("acknowledged-here");
        } catch (e) { form.submit(); }
      };
    }
  }
  if (!active && beeping !== null) { clearInterval(beeping); beeping = null; }
  document.body.dataset.flashAlarm = active ? "sounding" : "quiet";
}

function setLive(state) {
  document.body.dataset.live = state;
  const banner = document.getElementById("offline");
  if (banner) banner.hidden = state !== "reconnecting";
}

// Answer-by deadlines count down (an element with data-deadline, in ms since 1970).
function countdowns() {
  for (const el of document.querySelectorAll("[data-deadline]")) {
    const left = Math.round((Number(el.dataset.deadline) - Date.now()) / 1000);
    if (left <= 0) { el.textContent = el.dataset.passed || "0:00"; el.classList.add("passed"); continue; }
    const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    el.textContent = (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
    el.classList.toggle("soon", left < 300);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  countdowns();
  setInterval(countdowns, 1000);
  for (const kind of ["pointerdown", "keydown"]) {
    document.addEventListener(kind, () => { unlockAudio().then(showSoundNote, showSoundNote); }, { capture: true });
  }
  for (const sel of document.querySelectorAll("select.autosubmit")) {
    sel.addEventListener("change", () => sel.form.submit());
  }
  const flash = document.getElementById("flash");
  if (flash) refresh(flash);
  const events = new EventSource("/api/events");
  const names = ["received", "accepted", "delivered", "read", "read-here", "acknowledged", "acknowledged-here", "alarm", "desk", "status"];
  for (const name of names) {
    events.addEventListener(name, () => schedule(name));
  }
  events.addEventListener("expired", () => {  // logged out elsewhere, or the session ran out
    events.close();
    window.location = "/login?next=" + window.location.pathname;
  });
  events.addEventListener("open", () => setLive("connected"));
  events.addEventListener("error", async () => {
    setLive("reconnecting");
    if (events.readyState !== EventSource.CLOSED) return;  // the browser retries by itself
    // Refused outright (the session ended while the stream was down): find out why.
    try {
      const r = await fetch("/api/whoami", { credentials: "same-origin" });
      if (r.status === 401) window.location = "/login?next=" + window.location.pathname;
    } catch (e) { /* the terminal is away; the status bar says so */ }
  });
});
