import { COMPLETION_LOG } from "./complete-image-script.js";
import { DEFAULT_GUEST_UID } from "./shed-user.js";

/** What the script did, from its `@shed` lines (anything else on stdout is ignored). */
export interface CompletionSummary {
  /** User shed as added: uid, gid, and how (useradd, adduser, files). */
  user?: { uid: number; gid: number; method: string };
  /** The account that holds the preferred uid, when shed got another. */
  uidHolder?: string;
  installed?: { manager: string; programs: string[] };
  installFailed?: { manager: string; reason: string; detail: string };
  /** Programs were missing and no known package manager was there. */
  noManager: boolean;
  /** /etc/sudoers.d/shed was written. */
  sudo: boolean;
  /** /workspace was given to user shed. */
  workspace: boolean;
  /** Of sudo, bash and git, those still missing. */
  missing: string[];
}

export function parseCompletion(stdout: string): CompletionSummary {
  const s: CompletionSummary = { noManager: false, sudo: false, workspace: false, missing: [] };
  const words = (list: string[]) => list.flatMap((w) => w.split(/\s+/)).filter((w) => w !== "");
  for (const line of stdout.split("\n")) {
    const [tag, key, ...v] = line.replace(/\r$/, "").split("\t");
    if (tag !== "@shed" || key === undefined) continue;
    switch (key) {
      case "user": {
        const uid = Number(v[0]);
        const gid = Number(v[1]);
        if (Number.isInteger(uid) && Number.isInteger(gid) && v[0] !== "" && v[1] !== "") {
          s.user = { uid, gid, method: v[2] ?? "" };
        }
        break;
      }
      case "uid-holder":
        if (v[0]) s.uidHolder = v[0];
        break;
      case "installed":
        s.installed = { manager: v[0] ?? "", programs: words(v.slice(1)) };
        break;
      case "install-failed":
        s.installFailed = { manager: v[0] ?? "", reason: v[1] ?? "", detail: (v[2] ?? "").trim() };
        break;
      case "no-manager":
        s.noManager = true;
        break;
      case "sudo":
        s.sudo = true;
        break;
      case "workspace":
        s.workspace = true;
        break;
      case "missing":
        s.missing = words(v);
        break;
    }
  }
  return s;
}

/** What create tells the user: one note for the step's message, warnings (with hints) for what is not as in shed-base. */
export interface ImageCompletion {
  summary: CompletionSummary;
  notes: string[];
  warnings: { message: string; hint?: string }[];
}

const MANAGERS = "apt-get, apk, dnf, microdnf or yum";

/** The words create shows for a summary (pure, so its wording is tested without an engine). */
export function describeCompletion(
  s: CompletionSummary,
  liveCredentials: boolean,
  preferredUid = DEFAULT_GUEST_UID,
): ImageCompletion {
  const parts: string[] = [];
  if (s.user) parts.push(`user shed added (uid ${s.user.uid}, gid ${s.user.gid})`);
  if (s.installed && s.installed.programs.length > 0) {
    parts.push(`${andList(s.installed.programs)} installed with ${s.installed.manager}`);
  }
  if (s.sudo) parts.push("passwordless sudo for shed");
  if (s.workspace) parts.push("/workspace given to shed");
  const notes = parts.length > 0 ? [`image completed: ${parts.join("; ")}`] : [];
  const warnings: ImageCompletion["warnings"] = [];
  // Only a credential mounted live has the server's uid (1000) in the shed; copies are made for shed.
  if (s.user && s.user.uid !== preferredUid && liveCredentials) {
    const who = s.uidHolder ? `the image's user ${JSON.stringify(s.uidHolder)}` : "another account in the image";
    warnings.push({
      message:
        `user shed has uid ${s.user.uid}, not ${preferredUid}: uid ${preferredUid} is ${who}; ` +
        `credentials mounted live (sources owned by uid ${preferredUid} on the server) belong to that user in this shed, so shed cannot read the private ones`,
      hint: `use an image with no user of uid ${preferredUid} (or build FROM shed-base:latest), or chown those credential sources to another owner on the server so they are copied for shed`,
    });
  }
  if (s.missing.length > 0) {
    const what = andList(s.missing);
    const reason = s.installFailed
      ? `installing with ${s.installFailed.manager} failed (${s.installFailed.reason})${s.installFailed.detail ? `: ${s.installFailed.detail}` : ""}`
      : s.noManager
        ? `it has no package manager Shed knows (${MANAGERS}) to install ${s.missing.length === 1 ? "it" : "them"}`
        : "Shed could not install it";
    warnings.push({
      message: `the image lacks ${what}: ${reason}${s.missing.includes("sudo") ? "; user shed has no sudo" : ""}`,
      hint: `install ${what} in the image (or build FROM shed-base:latest); the package manager's output is in ${COMPLETION_LOG} in the shed`,
    });
  }
  return { summary: s, notes, warnings };
}

function andList(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}
