import { existsSync } from "node:fs";
import { ShedError } from "../../core/errors.js";
import { validateShedName } from "../../core/names.js";
import type { Shed } from "../../core/types.js";
import type { CliContext } from "../context.js";
import { mergeMappings, type TunnelMapping } from "./mapping.js";
import { endProcess, portStatus } from "./processes.js";
import {
  addForwards,
  controlPath,
  isTunnelProcess,
  startBackground,
  startForeground,
  type TunnelTarget,
} from "./ssh-tunnel.js";
import { readTunnelState, type TunnelEntry, type TunnelState, withTunnelState } from "./state.js";

export interface StartOptions {
  tunnel?: string[];
  profile?: string[];
  background?: boolean;
  replace?: boolean;
}

/** What `tunnels start` would forward: the -p profiles merged, then the -t mappings. */
export function plannedMappings(ctx: CliContext, opts: StartOptions): (TunnelMapping & { from: string })[] {
  const mappings = mergeMappings(
    ctx.cfg.data.tunnels,
    { profiles: opts.profile ?? [], specs: opts.tunnel ?? [] },
    ctx.cfg.file,
  );
  if (mappings.length === 0) {
    throw new ShedError("INVALID_REQUEST", "no ports to forward", {
      hint: `give -t PORT or -t LOCAL:REMOTE, or -p PROFILE (profiles are tunnels: in ${ctx.cfg.file})`,
    });
  }
  return mappings;
}

const sameShed = (e: TunnelEntry, t: { server: string; shed: string }) => e.server === t.server && e.shed === t.shed;

/** Ends the processes behind these entries (each pid once, only while it is still that tunnel's ssh). */
async function endEntries(entries: TunnelEntry[]): Promise<void> {
  const byPid = new Map(entries.map((e) => [e.pid, e]));
  await Promise.all([...byPid.values()].map((e) => (isTunnelProcess(e, e.pid) ? endProcess(e.pid) : undefined)));
}

/** Entries whose ssh is gone are dropped: their ports are free again. */
function prune(state: TunnelState): void {
  state.tunnels = state.tunnels.filter((e) => isTunnelProcess(e, e.pid));
}

/**
 * Every port is checked before anything starts: against the state file (a
 * port another tunnel holds, named with its shed) and by listening on it.
 * Returns the mappings still to start (one this shed already forwards the same
 * way is left as it is).
 */
async function checkPorts(
  state: TunnelState,
  t: TunnelTarget,
  mappings: TunnelMapping[],
  replacing: boolean,
): Promise<TunnelMapping[]> {
  const todo: TunnelMapping[] = [];
  for (const m of mappings) {
    const own = state.tunnels.find((e) => e.local === m.local && sameShed(e, t));
    if (replacing && own) {
      // This shed's own port: freed when its tunnels are replaced, so it is neither a conflict nor held.
      todo.push(m);
      continue;
    }
    const held = state.tunnels.find((e) => e.local === m.local);
    if (held && sameShed(held, t) && held.remote === m.remote) continue;
    if (held) {
      const where = `shed ${held.shed}${held.server === t.server ? "" : ` on server ${held.server}`}`;
      throw new ShedError(
        "PORT_IN_USE",
        `local port ${m.local} is already forwarded by a tunnel of ${where} (to its port ${held.remote})`,
        {
          hint: sameShed(held, t)
            ? `--replace replaces ${t.shed}'s tunnels with these; or pick another local port: -t OTHER:${m.remote}`
            : `stop it first (shed tunnels stop ${held.shed}) or pick another local port: -t OTHER:${m.remote}`,
          details: { port: m.local, shed: held.shed, server: held.server },
        },
      );
    }
    const status = await portStatus(m.local);
    if (status === "held") {
      throw new ShedError("PORT_IN_USE", `local port ${m.local} (127.0.0.1:${m.local}) is in use by another program`, {
        hint: `stop what listens there, or pick another local port: -t OTHER:${m.remote}`,
        details: { port: m.local },
      });
    }
    if (status === "denied") {
      throw new ShedError("INVALID_REQUEST", `local port ${m.local} is a privileged port this user may not listen on`, {
        hint: `pick a local port from 1024 up: -t ${m.local + 8000 <= 65535 ? m.local + 8000 : 8080}:${m.remote}`,
      });
    }
    todo.push(m);
  }
  return todo;
}

