// replayflow's wire format for any Avro library (see schemas/README.md): Avro
// single-object encoding (C3 01, the CRC-64-AVRO fingerprint of the writer schema's
// Parsing Canonical Form in little-endian order, the Avro body), every version of every
// record read from the .avsc files in schemas/.
"use strict";

const fs = require("fs");
const path = require("path");
const avro = require("avsc");

const SCHEMAS = process.env.REPLAYFLOW_SCHEMAS || path.join(__dirname, "..", "..", "schemas");
const MAGIC = Buffer.from([0xc3, 0x01]);

// CRC-64-AVRO (Rabin), as the Avro specification writes it.
const EMPTY = 0xc15d213aa4d7a795n;
const TABLE = Array.from({ length: 256 }, (_, i) => {
  let fp = BigInt(i);
  for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n));
  return fp & 0xffffffffffffffffn;
});

function fingerprint(canonical) {
  let fp = EMPTY;
  for (const byte of Buffer.from(canonical, "utf8")) {
    fp = (fp >> 8n) ^ TABLE[Number((fp ^ BigInt(byte)) & 0xffn)];
  }
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(fp & 0xffffffffffffffffn);
  return out; // little-endian: the wire order
}

// name -> [{ version, type, fingerprint }], newest last; fingerprint (hex) -> entry
const byName = new Map();
const byFingerprint = new Map();

function load(folder) {
  for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) load(full);
    else if (entry.name.endsWith(".avsc")) {
      const schema = JSON.parse(fs.readFileSync(full, "utf8"));
      const type = avro.Type.forSchema(schema);
      // type.schema() is the Parsing Canonical Form (no docs, defaults or extra keys).
      const record = { name: schema.name, version: schema["replayflow.version"], type,
        fingerprint: fingerprint(JSON.stringify(type.schema())) };
      if (!byName.has(schema.name)) byName.set(schema.name, []);
      byName.get(schema.name).push(record);
      byFingerprint.set(record.fingerprint.toString("hex"), record);
    }
  }
}
load(SCHEMAS);
for (const versions of byName.values()) versions.sort((a, b) => a.version - b.version);

// The record as the newest version of its schema writes it.
function encode(name, value) {
  const versions = byName.get(name);
  if (!versions) throw new Error("no schema for " + name);
  const newest = versions[versions.length - 1];
  return Buffer.concat([MAGIC, newest.fingerprint, newest.type.toBuffer(value)]);
}

// Any record of any known version: { name, value } (older versions resolved to the
// newest, so fields added since get their defaults).
function decode(bytes) {
  if (bytes.length < 10 || bytes[0] !== 0xc3 || bytes[1] !== 0x01) {
    throw new Error("not a replayflow record");
  }
  const writer = byFingerprint.get(bytes.subarray(2, 10).toString("hex"));
  if (!writer) throw new Error("unknown schema fingerprint " + bytes.subarray(2, 10).toString("hex"));
  const versions = byName.get(writer.name);
  const reader = versions[versions.length - 1].type;
  const resolver = reader.createResolver(writer.type);
  return { name: writer.name, value: reader.fromBuffer(bytes.subarray(10), resolver) };
}

module.exports = { encode, decode, fingerprint };
