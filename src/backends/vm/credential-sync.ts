import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { AgentClient } from "../../agent/client/agent-client.js";
import { AgentGuestExec } from "../../agent/client/agent-guest-exec.js";
import type { CredentialConfig } from "../../config/server-config.js";
import type { Warn } from "../../core/events.js";
import { GUEST_USER } from "../../core/types.js";
import { copyCredentialIn } from "../../guest/credential-copy.js";
import { commandFailure, runCollect } from "../../guest/exec.js";
import type { AgentMessage } from "../../protocol/agent-messages.js";
import { deleteHostFile, resolveSource, writeHostFile } from "./credential-host-write.js";
import { type Snapshot, snapshotGuest, snapshotPath } from "./credential-snapshot.js";

/**
 * Live credential sync for the VM backends (the seed's "bidirectional via
 * fsnotify + vsock"): what Docker gets from a bind mount. Started once a shed's
 * credentials were copied in, stopped on stop and delete, started afresh with
 * the new agent connection after a restart (it keeps nothing across).
 *
 * Per credential it keeps a baseline: the hash of every file as both sides last
 * agreed. A pass compares one side with the baseline and carries only what
 * differs, then moves the baseline. That is the echo suppression: a write Shed
 * made on one side shows up there as equal to the baseline and is not sent
 * back. It is also what makes deletions safe (documented choices):
 * - a file of a directory credential deleted on one side is deleted on the
 *   other only if it was in the baseline and the other side still has it
 *   unchanged; a file the other side never had, or changed, is kept;
 * - removing the whole source or target is never mirrored (a warning says so):
 *   one `rm -rf` in the guest must not wipe the host's keys;
 * - a file changed on both sides before either pass ran: the host's wins;
 * - at start, files equal on both sides form the baseline, the host's copy wins
 *   where they differ, and files only in the guest (written while no sync ran)
 *   are brought to the host.
 * Readonly credentials sync host → guest only (a readonly bind mount still
 * shows the host's edits); nothing is ever read back from them. Excluded files
 * are invisible to both sides (credential-snapshot.ts). Empty directories,
 * symlinks and mode changes of existing files are left to the copy at start.
 *
 * Host changes are seen with fs.watch (recursive for directories: Node 20 does
 * that on Linux with one inotify watch per directory), or by polling every
 * pollMs when watching is unavailable or fails (inotify limits). Guest changes
 * arrive as the agent's credential-changed notices. Both are debounced
 * (debounceMs, default 200 ms) and the passes of one credential run one at a
 * time. Failures become warnings naming the credential and paths, never
 * contents; nothing here throws into the server.
 */

export interface CredentialSyncPass {
  credential: string;
  direction: "to-guest" | "to-host";
  /** Paths relative to the credential ("" for a file credential) copied over in this pass. */
  written: string[];
  deleted: string[];
}

export interface CredentialSyncOptions {
  /** The connected agent of the running VM; sync ends by itself when this connection ends. */
  agent: AgentClient;
  credentials: readonly CredentialConfig[];
  warn: Warn;
  /** The guest user that owns synced files (default shed). */
  guestUser?: string;
  debounceMs?: number;
  /** "poll" skips fs.watch (it is the fallback anyway when a watch fails). */
  hostWatch?: "fs" | "poll";
  pollMs?: number;
  /** Called after every pass, including passes that found nothing to carry (an echo). */
  onPass?: (pass: CredentialSyncPass) => void;
}

export const DEFAULT_DEBOUNCE_MS = 200;
export const DEFAULT_POLL_MS = 2000;

type Direction = "host" | "guest";

interface Track {
  c: CredentialConfig;
  /** The real path of c.source: a symlinked source has its target written. */
  root: string;
  isDir: boolean;
  baseline: Map<string, string>;
  chain: Promise<void>;
  queued: Record<Direction, boolean>;
  timers: Partial<Record<Direction, NodeJS.Timeout>>;
  watchers: FSWatcher[];
  poll?: NodeJS.Timeout;
}

/** $1 the target directory, then the files to remove as ./rel/path. */
const REMOVE_SCRIPT = `set -eu
cd -- "$1"
shift
rm -f -- "$@"`;

export class CredentialSync {
  private readonly tracks: Track[] = [];
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  private readonly guest: AgentGuestExec;
  private readonly debounceMs: number;

  private constructor(private readonly opts: CredentialSyncOptions) {
    this.guest = new AgentGuestExec(opts.agent);
    this.debounceMs = opts.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  }

