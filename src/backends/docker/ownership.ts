import { ShedError } from "../../core/errors.js";
import type { Ownership } from "../backend.js";
import { LABEL } from "./naming.js";

/**
 * Whose a container or volume named for a shed is, from its labels (Docker
 * labels cannot change after creation, so this is fixed for the object's life):
 * - this_server: labelled with this server's id, or made before server ids
 *   existed and adopted by this server (it holds the shed's record);
 * - unowned: made before server ids existed and not adopted here;
 * - other_server: labelled with another server's id;
 * - not_shed: not made by Shed for this name at all.
 */
export type Owner =
  | { kind: "this_server" }
  | { kind: "unowned" }
  | { kind: "other_server"; serverId: string }
  | { kind: "not_shed" };

export function ownerOf(labels: Record<string, string> | undefined, name: string, ownership: Ownership): Owner {
  if (labels?.[LABEL.managed] !== "true" || labels[LABEL.name] !== name) return { kind: "not_shed" };
  const id = labels[LABEL.serverId];
  if (id === ownership.serverId) return { kind: "this_server" };
  if (id) return { kind: "other_server", serverId: id };
  return ownership.adopts(name) ? { kind: "this_server" } : { kind: "unowned" };
}

/** The refusal to act on (or create over) an object that is not this server's, naming whose it is. */
export function notOwnedError(what: string, name: string, owner: Owner): ShedError {
  switch (owner.kind) {
    case "other_server":
      return new ShedError("SHED_NOT_OWNED", `${what} belongs to another shed-server (server id ${owner.serverId})`, {
        hint: `choose another shed name; the server whose data_dir/server_id is ${owner.serverId} can delete its shed ${JSON.stringify(name)}`,
        details: { owner: "other_server", server_id: owner.serverId },
      });
    case "not_shed":
      return new ShedError("SHED_NOT_OWNED", `${what} exists but was not made by Shed`, {
        hint: "choose another shed name, or remove or rename that Docker object yourself if it is not needed",
        details: { owner: "not_shed" },
      });
    default:
      return unownedError(what, name);
  }
}

/** How to adopt an unowned shed, or be rid of it: shown with it in the API and the CLI. */
export function unownedHint(name: string): string {
  return `if this server made it, adopt it by creating its record (touch DATA_DIR/sheds/${name}.json in this server's data_dir); otherwise remove it with docker rm -f -v shed-${name} and docker volume rm shed-${name}-workspace`;
}

/** Why an unowned object is left alone, and the two ways out. */
export function unownedError(what: string, name: string): ShedError {
  return new ShedError(
    "SHED_NOT_OWNED",
    `${what} was made by another shed-server or an older Shed version without a server id, and this server holds no record of it, so it does not touch it`,
    { hint: unownedHint(name), details: { owner: "unowned" } },
  );
}
