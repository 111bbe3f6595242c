import type Dockerode from "dockerode";
import { makeContext, tarDir } from "./docker.ts";

export interface AppVersion {
  /** What the app answers on /cgi-bin/app, e.g. "v2". */
  version: string;
  /** Serves /healthz (default true); false makes every health gate fail. */
  healthy?: boolean;
  /** Answers 500 to one request in this many (a bad canary). */
  failOneIn?: number;
}

/**
 * Builds a tiny web app image from the local busybox base: busybox httpd with a CGI that
 * answers the version, and /healthz. Every request runs the CGI, so a version can fail some.
 */
export async function buildApp(docker: Dockerode, tag: string, app: AppVersion): Promise<string> {
  const fail = app.failOneIn ? `if [ $((RANDOM % ${app.failOneIn})) -eq 0 ]; then printf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nboom\\n'; exit 0; fi\n` : "";
  const dir = await makeContext({
    Dockerfile: [
      "FROM hoist/busybox:latest",
      "COPY www /www",
      "RUN chmod +x /www/cgi-bin/app",
      'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
      "",
    ].join("\n"),
    "www/cgi-bin/app": `#!/bin/sh\n${fail}printf 'Content-Type: text/plain\\r\\n\\r\\n${app.version}\\n'\n`,
    ...(app.healthy === false ? { "www/index.html": "no health here\n" } : { "www/healthz": "ok\n" }),
  });
  const stream = await docker.buildImage(tarDir(dir), { t: tag });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
      const failed = out?.find((o) => o.error);
      if (err || failed) reject(err ?? new Error(`building ${tag}: ${failed?.error}`));
      else resolve();
    }),
  );
  return tag;
}