export async function startTunnels(ctx: CliContext, name: string, opts: StartOptions): Promise<void> {
  validateShedName(name);
  const mappings = plannedMappings(ctx, opts);
  const { name: server, api } = await ctx.server();
  // A tunnel never starts a stopped shed (the server refuses its forwards too): say so now, not at the first connection.
  const shed = await api.json<Shed>("GET", `/api/sheds/${name}`);
  if (shed.status !== "running") {
    throw new ShedError("SHED_ALREADY_STOPPED", `shed ${name} is ${shed.status}: tunnels do not start it`, {
      hint: `start it first: shed start ${name}`,
    });
  }
  const t: TunnelTarget = { cfg: ctx.cfg, server, shed: name };
  const now = new Date().toISOString();
  const entry = (m: TunnelMapping, pid: number, background: boolean, control?: string): TunnelEntry => ({
    server,
    shed: name,
    local: m.local,
    remote: m.remote,
    pid,
    background,
    ...(control ? { control } : {}),
    started: now,
  });

  // The lock is held from the port checks until the entries are written, so two starts never both take a port.
  const started = await withTunnelState(ctx.cfg, async (state) => {
    prune(state);
    const todo = await checkPorts(state, t, mappings, opts.replace === true);
    // Replaced only once the new ports are known to be free: a refused start leaves the old tunnels running.
    if (opts.replace) {
      await endEntries(state.tunnels.filter((e) => sameShed(e, t)));
      state.tunnels = state.tunnels.filter((e) => !sameShed(e, t));
    }
    if (todo.length === 0) return { todo, pid: undefined };
    if (opts.background) {
      const master = state.tunnels.find((e) => sameShed(e, t) && e.background && e.control && existsSync(e.control));
      if (master?.control) {
        addForwards(t, master.control, todo);
        state.tunnels.push(...todo.map((m) => entry(m, master.pid, true, master.control)));
        return { todo, pid: master.pid };
      }
      const pid = await startBackground(t, todo);
      state.tunnels.push(...todo.map((m) => entry(m, pid, true, controlPath(t))));
      return { todo, pid };
    }
    const fg = await startForeground(t, todo);
    state.tunnels.push(...todo.map((m) => entry(m, fg.pid, false)));
    return { todo, pid: fg.pid, exit: fg.exit };
  });

  const lines = mappings.map(
    (m) => `127.0.0.1:${m.local} -> ${name}:${m.remote}${started.todo.includes(m) ? "" : " (already forwarded)"}`,
  );
  const result = {
    shed: name,
    server,
    background: opts.background === true,
    pid: started.pid ?? null,
    tunnels: mappings.map((m) => ({ local: m.local, remote: m.remote, started: started.todo.includes(m) })),
  };
  if (!("exit" in started) || !started.exit) {
    ctx.result(result, () =>
      [...lines, opts.background ? `running in the background; stop with: shed tunnels stop ${name}` : ""].join("\n"),
    );
    return;
  }
  // Foreground: the result goes out now (the command runs until Ctrl-C); the entries go when ssh does.
  ctx.result(result, () => [...lines, "forwarding until Ctrl-C"].join("\n"));
  const code = await started.exit;
  const pid = started.pid;
  await withTunnelState(ctx.cfg, (state) => {
    state.tunnels = state.tunnels.filter((e) => e.pid !== pid);
  });
  process.exitCode = code;
}

export interface ListedTunnel extends TunnelEntry {
  status: "active" | "dead";
}

/** Every recorded tunnel, each checked: its ssh still runs and something holds its local port. */
export async function listTunnels(ctx: CliContext): Promise<ListedTunnel[]> {
  const { tunnels } = readTunnelState(ctx.cfg);
  return Promise.all(
    tunnels.map(async (e) => ({
      ...e,
      status:
        isTunnelProcess(e, e.pid) && (await portStatus(e.local)) === "held" ? ("active" as const) : ("dead" as const),
    })),
  );
}

/** Stops a shed's tunnels (on the given server; any server's when none is named); the entries removed. */
export async function stopShedTunnels(
  ctx: CliContext,
  which: { shed: string; server: string | undefined } | "all",
): Promise<TunnelEntry[]> {
  // Nothing recorded (most runs of shed stop and delete): no lock file to make.
  if (readTunnelState(ctx.cfg).tunnels.length === 0) return [];
  return withTunnelState(ctx.cfg, async (state) => {
    const hit = (e: TunnelEntry) =>
      which === "all" || (e.shed === which.shed && (which.server === undefined || e.server === which.server));
    const stopping = state.tunnels.filter(hit);
    await endEntries(stopping);
    state.tunnels = state.tunnels.filter((e) => !hit(e));
    return stopping;
  });
}
