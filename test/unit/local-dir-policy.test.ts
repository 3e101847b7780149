import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ShedError } from "../../src/core/errors.js";
import { checkLocalDir, type LocalDirPolicy } from "../../src/lifecycle/local-dir-policy.js";
import { removeAtEnd, tempDir } from "../helpers/cli.js";

/** The --local-dir rules on the real filesystem (temp dirs, one home under /home); no server. */

function policy(extra: Partial<LocalDirPolicy> = {}): LocalDirPolicy {
  const base = tempDir("policy-server");
  return {
    name: "test",
    dataDir: join(base, "data"),
    localDirRoots: undefined,
    file: undefined,
    tls: undefined,
    envFile: undefined,
    authorizedKeysFile: join(base, "data", "authorized_keys"),
    ...extra,
  };
}

function refusal(path: string, config: LocalDirPolicy, env: NodeJS.ProcessEnv = {}): ShedError {
  try {
    checkLocalDir(path, config, env);
  } catch (err) {
    if (err instanceof ShedError) return err;
    throw err;
  }
  throw new Error(`${path} was accepted`);
}

describe("checkLocalDir", () => {
  it("accepts a project directory and returns its real path and owner", () => {
    const dir = tempDir("proj");
    const link = join(tempDir("link"), "to-proj");
    symlinkSync(dir, link);
    expect(checkLocalDir(link, policy(), {})).toMatchObject({ requested: link, path: dir, uid: 0, gid: 0 });
  });

  it("judges the normalized real path: .. and symlinks cannot reach /etc", () => {
    const err = refusal(`${tempDir("dots")}/../../etc`, policy());
    expect(err).toMatchObject({ code: "LOCAL_DIR_REFUSED", details: { rule: "system_dir", real_path: "/etc" } });
    expect(err.httpStatus).toBe(403);
  });

  it("a missing path or a file is not found; a relative path is an invalid request", () => {
    const file = join(tempDir("file"), "f");
    writeFileSync(file, "x");
    expect(refusal(file, policy()).code).toBe("LOCAL_DIR_NOT_FOUND");
    expect(refusal(join(file, "..", "missing"), policy()).code).toBe("LOCAL_DIR_NOT_FOUND");
    expect(refusal("rel/dir", policy()).code).toBe("INVALID_REQUEST");
  });

  it("a home itself and its hidden directories are refused; a project inside it is not", () => {
    const home = removeAtEnd(mkdtempSync("/home/shed-test-"));
    mkdirSync(join(home, ".ssh"));
    mkdirSync(join(home, "proj", ".git"), { recursive: true });
    expect(refusal(home, policy()).details?.rule).toBe("home_dir");
    expect(refusal(join(home, ".ssh"), policy()).details?.rule).toBe("home_hidden_dir");
    expect(checkLocalDir(join(home, "proj"), policy(), {}).path).toBe(join(home, "proj"));
    expect(checkLocalDir(join(home, "proj", ".git"), policy(), {}).path).toBe(join(home, "proj", ".git"));
  });

  it("data_dir: inside it and containing it are refused, a sibling with a longer name is not", () => {
    const config = policy();
    mkdirSync(join(config.dataDir, "sheds"), { recursive: true });
    mkdirSync(`${config.dataDir}2`);
    expect(refusal(config.dataDir, config).details?.rule).toBe("server_data_dir");
    expect(refusal(join(config.dataDir, "sheds"), config).details?.rule).toBe("server_data_dir");
    expect(refusal(join(config.dataDir, ".."), config).details?.rule).toBe("server_data_dir");
    expect(checkLocalDir(`${config.dataDir}2`, config, {}).path).toBe(`${config.dataDir}2`);
  });

  it("a directory holding one of the server's files (here its TLS key) is refused", () => {
    const keys = tempDir("tls");
    const config = policy({ tls: { cert: join(keys, "cert.pem"), key: join(keys, "key.pem") } });
    expect(refusal(keys, config).details?.rule).toBe("server_file");
  });

  it("a directory holding DOCKER_HOST's socket is refused", () => {
    const dir = tempDir("sock");
    const env = { DOCKER_HOST: `unix://${join(dir, "docker.sock")}` };
    expect(refusal(dir, policy(), env).details?.rule).toBe("docker_socket");
    expect(checkLocalDir(dir, policy(), { DOCKER_HOST: "tcp://127.0.0.1:2375" }).path).toBe(dir);
  });

  it("a directory holding the server config's docker_host socket is refused", () => {
    const dir = tempDir("sock");
    expect(refusal(dir, policy({ dockerSocket: join(dir, "docker.sock") })).details?.rule).toBe("docker_socket");
  });

  it("local_dir_roots (through a symlink too) confine the real path", () => {
    const roots = tempDir("roots");
    mkdirSync(join(roots, "proj"));
    const rootLink = join(tempDir("rootlink"), "roots");
    symlinkSync(roots, rootLink);
    const outside = tempDir("outside");
    symlinkSync(outside, join(roots, "escape"));
    const config = policy({ localDirRoots: [rootLink] });
    expect(checkLocalDir(join(roots, "proj"), config, {}).path).toBe(join(roots, "proj"));
    expect(checkLocalDir(roots, config, {}).path).toBe(roots);
    expect(refusal(outside, config).details?.rule).toBe("outside_local_dir_roots");
    expect(refusal(join(roots, "escape"), config).details?.rule).toBe("outside_local_dir_roots");
    // A name that only starts with the root's is outside it.
    const sibling = removeAtEnd(`${roots}-sibling`);
    mkdirSync(sibling);
    expect(refusal(sibling, config).details?.rule).toBe("outside_local_dir_roots");
  });
});
