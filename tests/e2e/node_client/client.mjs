// A caller's side of a recorder stream, sent by Node's `ws` (an implementation independent of
// tapedeck's): the first message, then the audio in 640-byte messages, every fifth one in three
// fragments with a ping between them, a key press as text, and a close with code 4000.
//
//   node client.mjs <ws url> <first message as JSON> <raw PCM file>
//
// Prints {"pongs": N, "pings": N, "closeCode": N, "closeReason": "..."} once the recorder
// answers the close.
import { readFileSync } from "node:fs";
import WebSocket from "ws";

const [url, first, pcmPath] = process.argv.slice(2);
const pcm = readFileSync(pcmPath);
const ws = new WebSocket(url);
let pings = 0;
let pongs = 0;

ws.on("pong", () => {
  pongs += 1;
  if (pongs === pings) ws.close(4000, "caller hung up");
});

ws.on("open", () => {
  ws.send(first);
  for (let offset = 0, index = 0; offset < pcm.length; offset += 640, index += 1) {
    const frame = pcm.subarray(offset, Math.min(offset + 640, pcm.length));
    if (index % 5 === 4 && frame.length === 640) {
      ws.send(frame.subarray(0, 100), { binary: true, fin: false });
      ws.ping(Buffer.from(`ping ${pings}`));
      pings += 1;
      ws.send(frame.subarray(100, 400), { binary: true, fin: false });
      ws.send(frame.subarray(400), { binary: true, fin: true });
    } else {
      ws.send(frame, { binary: true });
    }
    if (index === 50) ws.send(JSON.stringify({ event: "websocket:dtmf", digit: "4", duration: 250 }));
  }
  if (pings === 0) ws.close(4000, "caller hung up");
});

ws.on("close", (code, reason) => {
  console.log(JSON.stringify({ pongs, pings, closeCode: code, closeReason: reason.toString() }));
  process.exit(0);
});

ws.on("error", (err) => {
  console.log(JSON.stringify({ error: String(err) }));
  process.exit(1);
});
