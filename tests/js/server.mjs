// Starts `unmask serve` on 127.0.0.1 with a free port for the Node tests. The binary and
// the model come from the environment ctest sets (UNMASK_CLI, UNMASK_MODEL).
import { spawn } from "node:child_process";

export async function startServer(args = []) {
  const bin = process.env.UNMASK_CLI;
  const model = process.env.UNMASK_MODEL;
  if (!bin || !model) throw new Error("set UNMASK_CLI (the unmask binary) and UNMASK_MODEL (a model folder)");
  // One compute thread: the tiny model gains nothing from more, and on a loaded machine
  // (ctest -j) an oversubscribed OpenMP team pays a time slice per barrier.
  const proc = spawn(bin, ["serve", "-m", model, "--port", "0", "--threads", "1", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    proc.stderr.on("data", (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/[^:]+:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    exited.then(({ code }) => reject(new Error(`unmask serve exited (${code}) before listening:\n${log}`)));
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    log: () => log,
    // SIGTERM: graceful shutdown; resolves with the exit status.
    stop: async () => {
      proc.kill("SIGTERM");
      return exited;
    },
  };
}