  /**
   * Reconciles each credential once (see above), then watches both sides.
   * Resolves when watching; a credential that cannot be set up is warned
   * about and left out, the others still sync.
   */
  static async start(opts: CredentialSyncOptions): Promise<CredentialSync> {
    const sync = new CredentialSync(opts);
    await sync.begin();
    return sync;
  }

  get running(): boolean {
    return !this.stopped;
  }

  /** Ends watching on both sides and waits for a pass in flight; safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const t of this.tracks) {
      for (const w of t.watchers) w.close();
      t.watchers = [];
      clearInterval(t.poll);
      for (const timer of Object.values(t.timers)) clearTimeout(timer);
    }
    await Promise.all(this.tracks.map((t) => t.chain));
  }

  private async begin(): Promise<void> {
    const { agent } = this.opts;
    agent.closed.then(() => this.stop());
    for (const c of this.opts.credentials) {
      try {
        const t = await this.track(c);
        if (t) this.tracks.push(t);
      } catch (err) {
        this.warnFailure(c, "setting up live sync", err);
      }
    }
    const watched = this.tracks.filter((t) => !t.c.readonly);
    if (watched.length > 0 && !this.stopped) {
      try {
        this.unsubscribe = await agent.onMessage(
          (m) => this.onAgentMessage(m),
          watched.map((t) => t.c.target),
        );
      } catch (err) {
        if (!this.stopped) this.opts.warn(`live sync from the guest is off: ${(err as Error).message}`);
      }
    }
    if (this.stopped) await this.stop();
  }

  private async track(c: CredentialConfig): Promise<Track | undefined> {
    let root: string;
    try {
      root = await resolveSource(c.source);
    } catch {
      this.opts.warn(`credential ${c.name}: source ${c.source} does not exist; not synced live`);
      return undefined;
    }
    const [host, guest] = await Promise.all([snapshotPath(c, root), snapshotGuest(this.opts.agent, c)]);
    const t: Track = {
      c,
      root,
      isDir: host?.isDir ?? false,
      baseline: new Map(),
      chain: Promise.resolve(),
      queued: { host: false, guest: false },
      timers: {},
      watchers: [],
    };
    for (const [rel, f] of host?.files ?? []) {
      if (guest?.files.get(rel)?.hash === f.hash) t.baseline.set(rel, f.hash);
    }
    this.enqueue(t, "host");
    if (!c.readonly) this.enqueue(t, "guest");
    await t.chain;
    this.watchHost(t);
    return t;
  }

  private watchHost(t: Track): void {
    if (this.stopped) return;
    if (this.opts.hostWatch === "poll") {
      this.pollHost(t);
      return;
    }
    const onEvent = (_e: string, name: string | Buffer | null) => {
      // The temp files writeHostFile renames into place are not changes of their own.
      if (name !== null && String(name).includes(".shed-sync-")) return;
      this.schedule(t, "host");
    };
    const fallBack = () => {
      if (this.stopped || t.poll) return;
      for (const w of t.watchers) w.close();
      t.watchers = [];
      this.opts.warn(`credential ${t.c.name}: cannot watch ${t.root}; checking it every ${this.pollMs()} ms instead`);
      this.pollHost(t);
    };
    try {
      // The parent, for the source replaced by rename (editors save that way) or removed.
      const parent = watch(dirname(t.root), { persistent: false }, (e, name) => {
        if (name !== null && String(name) === basename(t.root)) onEvent(e, name);
      });
      parent.on("error", fallBack);
      t.watchers.push(parent);
      if (t.isDir) {
        const inside = watch(t.root, { persistent: false, recursive: true }, onEvent);
        inside.on("error", fallBack);
        t.watchers.push(inside);
      }
    } catch {
      fallBack();
    }
  }

  private pollHost(t: Track): void {
    t.poll = setInterval(() => this.enqueue(t, "host"), this.pollMs());
    t.poll.unref();
  }

  private pollMs(): number {
    return this.opts.pollMs ?? DEFAULT_POLL_MS;
  }

  private onAgentMessage(m: AgentMessage): void {
    if (m.type !== "credential-changed") return;
    for (const t of this.tracks) if (!t.c.readonly && t.c.target === m.path) this.schedule(t, "guest");
  }

  private schedule(t: Track, dir: Direction): void {
    if (this.stopped) return;
    clearTimeout(t.timers[dir]);
    t.timers[dir] = setTimeout(() => {
      t.timers[dir] = undefined;
      this.enqueue(t, dir);
    }, this.debounceMs);
  }

  /** Runs a pass after the credential's current one; a pass already waiting covers any later change. */
  private enqueue(t: Track, dir: Direction): void {
    if (this.stopped || t.queued[dir]) return;
    t.queued[dir] = true;
    t.chain = t.chain.then(async () => {
      t.queued[dir] = false;
      if (this.stopped) return;
      try {
        const pass = dir === "host" ? await this.toGuest(t) : await this.toHost(t);
        if (pass && !this.stopped) this.opts.onPass?.(pass);
      } catch (err) {
        if (!this.stopped) this.warnFailure(t.c, dir === "host" ? "copying to the guest" : "copying to the host", err);
      }
    });
  }

