import { HOIST_FILE, parseHoistFile, type ParsedConfig } from "../pipeline/config.ts";
import type { RepoRef } from "../pipeline/refs.ts";
import type { SourceReader } from "../scm/port.ts";

/**
 * `.hoist.yml` by repository and commit. A file at a commit never changes, so entries never
 * go stale; the map is only bounded. Concurrent look-ups of one commit share one read.
 */
export class ConfigCache {
  private readonly entries = new Map<string, Promise<ParsedConfig | undefined>>();

  constructor(
    private readonly source: SourceReader,
    private readonly maxEntries = 1000,
  ) {}

  get(repo: RepoRef, sha: string): Promise<ParsedConfig | undefined> {
    const key = `${repo.provider}:${repo.cloneUrl}@${sha}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = this.source.readFile(repo, sha, HOIST_FILE).then((text) => (text === undefined ? undefined : parseHoistFile(text)));
      // A failed read is not cached: the next delivery tries again.
      entry.catch(() => this.entries.delete(key));
      this.entries.set(key, entry);
      if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    }
    return entry;
  }
}
