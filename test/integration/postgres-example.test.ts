import { execFileSync } from "node:child_process";
import { cpSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { type CliUser, cliOk, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { docker, dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { getShed, guestFile, hooksOf } from "../helpers/provision.js";
import type { TestServer } from "../helpers/server.js";

/**
 * The seed's "Example: PostgreSQL Setup", as examples/postgres (Debian
 * bookworm, PostgreSQL 15), end to end through the packaged CLI with a local
 * repository (`shed create --repo <path>`). The install hook really installs
 * PostgreSQL from Debian's mirror inside the shed, so this is slow.
 */
const EXAMPLE = resolve(__dirname, "../../examples/postgres");
let server: TestServer;
let cli: CliUser;

// A stop_timeout long enough for the shutdown hook (half of it) to stop PostgreSQL cleanly.
useCliServer(
  (s, user) => {
    server = s;
    cli = user;
  },
  { stop_timeout: "20s" },
);

/** examples/postgres copied into a fresh git repository with one commit (file modes included). */
function exampleRepo(): string {
  const dir = tempDir("pg-repo");
  cpSync(EXAMPLE, dir, { recursive: true });
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", dir, "-c", "user.name=Shed Test", "-c", "user.email=test@shed.invalid", ...args]);
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "postgres example");
  return dir;
}

async function select42(name: string) {
  return cli.run(["exec", name, "--", "bash", "-lc", 'psql "$DATABASE_URL" -tAc "select 42"']);
}

const PID_FILE = "/var/lib/postgresql/15/main/postmaster.pid";

/** Whether a file exists in a (possibly stopped) container, read through the engine's archive API. */
async function existsInContainer(name: string, path: string): Promise<boolean> {
  try {
    const archive = await docker.getContainer(`shed-${name}`).getArchive({ path });
    archive.resume();
    return true;
  } catch {
    return false;
  }
}

describe("examples/postgres (seed: Example: PostgreSQL Setup)", () => {
  it("installs once, serves $DATABASE_URL, stops cleanly, and recovers from an unclean stop", {
    timeout: 20 * 60_000,
  }, async () => {
    const name = uniqueName("pg");
    const create = await cli.run(["create", name, "--repo", exampleRepo()]);
    expect(create.code, show(create)).toBe(0);
    expect(create.stdout).toContain(`shed ${name}: running`);
    let hooks = await hooksOf(server, name);
    expect(hooks.install, JSON.stringify(hooks.install)).toMatchObject({ state: "succeeded", exit_code: 0 });
    expect(hooks.startup).toMatchObject({ state: "succeeded", exit_code: 0 });
    const installedAt = hooks.install.started_at;
    expect(await guestFile(name, "/var/log/shed/install.log")).toMatch(/PostgreSQL installed\n$/);
    expect(await guestFile(name, "/var/lib/shed/install.done")).toContain("completed_at");

    // psql "$DATABASE_URL" from a shell, and the variable in a plain exec too.
    let psql = await select42(name);
    expect(psql.stdout, show(psql)).toBe("42\n");
    const url = await cliOk(cli, ["exec", name, "--", "printenv", "DATABASE_URL"]);
    expect(url.stdout).toBe("postgresql://localhost/myapp\n");
    const select1 = await cli.run(["exec", name, "--", "bash", "-lc", 'psql "$DATABASE_URL" -c "select 1"']);
    expect(select1.code, show(select1)).toBe(0);
    expect(select1.stdout).toMatch(/\(1 row\)/);

    // A clean stop: the shutdown hook stops PostgreSQL, which removes its pid file.
    await cliOk(cli, ["stop", name]);
    hooks = await hooksOf(server, name);
    expect(hooks.shutdown).toMatchObject({ state: "succeeded", exit_code: 0 });
    expect((await getShed(server, name)).status).toBe("stopped");
    expect(await existsInContainer(name, PID_FILE)).toBe(false);

    await cliOk(cli, ["start", name]);
    psql = await select42(name);
    expect(psql.stdout, show(psql)).toBe("42\n");

    // An unclean stop outside Shed (no shutdown hook, everything killed): stale pid file and socket dir stay.
    await docker.getContainer(`shed-${name}`).stop({ t: 0 });
    expect(await existsInContainer(name, PID_FILE)).toBe(true);
    expect(await existsInContainer(name, "/var/run/postgresql/.s.PGSQL.5432.lock")).toBe(true);

    const start = await cli.run(["start", name]);
    expect(start.code, show(start)).toBe(0);
    hooks = await hooksOf(server, name);
    expect(hooks.startup).toMatchObject({ state: "succeeded", exit_code: 0 });
    expect(await guestFile(name, "/var/log/shed/startup.log")).toContain("Starting PostgreSQL...");
    psql = await select42(name);
    expect(psql.stdout, show(psql)).toBe("42\n");

    // The install hook never ran again: same record, no rotated log, one "installed" line.
    expect(hooks.install.started_at).toBe(installedAt);
    expect(await guestFile(name, "/var/log/shed/install.log.1")).toBeUndefined();
    const installLog = (await guestFile(name, "/var/log/shed/install.log")) ?? "";
    expect(installLog.match(/PostgreSQL installed/g)).toHaveLength(1);
    const pkg = await dockerExec(name, ["dpkg", "-s", "postgresql-15"]);
    expect(pkg.stdout).toMatch(/^Status: install ok installed$/m);
    // Three startups so far (create, clean start, unclean start): the previous one's log is the .1.
    expect(await guestFile(name, "/var/log/shed/startup.log.1")).toContain("Starting PostgreSQL...");
  });
});
