import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { stringify } from "yaml";
import * as z from "zod/mini";
import { loadYamlFile } from "../config/load-yaml-file.js";
import { ShedError } from "../core/errors.js";
import { FINGERPRINT_RE } from "../core/fingerprint-format.js";
import { writeSshFiles } from "./ssh-files.js";
import { MAPPING_FORMAT, parseMapping } from "./tunnels/mapping.js";
import "./zod-messages.js";

const serverEntrySchema = z.strictObject({
  host: z.string().check(z.minLength(1)),
  http_port: z.int().check(z.minimum(1), z.maximum(65535)),
  ssh_port: z.int().check(z.minimum(1), z.maximum(65535)),
  host_key: z.string().check(z.regex(/^[a-z0-9-]+ [A-Za-z0-9+/=]+$/, { message: "not an SSH public host key" })),
  /** The server's API token (`shed-server token`). Optional only so configs written before tokens still load. */
  token: z.optional(z.string().check(z.regex(/^[A-Za-z0-9_-]{16,256}$/, { message: "not an API token" }))),
  /** The API's TLS certificate, pinned at `shed server add`; absent: plain HTTP (a loopback server). */
  tls_fingerprint: z.optional(z.string().check(z.regex(FINGERPRINT_RE, { message: "not a sha256:HEX fingerprint" }))),
  /** The shed-server this CLI starts itself on demand (restarted when it is gone). */
  local: z.optional(z.boolean()),
  /** Forward the user's SSH agent (ssh -A) on console, attach and exec; as in OpenSSH, off unless asked. */
  forward_agent: z.optional(z.boolean()),
});

/** A `shed tunnels start -p NAME` profile: its mappings, each `PORT` or `"LOCAL:REMOTE"` (a bare number is a PORT). */
const tunnelSpecSchema = z
  .union([z.string(), z.int()])
  .check(z.refine((s) => parseMapping(s) !== undefined, { message: `not a tunnel mapping: ${MAPPING_FORMAT}` }));

export const clientConfigSchema = z
  .strictObject({
    default_server: z.optional(z.string()),
    servers: z._default(z.record(z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/)), serverEntrySchema), {}),
    tunnels: z.optional(
      z.record(
        z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/)),
        z.array(tunnelSpecSchema).check(z.minLength(1)),
      ),
    ),
  })
  // Checked in the schema, so the problem is placed at file:line:col; own keys only ("constructor" is no server).
  .check(
    z.refine((c) => !c.default_server || Object.hasOwn(c.servers, c.default_server), {
      message: "is not one of servers (`shed server set-default NAME` picks one of `shed server list`)",
      path: ["default_server"],
    }),
  );

export type ServerEntry = z.infer<typeof serverEntrySchema>;
export type ClientConfigData = z.infer<typeof clientConfigSchema>;

/** The CLI's config file and the files kept beside it (key pair, known_hosts, ssh_config). */
export class ClientConfig {
  readonly dir: string;

  private constructor(
    readonly file: string,
    public data: ClientConfigData,
  ) {
    this.dir = dirname(file);
  }

  /** --config, then $SHED_CONFIG, then ~/.shed/config.yaml. */
  static locate(flag: string | undefined): string {
    const chosen = flag ?? process.env.SHED_CONFIG;
    return chosen && chosen.length > 0 ? resolve(chosen) : join(homedir(), ".shed", "config.yaml");
  }

  static load(file: string): ClientConfig {
    const data = loadYamlFile(file, clientConfigSchema, { missingOk: true, what: "client config" });
    return new ClientConfig(file, data);
  }

  get keyFile(): string {
    return join(this.dir, "id_ed25519");
  }
  get knownHostsFile(): string {
    return join(this.dir, "known_hosts");
  }
  get sshConfigFile(): string {
    return join(this.dir, "ssh_config");
  }

  /** The server a command talks to: --server, $SHED_SERVER, the default, or the only one. */
  pick(name: string | undefined): { name: string; entry: ServerEntry } | undefined {
    // An empty $SHED_SERVER counts as unset, as in the launcher (bin/shed).
    const wanted = name ?? (process.env.SHED_SERVER || undefined) ?? this.data.default_server;
    const names = Object.keys(this.data.servers);
    if (wanted) {
      const entry = Object.hasOwn(this.data.servers, wanted) ? this.data.servers[wanted] : undefined;
      if (!entry) {
        throw new ShedError("SERVER_NOT_FOUND", `no server named ${JSON.stringify(wanted)} in ${this.file}`, {
          hint: names.length ? `known servers: ${names.join(", ")}` : "add one with `shed server add HOST`",
        });
      }
      return { name: wanted, entry };
    }
    const only = names[0];
    if (names.length === 1 && only) return { name: only, entry: this.data.servers[only] as ServerEntry };
    return undefined;
  }

  /** Writes the config atomically and regenerates ssh_config and known_hosts from it. */
  save(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `# Managed by shed; edit with \`shed server ...\`.\n${stringify(this.data, { lineWidth: 0 })}`, {
      mode: 0o600,
    });
    renameSync(tmp, this.file);
    writeSshFiles(this);
  }

  ensureDir(): void {
    if (!existsSync(this.dir)) mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    else chmodSync(this.dir, 0o700);
  }
}
