// The upstream app of bench/proxy.py for streams: GET /sse sends small events as fast as the
// connection takes them; /ws echoes every message. Usage: node upstream.js PORT
"use strict";
const http = require("http");
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2]);
const event = Buffer.from("data: " + "x".repeat(100) + "\n\n");
const batch = Buffer.concat(Array(16).fill(event));

const server = http.createServer((req, res) => {
  if (req.url !== "/sse") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok");
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  let open = true;
  req.on("close", () => { open = false; });
  const pump = () => {
    while (open && res.write(batch)) {}
    if (open) res.once("drain", pump);
  };
  pump();
});
const wss = new WebSocketServer({ server, path: "/ws", perMessageDeflate: false });
wss.on("connection", (ws) => ws.on("message", (data, binary) => ws.send(data, { binary })));
server.listen(port, "127.0.0.1");
