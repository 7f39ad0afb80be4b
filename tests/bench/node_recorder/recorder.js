// The bench's reference recorder: Node and ws appending each call's 16 kHz frames to a WAV, the
// design tapedeck's recorder is measured against (tests/bench/node_server.py starts it).
//
//   node recorder.js PORT STORAGE_DIR STATS_DIR
//
// It keeps what the bench reads from tapedeck's instrumented app (tests/bench/instrumented.py):
// calls/<conversation_uuid>/audio.wav under STORAGE_DIR, and in STATS_DIR `<pid>.json` (streams
// finished and each frame's delay against the send time stamped in its first 8 bytes) and
// `<pid>.stall.json` (how late the event loop woke a 5 ms timer), with tests/bench/timing.py's
// histogram shape. It checks no token: the bench's load is its only caller.
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { performance } = require("node:perf_hooks");
const { WebSocketServer } = require("ws");

const [port, storage, statsDir] = process.argv.slice(2);
const RATE = 16000;
const HEADER_BYTES = 44;
const STALL_SLEEP_MS = 5;
// timing.py's histogram: 0.1 ms bins up to 5 s, anything past that is overflow.
const BIN_MS = 0.1;
const BINS = 50000;
const CALL_ID = /^[A-Za-z0-9._-]+$/;

/** Wall-clock seconds with sub-millisecond precision, the clock of the client's stamps (time.time()). */
function now() {
  return (performance.timeOrigin + performance.now()) / 1000;
}

class Histogram {
  constructor() {
    this.bins = new Map();
    this.count = 0;
    this.overflow = 0;
    this.maxMs = 0;
  }

  add(seconds) {
    const ms = Math.max(seconds * 1000, 0);
    const index = Math.floor(ms / BIN_MS);
    this.count += 1;
    this.maxMs = Math.max(this.maxMs, ms);
    if (index < BINS) this.bins.set(index, (this.bins.get(index) || 0) + 1);
    else this.overflow += 1;
  }

  toJSON() {
    return { count: this.count, overflow: this.overflow, max_ms: this.maxMs, bins: Object.fromEntries(this.bins) };
  }
}

function writeJson(file, data) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data));
  fs.renameSync(tmp, file);
}

function wavHeader(dataBytes) {
  const header = Buffer.alloc(HEADER_BYTES);
  header.write("RIFF", 0);
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write("WAVEfmt ", 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(RATE, 24);
  header.writeUInt32LE(RATE * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36);
  header.writeUInt32LE(dataBytes, 40);
  return header;
}

const delays = new Histogram();
const worstDelay = {};
let open = 0;
let finished = 0;

function writeStats() {
  const stats = { pid: process.pid, streams: finished, unread_at_close: 0, max_queued: 0 };
  writeJson(path.join(statsDir, `${process.pid}.json`), { ...stats, worst_by_second: worstDelay, delays });
}

function timeFrame(frame) {
  if (frame.length < 8) return;
  const taken = now();
  const delay = taken - frame.readDoubleLE(0);
  delays.add(delay);
  const second = Math.floor(taken);
  worstDelay[second] = Math.max(worstDelay[second] || 0, delay);
}

function record(ws) {
  let wav = null;
  let bytes = 0;
  open += 1;
  // A protocol error closes the socket; without a listener it would end the process.
  ws.on("error", () => {});
  ws.on("message", (data, isBinary) => {
    if (!isBinary) {
      // Vonage sends one JSON text frame with the call's metadata before any audio.
      if (wav) return;
      let call = "";
      try {
        call = String(JSON.parse(data).conversation_uuid || "");
      } catch {
        // not JSON: refused below, as a call with no id
      }
      if (!CALL_ID.test(call)) return ws.close(1008, "bad conversation_uuid");
      const folder = path.join(storage, "calls", call);
      fs.mkdirSync(folder, { recursive: true });
      wav = fs.createWriteStream(path.join(folder, "audio.wav"));
      wav.write(wavHeader(0));
      return;
    }
    if (!wav) return;
    timeFrame(data);
    wav.write(data);
    bytes += data.length;
  });
  ws.on("close", () => {
    const done = () => {
      finished += 1;
      open -= 1;
      if (open === 0) writeStats();
    };
    if (!wav) return done();
    // The header's sizes are known only now: write them over the placeholder once the frames are out.
    wav.end(() => {
      const fd = fs.openSync(wav.path, "r+");
      fs.writeSync(fd, wavHeader(bytes), 0, HEADER_BYTES, 0);
      fs.closeSync(fd);
      done();
    });
  });
}

function monitorStalls() {
  const late = new Histogram();
  const worst = {};
  let written = Math.floor(Date.now() / 1000);
  let before = performance.now();
  const wake = () => {
    const lateMs = performance.now() - before - STALL_SLEEP_MS;
    late.add(lateMs / 1000);
    const second = Math.floor(Date.now() / 1000);
    worst[second] = Math.max(worst[second] || 0, Math.max(lateMs, 0) / 1000);
    if (second !== written) {
      written = second;
      writeJson(path.join(statsDir, `${process.pid}.stall.json`), { pid: process.pid, late, worst_by_second: worst });
    }
    before = performance.now();
    setTimeout(wake, STALL_SLEEP_MS);
  };
  setTimeout(wake, STALL_SLEEP_MS);
}

fs.mkdirSync(statsDir, { recursive: true });
const server = http.createServer((request, response) => {
  response.writeHead(request.url === "/healthz" ? 200 : 404, { "content-type": "text/plain" });
  response.end(request.url === "/healthz" ? "ok\n" : "not found\n");
});
new WebSocketServer({ server }).on("connection", record);
monitorStalls();
server.listen(Number(port), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
