/**
 * The quick path (dist/shed-quick.cjs): `shed list`, and `shed start|stop|delete
 * NAME`, without the full CLI.
 * Start-up is most of what a read costs: the full bundle loads commander,
 * classic zod (about 80 ms of start-up on its own), ssh2's helpers and every
 * command; this one loads the client config, the API client and the list.
 * boot.ts sends here only an argv quick-argv.ts recognised.
 *
 * The result is the one the full CLI gives (the same listSheds, printResult and
 * reportError). What this path does not do, starting or reviving the CLI's own
 * local server, it hands back before printing anything: runQuick resolves to
 * false and boot.ts runs the full CLI with the same argv.
 */
import { ApiClient } from "./api-client.js";
import { ClientConfig } from "./client-config.js";
import { deleteShed, startOrStop } from "./commands/lifecycle-ops.js";
import { listSheds } from "./commands/list.js";
import { isOwnLocalServer, localServerUp } from "./local-server-state.js";
import type { QuickCommand } from "./quick-argv.js";
import { createOutput } from "./render.js";
import { reportError } from "./report-error.js";
import { printResult } from "./result.js";
import { tunnelsRecordedFor } from "./tunnels/recorded.js";

/** Not this path's job (the local server must be started): nothing was printed, the full CLI takes over. */
class HandBack extends Error {}

/** Resolves to false, having printed nothing, for what the full CLI must do instead. */
export async function runQuick(cmd: QuickCommand): Promise<boolean> {
  // `version` never gets here (boot.ts answers it); it is the full CLI's should it ever.
  if (cmd.command === "version") return false;
  try {
    const cfg = ClientConfig.load(ClientConfig.locate(cmd.config));
    // A shed with tunnels: the full CLI stops them first (that code is not in this bundle).
    if ((cmd.command === "stop" || cmd.command === "delete") && tunnelsRecordedFor(cfg.dir, cmd.name)) return false;
    const caller = {
      cfg,
      json: cmd.json,
      out: createOutput(cmd.json),
      async server() {
        const picked = cfg.pick(cmd.server);
        if (!picked) throw new HandBack();
        if (isOwnLocalServer(cfg, picked.name, picked.entry) && !(await localServerUp(picked.entry))) {
          throw new HandBack();
        }
        return { name: picked.name, api: new ApiClient(picked.name, picked.entry) };
      },
      result(value: unknown, human: () => string) {
        printResult(cmd.json, value, human);
      },
    };
    if (cmd.command === "list") await listSheds(caller, cmd.all);
    else if (cmd.command === "delete") await deleteShed(caller, cmd.name, { keepVolume: cmd.keepVolume });
    else await startOrStop(caller, cmd.command, cmd.name);
    return true;
  } catch (err) {
    if (err instanceof HandBack) return false;
    reportError(err, cmd.json);
    return true;
  }
}
