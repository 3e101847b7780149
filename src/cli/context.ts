import { ShedError } from "../core/errors.js";
import { ApiClient } from "./api-client.js";
import { ClientConfig, type ServerEntry } from "./client-config.js";
import { ensureLocalServer, reviveLocalServer } from "./local-server.js";
import { isOwnLocalServer } from "./local-server-state.js";
import { createOutput, type Output } from "./render.js";
import { printResult } from "./result.js";

// A type alias (not an interface) so commander's typed opts are assignable to it.
export type GlobalOptions = {
  config?: string;
  server?: string;
  json?: boolean;
};

/** What every command gets: the client config, the output mode, and a way to reach a server. */
export class CliContext {
  readonly cfg: ClientConfig;
  readonly out: Output;

  constructor(readonly opts: GlobalOptions) {
    this.cfg = ClientConfig.load(ClientConfig.locate(opts.config));
    this.out = createOutput(opts.json === true);
  }

  get json(): boolean {
    return this.opts.json === true;
  }

  /** The chosen server; with none configured, a local shed-server started on demand. */
  async server(): Promise<{ name: string; entry: ServerEntry; api: ApiClient }> {
    let picked = this.cfg.pick(this.opts.server);
    // On stderr even with --json, like progress: stdout stays one JSON document.
    const say = (line: string) => process.stderr.write(`${line}\n`);
    if (!picked) {
      if (Object.keys(this.cfg.data.servers).length > 1) {
        throw new ShedError("SERVER_NOT_FOUND", "several servers are configured and none is the default", {
          hint: "pass --server NAME or run `shed server set-default NAME`",
        });
      }
      picked = await ensureLocalServer(this.cfg, say);
    } else if (isOwnLocalServer(this.cfg, picked.name, picked.entry)) {
      // The CLI's own server may be gone since (a reboot, a kill): it is started again, same data dir.
      picked = await reviveLocalServer(this.cfg, picked.entry, say);
    }
    return { ...picked, api: new ApiClient(picked.name, picked.entry) };
  }

  /** Prints a result: JSON on stdout with --json, else the human text. */
  result(value: unknown, human: () => string): void {
    printResult(this.json, value, human);
  }
}
