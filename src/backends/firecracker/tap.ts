import { ShedError } from "../../core/errors.js";
import { describeLink, type LinkInfo, linkInfo, mustRunNetCommand, type NetCommandOptions } from "./ip-command.js";

/**
 * A Firecracker VM's TAP device: a persistent TAP (it outlives the process that opened it, so
 * Firecracker can be restarted onto it) attached to the shed bridge. Persistent TAPs still vanish
 * when the host reboots, so ensureTap runs on every VM start, not only at create.
 *
 * Firecracker opens the device itself (TUNSETIFF with the name); all it needs from the host is a
 * TAP by that name, up, on the bridge.
 */

const IFNAME = /^(?!\.\.?$)[A-Za-z0-9_.-]{1,15}$/;

function checkName(name: string, what: string): void {
  if (!IFNAME.test(name)) {
    throw new ShedError("INVALID_CONFIG", `${what} ${JSON.stringify(name)} is not a valid Linux interface name`, {
      hint: "an interface name is 1 to 15 of a-z A-Z 0-9 _ . -",
    });
  }
}

function isTap(link: LinkInfo): boolean {
  return link.linkinfo?.info_kind === "tun" && link.linkinfo.info_data?.type === "tap";
}

/** Makes the TAP (unless it exists), puts it on the bridge and up. Idempotent. */
export async function ensureTap(
  name: string,
  bridge: string,
  opts: NetCommandOptions = {},
): Promise<"created" | "existed"> {
  checkName(name, "TAP device");
  checkName(bridge, "vm_bridge");
  const br = await linkInfo(bridge, opts);
  if (!br) {
    throw new ShedError("BACKEND_ERROR", `the bridge ${bridge} (vm_bridge) does not exist on this host`, {
      hint: "run `shed-server setup` as root to make it (again after every host reboot: the bridge does not survive one)",
    });
  }
  if (br.linkinfo?.info_kind !== "bridge") {
    throw new ShedError("BACKEND_ERROR", `vm_bridge ${bridge} is ${describeLink(br)}, not a bridge`, {
      hint: "set vm_bridge in the server config to a name no other interface uses, then run `shed-server setup`",
    });
  }
  const existing = await linkInfo(name, opts);
  if (existing && !isTap(existing)) {
    throw new ShedError(
      "BACKEND_ERROR",
      `${name} exists on this host and is ${describeLink(existing)}, not a TAP device`,
      {
        hint: `something other than Shed made ${name}; remove it (\`ip link del ${name}\`) if it is not in use`,
      },
    );
  }
  if (!existing) {
    await mustRunNetCommand(["ip", "tuntap", "add", "dev", name, "mode", "tap"], {
      ...opts,
      what: `make the TAP device ${name}`,
    });
  }
  await mustRunNetCommand(["ip", "link", "set", "dev", name, "master", bridge, "up"], {
    ...opts,
    what: `attach the TAP device ${name} to the bridge ${bridge}`,
  });
  return existing ? "existed" : "created";
}

/** Removes the TAP; "absent" when there was none. Refuses to remove an interface that is not a TAP. */
export async function deleteTap(name: string, opts: NetCommandOptions = {}): Promise<"deleted" | "absent"> {
  checkName(name, "TAP device");
  const existing = await linkInfo(name, opts);
  if (!existing) return "absent";
  if (!isTap(existing)) {
    throw new ShedError(
      "BACKEND_ERROR",
      `refusing to delete ${name}: it is ${describeLink(existing)}, not the TAP device Shed made`,
      { hint: "the instance's metadata names an interface Shed did not make; check instance.json's network.tap" },
    );
  }
  try {
    await mustRunNetCommand(["ip", "link", "del", "dev", name], { ...opts, what: `delete the TAP device ${name}` });
  } catch (err) {
    // Gone between the look and the delete (a host reboot, a concurrent cleanup): the outcome wanted.
    if (!(await linkInfo(name, opts))) return "absent";
    throw err;
  }
  return "deleted";
}
