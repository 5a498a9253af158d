// Runs the real `schema-codegen` of @colyseus/schema 5.0.34 (from
// tests/node/node_modules) once per job, in one process: loading it and the
// TypeScript compiler takes most of a run. argv[2]: the path of a JSON list
// of jobs { files, target, output, namespace?, bundle? }, the arguments of
// one CLI run each; argv[3]: tests/node/node_modules. Exits non-zero when a
// run fails.
"use strict";
const fs = require("fs");
const path = require("path");

const nodeModules = process.argv[3];
const cli = path.join(nodeModules, "@colyseus", "schema", "build", "codegen", "cli.cjs");
const jobs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

const exit = process.exit;
for (const job of jobs) {
  const args = [...job.files, `--${job.target}`, "--output", job.output];
  if (job.namespace) args.push("--namespace", job.namespace);
  if (job.bundle) args.push("--bundle");
  process.argv = [process.argv[0], cli, ...args];
  // The CLI exits the process on failure: report which job it was.
  process.exit = (code) => {
    console.error(`schema-codegen ${args.join(" ")} exited with ${code}`);
    exit(code || 1);
  };
  delete require.cache[require.resolve(cli)];
  require(cli);
}
process.exit = exit;
