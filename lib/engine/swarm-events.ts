import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import type Dockerode from "dockerode";
import type { ChangeFeed } from "./instances.ts";

/** Container actions (`health_status` matches `health_status: healthy` and the rest) and service ones. */
const EVENTS = ["start", "die", "stop", "kill", "destroy", "health_status", "create", "update", "remove"];

interface EngineEvent {
  Type?: string;
  Action?: string;
  Actor?: { Attributes?: Record<string, string> };
}

/**
 * The engine's event stream narrowed to one service: the service itself changing (its update's
 * state) and its tasks' containers starting, stopping and turning healthy. A task's own state
 * has no event; the container's do, a moment before or after it.
 */
export async function serviceChanges(docker: Dockerode, service: string): Promise<ChangeFeed> {
  // Only what changes which tasks run: a health check's every probe is an exec in the container,
  // three events each (exec_create, exec_start, exec_die) under the service's name.
  const stream = (await docker.getEvents({ filters: { type: ["container", "service"], event: EVENTS } })) as unknown as Readable;
  let changed = false;
  let wake: (() => void) | undefined;
  const notice = () => {
    changed = true;
    wake?.();
  };
  const lines = createInterface({ input: stream });
  lines.on("line", (line) => {
    let event: EngineEvent;
    try {
      event = JSON.parse(line) as EngineEvent;
    } catch {
      return;
    }
    if (event.Action?.startsWith("exec_")) return; // should the engine not filter them
    const attributes = event.Actor?.Attributes ?? {};
    const about = event.Type === "service" ? attributes.name : attributes["com.docker.swarm.service.name"];
    if (about === service) notice();
  });
  // A broken stream leaves the timeouts: following goes on at their pace.
  stream.on("error", () => undefined);
  return {
    next(timeoutMs) {
      if (changed) {
        changed = false;
        return Promise.resolve(true);
      }
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          wake = undefined;
          resolve(changed);
          changed = false;
        };
        const timer = setTimeout(done, timeoutMs);
        wake = done;
      });
    },
    close() {
      lines.close();
      stream.destroy();
    },
  };
}
