// tapedeck recordings browser: the waveform with its key marks and reconnection gaps, seeking from a turn or a mark, the
// turn being played highlighted, and a live call's words refreshed while it streams. No build step.
"use strict";

function drawWave(canvas, audio, peaks, marks, gaps) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const style = getComputedStyle(document.documentElement);
  const length = peaks.length, channels = peaks.channels || 1, data = peaks.data;
  const duration = audio.duration || peaks.duration || 1;
  const played = (audio.currentTime || 0) / duration;
  ctx.clearRect(0, 0, width, height);
  const lane = height / channels;
  for (let c = 0; c < channels; c++) {
    const middle = lane * c + lane / 2;
    for (let x = 0; x < width; x++) {
      const i = Math.floor((x / width) * length);
      const low = data[(i * channels + c) * 2] / 32768, high = data[(i * channels + c) * 2 + 1] / 32768;
      ctx.fillStyle = x / width <= played ? style.getPropertyValue("--played") : style.getPropertyValue("--wave");
      ctx.fillRect(x, middle - high * lane / 2, 1, Math.max(1, (high - low) * lane / 2));
    }
  }
  // Where the call was reconnecting: silence in the recording, shaded across the whole height,
  // at least 3 px wide so that a gap of a few milliseconds still shows.
  ctx.fillStyle = style.getPropertyValue("--gap");
  for (const gap of gaps) {
    const x = Math.floor((gap.start / duration) * width);
    ctx.fillRect(x, 0, Math.max(3, Math.ceil(((gap.end - gap.start) / duration) * width)), height);
  }
  ctx.fillStyle = style.getPropertyValue("--mark");
  ctx.font = "14px system-ui, sans-serif";
  for (const mark of marks) {
    const x = Math.round((mark.at / duration) * width);
    ctx.fillRect(x, 0, 2, height);
    ctx.fillText(mark.digit, Math.min(x + 4, width - 10), 14);
  }
}

function seek(audio, seconds) {
  audio.currentTime = seconds;
  const playing = audio.play();
  if (playing) playing.catch(() => {});
}

function setUpRecording(section) {
  const audio = section.querySelector("audio");
  const canvas = section.querySelector("canvas[data-peaks]");
  const turns = Array.from(section.querySelectorAll("button.turn"));
  const marks = canvas ? JSON.parse(canvas.dataset.marks || "[]") : [];
  const gaps = canvas ? JSON.parse(canvas.dataset.gaps || "[]") : [];
  let peaks = null;
  const redraw = () => { if (peaks) drawWave(canvas, audio, peaks, marks, gaps); };
  if (canvas) {
    fetch(canvas.dataset.peaks, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((p) => { peaks = p; canvas.dataset.ready = p ? "yes" : "no"; redraw(); });
    canvas.addEventListener("click", (event) => {
      const rect = canvas.getBoundingClientRect();
      const duration = audio.duration || (peaks && peaks.duration) || 0;
      seek(audio, ((event.clientX - rect.left) / rect.width) * duration);
    });
  }
  section.querySelectorAll("button.seek").forEach((button) => {
    button.addEventListener("click", () => seek(audio, parseFloat(button.dataset.start)));
  });
  const highlight = () => {
    const now = audio.currentTime;
    for (const turn of turns) {
      const on = now >= parseFloat(turn.dataset.start) && now < parseFloat(turn.dataset.end) + 0.05;
      if (on) turn.setAttribute("aria-current", "true");
      else turn.removeAttribute("aria-current");
    }
    redraw();
  };
  ["timeupdate", "seeked", "loadedmetadata"].forEach((name) => audio.addEventListener(name, highlight));
}

function followLive(section) {
  const url = section.dataset.live;
  const text = document.getElementById("live-text");
  const status = document.getElementById("status");
  const poll = () => {
    fetch(url, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((live) => {
        if (!live) return;
        text.textContent = live.text;
        status.textContent = live.status || "";
        if (live.live) setTimeout(poll, 2000);
        else window.location.reload();
      })
      .catch(() => setTimeout(poll, 5000));
  };
  setTimeout(poll, 2000);
}

document.querySelectorAll("section.recording").forEach(setUpRecording);
document.querySelectorAll("section[data-live]").forEach(followLive);
