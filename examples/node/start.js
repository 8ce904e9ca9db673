#!/usr/bin/env node
// Start a replayflow workflow from Node.js and print its result:
//
//   node start.js WORKFLOW [INPUT_JSON] [--id ID] [--timeout SECONDS]
//
// KAFKA_BOOTSTRAP (default 127.0.0.1:9092) and REPLAYFLOW_NAMESPACE as for replayflow.
// What it shows, in order (schemas/README.md has the details):
//   1. StartWorkflow, keyed by the instance id, to replayflow.commands with Java's
//      murmur2 partitioner (kafkajs' DefaultPartitioner is Java-compatible); another
//      partitioner puts the command on the wrong partition and it is dead-lettered;
//   2. a 'replayflow-request-id' header, so the orchestrator answers on
//      replayflow.replies: ACCEPTED, UNCHANGED (the id exists) or REJECTED with why;
//   3. the Completion on replayflow.completions (key = instance id; replayflow
//      compresses with LZ4, which kafkajs reads with the kafkajs-lz4 codec).
// Exit status: 0 completed, 1 refused or ended otherwise, 2 no answer in time.
"use strict";

const crypto = require("crypto");
const { Kafka, Partitioners, CompressionTypes, CompressionCodecs, logLevel } = require("kafkajs");
const LZ4Codec = require("kafkajs-lz4");
const wire = require("./wire");

CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;

function args(argv) {
  const out = { workflow: null, input: null, id: null, timeout: 60 };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--id") out.id = argv[++i];
    else if (argv[i] === "--timeout") out.timeout = Number(argv[++i]);
    else rest.push(argv[i]);
  }
  [out.workflow, out.input] = rest;
  if (!out.workflow) {
    console.error("usage: node start.js WORKFLOW [INPUT_JSON] [--id ID] [--timeout SECONDS]");
    process.exit(2);
  }
  out.input = out.input === undefined ? "null" : JSON.stringify(JSON.parse(out.input));
  out.id = out.id || out.workflow + "-" + crypto.randomUUID().replaceAll("-", "");
  return out;
}

async function main() {
  const opts = args(process.argv.slice(2));
  const namespace = process.env.REPLAYFLOW_NAMESPACE || "";
  const topic = (name) => (namespace ? namespace + "." : "") + "replayflow." + name;
  const kafka = new Kafka({
    clientId: "replayflow-node-example",
    brokers: (process.env.KAFKA_BOOTSTRAP || "127.0.0.1:9092").split(","),
    logLevel: logLevel.ERROR,
  });
  const requestId = crypto.randomUUID();
  const deadline = Date.now() + opts.timeout * 1000;

  // Follow replies and completions from before the start is sent (read_committed:
  // kafkajs' default), so neither answer can be missed.
  const admin = kafka.admin();
  await admin.connect();
  const replyEnds = await admin.fetchTopicOffsets(topic("replies"));
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: "replayflow-node-" + crypto.randomUUID() });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic("replies"), topic("completions")], fromBeginning: true });
  let reply = null;
  let completion = null;
  await consumer.run({
    eachMessage: async ({ topic: from, message }) => {
      if (!message.key || message.key.toString() !== opts.id || !message.value) return;
      const { name, value } = wire.decode(message.value);
      if (name === "Reply" && value.request_id === requestId) reply = value;
      // The completions partition is read from its start: an instance that ended long
      // ago (the id was used before) is answered too. The last one read wins.
      if (name === "Completion" && from === topic("completions")) completion = value;
    },
  });
  for (const { partition, offset } of replyEnds) {
    consumer.seek({ topic: topic("replies"), partition, offset });
  }

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true });
  await producer.connect();
  await producer.send({
    topic: topic("commands"),
    compression: CompressionTypes.LZ4,
    messages: [{
      key: opts.id,
      value: wire.encode("StartWorkflow", { instance_id: opts.id, workflow: opts.workflow,
        input: opts.input, version: null, parent_id: null, parent_step: null }),
      headers: { "replayflow-request-id": requestId },
    }],
  });
  await producer.disconnect();
  console.log(opts.id);

  const wait = async (done) => {
    while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return done();
  };
  let code = 0;
  if (!(await wait(() => reply))) {
    console.error("no orchestrator answered in time: the start waits on the log");
    code = 2;
  } else if (reply.outcome === "REJECTED") {
    console.error(`refused (${reply.error_type}): ${reply.reason}`);
    code = 1;
  } else {
    if (reply.outcome === "UNCHANGED") console.error(`${opts.id} exists already (${reply.status})`);
    if (!(await wait(() => completion))) {
      console.error("no completion in time");
      code = 2;
    } else if (completion.status === "COMPLETED") {
      console.log(JSON.stringify(JSON.parse(completion.output)));
    } else {
      const error = completion.error ? `: ${completion.error.type}: ${completion.error.message}` : "";
      console.error(`${opts.id} ended ${completion.status}${error}`);
      code = 1;
    }
  }
  await consumer.disconnect();
  process.exit(code);
}

main().catch((error) => {
  console.error(error.message || String(error));
  process.exit(2);
});
