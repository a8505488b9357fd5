// sqsserver.mjs starts local-aws-sqs, an SQS stand-in that speaks the AWS
// JSON 1.0 protocol used by aws-sdk-go-v2, on 127.0.0.1 for tests and the demo.
//
// Usage: node scripts/sqsserver.mjs [--port N] [--region R] [--account-id A]
//
// --port 0 (the default) lets the kernel pick a free port. Once the server is
// listening, exactly one JSON line is printed on stdout:
//
//   {"event":"listening","url":"http://127.0.0.1:PORT","port":PORT}
//
// Everything else (diagnostics) goes to stderr. SIGTERM or SIGINT closes the
// server and exits with status 0.
import { parseArgs } from "node:util";
import { createSqsServer } from "local-aws-sqs";

const HOST = "127.0.0.1";

function fail(message) {
  process.stderr.write(`sqsserver: ${message}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: "string", default: "0" },
      region: { type: "string", default: "us-east-1" },
      "account-id": { type: "string", default: "123456789012" },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  fail(err.message);
}

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  fail(`--port must be an integer in [0, 65535], got ${JSON.stringify(values.port)}`);
}
if (!/^\d{12}$/.test(values["account-id"])) {
  fail(`--account-id must be 12 digits, got ${JSON.stringify(values["account-id"])}`);
}

// A listen error (EADDRINUSE, EACCES) is emitted as an "error" event, not a
// rejection of createSqsServer, so it would otherwise surface as an uncaught
// exception with a stack trace. Report it plainly instead.
process.on("uncaughtException", (err) => fail(`uncaught: ${err && err.stack ? err.stack : err}`));

const server = await createSqsServer({
  port,
  hostname: HOST,
  region: values.region,
  accountId: values["account-id"],
  // Tests create and delete queues with the same name in quick succession.
  emulateQueueCreationLifecycle: false,
});

const actual = server.address().port;
process.stdout.write(
  JSON.stringify({ event: "listening", url: `http://${HOST}:${actual}`, port: actual }) + "\n",
);

let stopping = false;
function stop(signal) {
  if (stopping) {
    return;
  }
  stopping = true;
  process.stderr.write(`sqsserver: ${signal} received, closing\n`);
  server.close(() => process.exit(0));
  // Idle keep-alive connections would otherwise hold close() open.
  server.closeAllConnections();
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
