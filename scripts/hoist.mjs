#!/usr/bin/env node
// The `hoist` bin: runs lib/cli/main.ts through tsx's loader in a child Node, forwarding
// arguments, stdio, signals and the exit code, so `npx hoist ...` works from any directory.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../lib/cli/main.ts", import.meta.url));

let loader;
try {
  // Resolved from this file, not the caller's directory: tsx is a dependency of this package.
  loader = import.meta.resolve("tsx");
} catch {
  process.stderr.write("hoist: cannot find tsx next to the hoist package: run `npm install` in " + fileURLToPath(new URL("..", import.meta.url)) + "\n");
  process.exit(1);
}

const child = spawn(process.execPath, [...process.execArgv, "--import", loader, main, ...process.argv.slice(2)], { stdio: "inherit" });

// Ctrl+C reaches the whole foreground process group already; forward what is sent to us alone.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
}

child.on("error", (err) => {
  process.stderr.write(`hoist: could not start ${process.execPath}: ${err.message}\n`);
  process.exit(1);
});

child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal, so the caller's shell sees what happened.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
