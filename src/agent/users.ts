import { readFile } from "node:fs/promises";

/** A guest account as /etc/passwd and /etc/group describe it. */
export interface GuestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/**
 * Looks a user up by name or numeric uid, as `docker exec --user` does. The
 * files are read on every exec: the image's hooks may add users at any time.
 */
export async function lookupUser(user: string): Promise<GuestUser | undefined> {
  const passwd = await readFile("/etc/passwd", "utf8").catch(() => "");
  const numeric = /^[0-9]+$/.test(user);
  for (const line of passwd.split("\n")) {
    const [name, , uid, gid, , home, shell] = line.split(":");
    if (name === undefined || uid === undefined || gid === undefined) continue;
    if (numeric ? uid === user : name === user) {
      return { name, uid: Number(uid), gid: Number(gid), home: home || "/", shell: shell || "/bin/sh" };
    }
  }
  // A numeric uid without an entry still runs (Docker allows it), with gid = uid and / as home.
  if (numeric) return { name: user, uid: Number(user), gid: Number(user), home: "/", shell: "/bin/sh" };
  return undefined;
}
