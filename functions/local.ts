// Hoist in one process on embedded defaults: `npm start`.
import { processEnv } from "../lib/config.ts";
import { startLocal } from "../lib/local/runtime.ts";

const runtime = await startLocal(processEnv());
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    void runtime.stop().then(() => process.exit(0));
  });