  /** Host → guest: files that differ from the baseline are copied in, baseline files the host deleted are removed. */
  private async toGuest(t: Track): Promise<CredentialSyncPass | undefined> {
    const host = await snapshotPath(t.c, t.root);
    if (!host) {
      this.opts.warn(`credential ${t.c.name}: ${t.c.source} was removed on the host; the guest's copy is kept`);
      return undefined;
    }
    const written = [...host.files].filter(([rel, f]) => t.baseline.get(rel) !== f.hash).map(([rel]) => rel);
    const deleted = host.isDir ? [...t.baseline.keys()].filter((rel) => !host.files.has(rel)) : [];
    const owner = this.opts.guestUser ?? GUEST_USER;
    if (written.length > 0) {
      const members = host.isDir ? written.map((rel) => `./${rel}`) : undefined;
      await copyCredentialIn(this.guest, { ...t.c, source: t.root }, { owner, ...(members ? { members } : {}) });
    }
    if (deleted.length > 0) {
      const r = await runCollect(this.guest, {
        argv: ["bash", "-c", REMOVE_SCRIPT, "shed-credential-sync", t.c.target, ...deleted.map((rel) => `./${rel}`)],
        user: "root",
      });
      if (r.exitCode !== 0) throw commandFailure(`removing files from ${t.c.target}`, r.stderr, r.exitCode);
    }
    for (const rel of written) t.baseline.set(rel, host.files.get(rel)?.hash as string);
    for (const rel of deleted) t.baseline.delete(rel);
    return { credential: t.c.name, direction: "to-guest", written, deleted };
  }

  /** Guest → host: files the guest changed since the baseline are written on the host (see the rules above). */
  private async toHost(t: Track): Promise<CredentialSyncPass | undefined> {
    const guest = await snapshotGuest(this.opts.agent, t.c);
    if (!guest) {
      this.opts.warn(`credential ${t.c.name}: ${t.c.target} was removed in the guest; the host's copy is kept`);
      return undefined;
    }
    const host: Snapshot | undefined = await snapshotPath(t.c, t.root);
    if (!host) return undefined;
    if (guest.isDir !== host.isDir) {
      this.opts.warn(`credential ${t.c.name}: ${t.c.target} in the guest and ${t.c.source} differ in kind; not synced`);
      return undefined;
    }
    const written: string[] = [];
    const deleted: string[] = [];
    let hostWins = false;
    for (const [rel, g] of guest.files) {
      const base = t.baseline.get(rel);
      if (base === g.hash) continue;
      const h = host.files.get(rel);
      if (h?.hash === g.hash) {
        t.baseline.set(rel, g.hash);
        continue;
      }
      if (h && h.hash !== base) {
        // Changed on both sides since they last agreed: the host's copy goes in by the host pass.
        hostWins = true;
        continue;
      }
      await writeHostFile(t.root, rel, g.data, g.mode);
      t.baseline.set(rel, g.hash);
      written.push(rel);
    }
    if (guest.isDir) {
      for (const [rel, base] of [...t.baseline]) {
        if (guest.files.has(rel)) continue;
        const h = host.files.get(rel);
        if (h?.hash === base) {
          await deleteHostFile(t.root, rel);
          deleted.push(rel);
        } else if (h) hostWins = true;
        t.baseline.delete(rel);
      }
    }
    if (hostWins) this.enqueue(t, "host");
    return { credential: t.c.name, direction: "to-host", written, deleted };
  }

  private warnFailure(c: CredentialConfig, what: string, err: unknown): void {
    // Messages from tar and the file system name paths only; contents never reach them.
    this.opts.warn(`credential ${c.name}: live sync failed ${what}: ${(err as Error).message}`);
  }
}
