// Minimal Node.js subscriber to moodtrack's ZeroMQ publisher: proves the message schema
// is language-neutral (plain ZeroMQ PUB/SUB, UTF-8 JSON).
//
//   cd tools/node-subscriber && npm install
//   node index.js [ENDPOINT] [--count N] [--topic mood|status]
//
// Prints one JSON object a line (the message as received), like `moodtrack listen`.
// Understands both framings: multi (topic frame + JSON frame, the default) and
// single ("mood {json}" in one frame, moodtrack --zmq-frames single).
"use strict";

const zmq = require("zeromq");

function parseArgs(argv) {
  const opts = { endpoint: "tcp://127.0.0.1:5556", count: Infinity, topic: "mood" };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--count") opts.count = Number(argv[++i]);
    else if (argv[i] === "--topic") opts.topic = argv[++i];
    else opts.endpoint = argv[i];
  }
  return opts;
}

function payload(frames) {
  // [topic, json] or [b"topic {json}"]
  if (frames.length >= 2) return frames[1].toString("utf8");
  const text = frames[0].toString("utf8");
  return text.slice(text.indexOf(" ") + 1);
}

async function main() {
  const { endpoint, count, topic } = parseArgs(process.argv.slice(2));
  const sock = new zmq.Subscriber({ linger: 0 });
  sock.connect(endpoint); // the tracker binds; subscribers connect
  sock.subscribe(topic);
  console.error(`node subscriber: listening on ${endpoint} (topic ${topic})`);
  let received = 0;
  for await (const frames of sock) {
    const msg = JSON.parse(payload(frames));
    // React here: msg.valence, msg.arousal in [-1, 1]; msg.mood; msg.color = [r, g, b] in [0, 1]
    console.log(JSON.stringify(msg));
    if (++received >= count) break;
  }
  sock.close();
}

main().catch((err) => {
  console.error(`node subscriber: ${err.message}`);
  process.exit(1);
});
