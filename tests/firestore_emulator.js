#!/usr/bin/env node
// Starts the Firestore emulator (npm @firestore-emulator/server) on a loopback address for the
// tests and benchmarks.
//
//   node tests/firestore_emulator.js --port 8085 [--host 127.0.0.1]
//
// The package binds 0.0.0.0 and has no command line, so this launcher binds its gRPC server to
// the given loopback address itself. It also holds real Firestore's document size limit
// (1 MiB, checked before any write of a commit is applied, so an oversized commit writes
// nothing), which the package does not enforce.
//
// It prints "ready HOST:PORT" once it listens, then reads commands from stdin, one per line,
// and answers each with one line:
//   offline  -> closes the port and every open connection, keeps the data ("offline")
//   online   -> listens again on the same port with the same data ("ready HOST:PORT")
//   dump     -> the whole database as one line of JSON
//   quit     -> exits
// When stdin closes (the test process died), it exits too, so no emulator outlives its tests.

"use strict";

const path = require("node:path");
const readline = require("node:readline");

const root = path.resolve(__dirname, "..", "node_modules");
const grpc = require(path.join(root, "@grpc", "grpc-js"));
const { FirestoreServer } = require(path.join(root, "@firestore-emulator", "server"));

const MAX_DOCUMENT_BYTES = 1024 * 1024;
const COMMIT = "/google.firestore.v1.Firestore/Commit";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg("host", "127.0.0.1");
const port = Number(arg("port", "0"));
if (!["127.0.0.1", "::1", "localhost"].includes(host) || !(port > 0 && port < 65536)) {
  process.stderr.write("usage: firestore_emulator.js --port N [--host 127.0.0.1]\n");
  process.exit(2);
}
const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;

// Firestore's storage size rules: strings count their UTF-8 bytes plus one, numbers eight,
// maps and arrays the sum of their parts, a document its name plus its fields plus 32.
function valueSize(v) {
  if (v.has_string_value) return Buffer.byteLength(v.string_value, "utf8") + 1;
  if (v.has_bytes_value) return v.bytes_value.length;
  if (v.has_integer_value || v.has_double_value || v.has_timestamp_value) return 8;
  if (v.has_boolean_value || v.has_null_value) return 1;
  if (v.has_geo_point_value) return 16;
  if (v.has_reference_value) return nameSize(v.reference_value);
  if (v.has_array_value) return v.array_value.values.reduce((n, x) => n + valueSize(x), 0);
  if (v.has_map_value) return fieldsSize(v.map_value.fields);
  return 0;
}

function fieldsSize(fields) {
  let n = 0;
  for (const [key, value] of fields.entries()) {
    n += Buffer.byteLength(key, "utf8") + 1 + valueSize(value);
  }
  return n;
}

function nameSize(name) {
  const segments = name.split("/documents/")[1] || "";
  return segments.split("/").reduce((n, s) => n + Buffer.byteLength(s, "utf8") + 1, 16);
}

function oversized(request) {
  for (const write of request.writes) {
    if (!write.has_update) continue;
    const size = nameSize(write.update.name) + fieldsSize(write.update.fields) + 32;
    if (size > MAX_DOCUMENT_BYTES) {
      return (
        `Document '${write.update.name}' cannot be written because its size ` +
        `(${size} bytes) exceeds the maximum allowed size of ${MAX_DOCUMENT_BYTES} bytes.`
      );
    }
  }
  return null;
}

const emulator = new FirestoreServer();
// The package keeps its gRPC server in a field; binding it here keeps it off other interfaces.
const server = emulator.server;
const commit = server.handlers.get(COMMIT);
const originalCommit = commit.func;
commit.func = (call, callback) => {
  const problem = oversized(call.request);
  if (problem) {
    callback({ code: grpc.status.INVALID_ARGUMENT, details: problem, message: problem });
    return;
  }
  originalCommit(call, callback);
};

function listen(done) {
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      process.stderr.write(`cannot listen on ${address}: ${err.message}\n`);
      process.exit(1);
    }
    done();
  });
}

function say(line) {
  process.stdout.write(`${line}\n`);
}

listen(() => say(`ready ${address}`));

const commands = readline.createInterface({ input: process.stdin });
commands.on("line", (line) => {
  const command = line.trim();
  if (command === "offline") {
    server.drain(address, 0);
    server.unbind(address);
    say("offline");
  } else if (command === "online") {
    listen(() => say(`ready ${address}`));
  } else if (command === "dump") {
    say(JSON.stringify(emulator.state.toJSON()));
  } else if (command === "quit") {
    server.forceShutdown();
    process.exit(0);
  } else if (command) {
    say(`error unknown command ${JSON.stringify(command)}`);
  }
});
commands.on("close", () => {
  server.forceShutdown();
  process.exit(0);
});
