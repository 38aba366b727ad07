#!/usr/bin/env node
// Starts @vercel/cosmosdb-server for the TrustGate dev stack and tests.
//
// The package's own CLI differs from real Cosmos DB in two ways this launcher fixes, so the app's
// data layer can be written against Cosmos semantics rather than around the emulator:
//   1. It answers every request with "Connection: close" (about 26 ms of TCP setup per call);
//      here the HTTP server keeps connections alive.
//   2. A point read of a missing item crashes inside the handler and answers 500, which the SDK
//      retries for about 0.5 s; here it answers 404 NotFound as Cosmos DB does.
// Data is kept in memory only. Usage: node cosmos_launcher.js --port 8081 [--host 127.0.0.1]

"use strict";

const readDocument = require("@vercel/cosmosdb-server/lib/handler/read-document");
const partitionHeader = require("@vercel/cosmosdb-server/lib/utils/get-partition-from-header");

// Must be patched before the package's router captures the handler (on first require below).
const originalRead = readDocument.default;
readDocument.default = (account, req, res, params) => {
  const collection = account.database(params.dbId).collection(params.collId);
  if (collection.read()) {
    const partitionKey = partitionHeader.default(req);
    const parsed = partitionHeader.parsePartitionKey(partitionKey, params.docId);
    if (!collection.document(params.docId, parsed).read()) {
      res.statusCode = 404;
      return {
        code: "NotFound",
        message: "Entity with the specified id does not exist in the system."
      };
    }
  }
  return originalRead(account, req, res, params);
};

const { createHttpServer } = require("@vercel/cosmosdb-server");

function parseArgs(argv) {
  const args = { port: 8081, host: "127.0.0.1" };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === "--port") args.port = parseInt(argv[++i], 10);
    else if (argv[i] === "--host") args.host = argv[++i];
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const server = createHttpServer({ keepAlive: true });
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
server.listen(args.port, args.host, () => {
  const { port } = server.address();
  console.log(`cosmosdb-server ready on http://${args.host}:${port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
