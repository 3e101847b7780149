import { type FSWatcher, statSync, watch } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { SubscribeRequest } from "../protocol/agent-messages.js";
import type { AgentState } from "./agent-state.js";
import type { AgentStreamIO, StreamHandler } from "./connection.js";

/** Editors and CLIs write a credential in bursts (temp file, rename, chmod): one notice per burst. */
const DEBOUNCE_MS = 150;

/**
 * A message subscription: the host hears when a watched guest file changes
 * (the guest half of live credential sync; echo suppression is the host's job,
 * which knows what it wrote) and when the agent starts draining. Directories
 * are watched rather than files, so a file replaced by rename or created later
 * is still seen.
 */
export function startWatch(req: SubscribeRequest, io: AgentStreamIO, state: AgentState): StreamHandler {
  const byDir = new Map<string, Set<string>>();
  for (const p of req.watch) {
    const names = byDir.get(dirname(p)) ?? new Set<string>();
    names.add(basename(p));
    byDir.set(dirname(p), names);
  }
  const timers = new Map<string, NodeJS.Timeout>();
  const watchers: FSWatcher[] = [];
  const announce = (path: string) => {
    timers.delete(path);
    stat(path).then(
      (s) => io.message({ type: "credential-changed", path, exists: true, mtimeMs: s.mtimeMs, size: s.size }),
      () => io.message({ type: "credential-changed", path, exists: false }),
    );
  };
  const schedule = (path: string) => {
    clearTimeout(timers.get(path));
    timers.set(
      path,
      setTimeout(() => announce(path), DEBOUNCE_MS),
    );
  };
  for (const [dir, names] of byDir) {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || !names.has(String(name))) return;
        schedule(`${dir === "/" ? "" : dir}/${name}`);
      });
      w.on("error", () => w.close());
      watchers.push(w);
    } catch {
      // A directory that does not exist (yet) cannot be watched; its files are announced by the host's own copy.
    }
  }
  // A watched directory (a directory credential) is announced as a whole when anything inside it changes:
  // the parent's watch above sees only the directory's own entry, not edits within it.
  for (const p of req.watch) {
    try {
      if (!statSync(p).isDirectory()) continue;
      const w = watch(p, { persistent: false, recursive: true }, () => schedule(p));
      w.on("error", () => w.close());
      watchers.push(w);
    } catch {
      // Missing or not a directory: the parent's watch covers it.
    }
  }
  const stopDrain = state.onDrain(() => io.message({ type: "draining" }));
  io.accept({ watching: watchers.length });
  const handler: StreamHandler = {
    onCancel() {
      stopDrain();
      for (const w of watchers) w.close();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
  return handler;
}
