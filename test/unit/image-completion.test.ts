import { describe, expect, it } from "vitest";
import { describeCompletion, parseCompletion } from "../../src/guest/complete-image-summary.js";

/** The summary the image-completion script prints, and the words create shows for it (src/guest/complete-image.ts). */
describe("image completion summary", () => {
  it("reads the @shed lines and ignores anything else on stdout", () => {
    const s = parseCompletion(
      [
        "Reading package lists...",
        "@shed\tinstalled\tapt-get\t sudo git",
        "@shed\tuser\t1001\t1001\tfiles",
        "@shed\tuid-holder\tvscode",
        "@shed\tsudo",
        "@shed\tworkspace",
        "@shed\tunknown-key\tx",
        "shed\tuser\t5\t5\tfake",
        "",
      ].join("\n"),
    );
    expect(s).toEqual({
      installed: { manager: "apt-get", programs: ["sudo", "git"] },
      user: { uid: 1001, gid: 1001, method: "files" },
      uidHolder: "vscode",
      noManager: false,
      sudo: true,
      workspace: true,
      missing: [],
    });
  });

  it("a user line without numbers is no user", () => {
    expect(parseCompletion("@shed\tuser\t\t\tuseradd\n").user).toBeUndefined();
    expect(parseCompletion("@shed\tuser\tabc\t1000\tuseradd\n").user).toBeUndefined();
  });

  it("uid 1000 with sudo and git installed: one note, no warning", () => {
    const d = describeCompletion(
      parseCompletion(
        "@shed\tinstalled\tapt-get\t sudo git\n@shed\tuser\t1000\t1000\tuseradd\n@shed\tsudo\n@shed\tworkspace\n",
      ),
      true,
    );
    expect(d.notes).toEqual([
      "image completed: user shed added (uid 1000, gid 1000); sudo and git installed with apt-get; passwordless sudo for shed; /workspace given to shed",
    ]);
    expect(d.warnings).toEqual([]);
  });

  it("another uid than 1000 is a warning naming the account that holds 1000 and what it means for live credentials", () => {
    const summary = parseCompletion("@shed\tuser\t1001\t1001\tuseradd\n@shed\tuid-holder\tvscode\n@shed\tsudo\n");
    // No credential mounted live (none, or a remoteUser shed's copies): nothing to warn about.
    expect(describeCompletion(summary, false).warnings).toEqual([]);
    const d = describeCompletion(summary, true);
    expect(d.notes).toEqual(["image completed: user shed added (uid 1001, gid 1001); passwordless sudo for shed"]);
    expect(d.warnings).toHaveLength(1);
    expect(d.warnings[0]?.message).toBe(
      'user shed has uid 1001, not 1000: uid 1000 is the image\'s user "vscode"; credentials mounted live (sources owned by uid 1000 on the server) belong to that user in this shed, so shed cannot read the private ones',
    );
    expect(d.warnings[0]?.hint).toContain("FROM shed-base:latest");
  });

  it("a failed or impossible install names what is missing and why", () => {
    const failed = describeCompletion(
      parseCompletion(
        "@shed\tinstall-failed\tapt-get\ttimed out after 300s\tE: Could not connect \n@shed\tuser\t1000\t1000\tuseradd\n@shed\tmissing\t sudo git\n",
      ),
      false,
    );
    expect(failed.warnings.map((w) => w.message)).toEqual([
      "the image lacks sudo and git: installing with apt-get failed (timed out after 300s): E: Could not connect; user shed has no sudo",
    ]);
    expect(failed.warnings[0]?.hint).toContain("/var/log/shed/image-complete.log");
    const none = describeCompletion(parseCompletion("@shed\tno-manager\t bash\n@shed\tmissing\t bash\n"), false);
    expect(none.notes).toEqual([]);
    expect(none.warnings.map((w) => w.message)).toEqual([
      "the image lacks bash: it has no package manager Shed knows (apt-get, apk, dnf, microdnf or yum) to install it",
    ]);
  });
});
