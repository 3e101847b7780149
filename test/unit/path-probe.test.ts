import { describe, expect, it } from "vitest";
import { addedEntries, parsePathProbe } from "../../src/guest/path-capture.js";

/** The PATH probe's output as the hook script prints it (path-capture.ts). */
function probe(login: string, image: string, mise: string, list: string): string {
  return `rc noise\n__SHED_PATH_BEGIN__${login}__SHED_PATH_END__\n${image}\n${mise}\n${list}\n`;
}

describe("PATH probe", () => {
  it("reads the user's mise shims folder, whatever the user's home", () => {
    const snap = parsePathProbe(probe("/a:/b", "/b", "mise /home/dev/.local/share/mise/shims", "no-list"));
    expect(snap).toEqual({
      login: ["/a", "/b"],
      image: ["/b"],
      miseShims: "/home/dev/.local/share/mise/shims",
      listed: false,
    });
    expect(parsePathProbe(probe("/a", "/a", "no-mise", "list"))).toMatchObject({ miseShims: undefined, listed: true });
  });

  it("adds the shims folder once, after what the install added, unless PATH had it", () => {
    const shims = "/home/dev/.local/share/mise/shims";
    expect(addedEntries(["/usr/bin"], ["/opt/x", "/usr/bin"], shims)).toEqual(["/opt/x", shims]);
    expect(addedEntries(["/usr/bin", shims], ["/usr/bin", shims], shims)).toEqual([]);
    expect(addedEntries(["/usr/bin"], ["/usr/bin"], undefined)).toEqual([]);
  });

  it("says so when the login shell never reported its PATH", () => {
    expect(() => parsePathProbe("nothing\n")).toThrow(/did not report its PATH within 15s/);
  });
});
