// Load for bench/proxy.py. Usage:
//   node load.js sse URL HOST SECONDS           events per second read from one SSE stream
//   node load.js ws URL HOST CONNECTIONS SECONDS   echoed messages per second, 8 in flight each
//   node load.js idle URL HOST COUNT            opens COUNT WebSockets, prints "open N", holds
//                                               them until stdin closes
"use strict";
const http = require("http");
const WebSocket = require("ws");

const [mode, url, host, a, b] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function sse(seconds) {
  const started = Date.now();
  let events = 0;
  const req = http.get(url, { headers: { host } }, (res) => {
    res.on("data", (chunk) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) events++;
    });
  });
  setTimeout(() => {
    const elapsed = (Date.now() - started) / 1000;
    console.log(JSON.stringify({ per_second: events / 2 / elapsed }));
    req.destroy();
    process.exit(0);
  }, seconds * 1000);
}

function open(onOpen) {
  const ws = new WebSocket(url, { headers: { host }, perMessageDeflate: false, agent: undefined });
  ws.on("open", () => onOpen(ws));
  ws.on("error", (err) => { console.error(String(err)); process.exit(1); });
  return ws;
}

function echo(connections, seconds) {
  let count = 0, ready = 0;
  const message = "m".repeat(64);
  const sockets = [];
  for (let i = 0; i < connections; i++) {
    sockets.push(open((ws) => {
      ws.on("message", () => { count++; ws.send(message); });
      if (++ready === connections) start();
    }));
  }
  function start() {
    const started = Date.now();
    count = 0;
    for (const ws of sockets) for (let k = 0; k < 8; k++) ws.send(message);
    setTimeout(() => {
      console.log(JSON.stringify({ per_second: count / ((Date.now() - started) / 1000) }));
      process.exit(0);
    }, seconds * 1000);
  }
}

function idle(total) {
  let opened = 0, pending = 0, next = 0;
  const sockets = [];
  const more = () => {
    while (pending < 200 && next < total) {
      next++; pending++;
      sockets.push(open(() => {
        pending--; opened++;
        if (opened === total) console.log(`open ${opened}`);
        else more();
      }));
    }
  };
  more();
  process.stdin.resume();
  process.stdin.on("end", () => process.exit(0));
}

if (mode === "sse") sse(Number(a));
else if (mode === "ws") echo(Number(a), Number(b));
else if (mode === "idle") idle(Number(a));
else { console.error("mode?"); process.exit(2); }
