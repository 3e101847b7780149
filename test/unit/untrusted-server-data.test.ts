import { describe, expect, it } from "vitest";
import { createOutput } from "../../src/cli/render.js";
import { formatError } from "../../src/cli/report-error.js";
import { safeLine, safeText } from "../../src/cli/safe-text.js";
import { hostEntry } from "../../src/cli/ssh-config-block.js";
import { checkSshEntry } from "../../src/cli/ssh-config-values.js";
import { table } from "../../src/cli/table.js";
import { checkEvent, checkResponse, checkShed, checkShedList } from "../../src/cli/validate-response.js";
import { ShedError } from "../../src/core/errors.js";
import { fakeShed } from "../helpers/fake-shed.js";

const INJECTED = "x\nHost *\n  ProxyCommand touch /tmp/pwned";

const shed = fakeShed;

/** No byte a terminal acts on: C0 (but the allowed ones), DEL, C1, bidi overrides and isolates, line separators. */
function hasControl(text: string, allowed = ""): boolean {
  for (const c of text) {
    if (allowed.includes(c)) continue;
    const code = c.codePointAt(0) ?? 0;
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
    if ([0x200e, 0x200f, 0x2028, 0x2029].includes(code)) return true;
    if ((code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069)) return true;
  }
  return false;
}

describe("safe-text", () => {
  it("shows control characters as escapes", () => {
    expect(safeLine("a\x1b[31mred\x07")).toBe("a\\x1b[31mred\\x07");
    expect(safeLine("one\ntwo\rthree\tfour")).toBe("one\\ntwo\\rthree\\tfour");
    expect(safeLine("\x7f\x9b\u202eevil\u2066")).toBe("\\x7f\\x9b\\u202eevil\\u2066");
    expect(safeText("line 1\nline 2\x1b]0;title\x07\r")).toBe("line 1\nline 2\\x1b]0;title\\x07\\r");
  });

  it("leaves ordinary text alone, UTF-8 included", () => {
    for (const s of ["my-project", "/home/me/src/über café", "日本語 ✓ ⠋", "C:\\path\\x1b literal"]) {
      expect(safeLine(s)).toBe(s);
      expect(safeText(s)).toBe(s);
    }
  });

  it("leaves no control character in any string", () => {
    let all = "";
    for (let c = 0; c < 0x3000; c++) all += String.fromCharCode(c);
    expect(hasControl(safeLine(all))).toBe(false);
    expect(hasControl(safeText(all), "\n\t")).toBe(false);
  });

  it("formatError escapes a server's message and hint, keeping their lines", () => {
    const text = formatError(new ShedError("INTERNAL", "bad\x1b[2J thing\nsecond", { hint: "try\x1b]0;x\x07" }));
    expect(text).toBe("error: bad\\x1b[2J thing\nsecond\nhint: try\\x1b]0;x\\x07\n");
  });

  it("tables keep each cell on one line", () => {
    const out = table(["NAME", "IMAGE"], [["a", "img\nforged row\x1b[0m"]]);
    expect(out.split("\n")).toHaveLength(2);
    expect(out).toContain("img\\nforged row\\x1b[0m");
  });

  it("progress escapes step titles, messages and warnings, and passes hook output through raw", () => {
    const written: string[] = [];
    const stream = { isTTY: false, write: (t: string | Uint8Array) => written.push(String(t)) > 0 };
    const out = createOutput(false, stream as unknown as NodeJS.WriteStream);
    out.progress({ type: "step", step: "clone", title: "Clone\x1b[2J" });
    out.progress({ type: "warning", step: "clone", message: "failed\r\x1b[1A", hint: "h\x07" });
    out.printed(Buffer.from("[install] \x1b[32mgreen\x1b[0m\n"));
    out.progress({ type: "step_end", step: "clone", outcome: "succeeded", duration_ms: 5, message: "ok\x1b[K" });
    const text = written.join("");
    expect(text).toContain("! warning (clone): failed\\r\\x1b[1A\n    hint: h\\x07\n");
    expect(text).toContain("✓ Clone\\x1b[2J (5ms): ok\\x1b[K\n");
    // The user's own hook output keeps its colours.
    expect(text).toContain("\x1b[32mgreen\x1b[0m");
  });
});

describe("sheds from a server", () => {
  it("drops a shed with an invalid name from a list, with an escaped warning", () => {
    const warnings: string[] = [];
    const res = checkShedList("dev", { sheds: [shed("good"), shed(INJECTED), shed("\x1b[31mred")] }, (w) =>
      warnings.push(w),
    );
    expect(res.sheds.map((s) => s.name)).toEqual(["good"]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('invalid name "x\\nHost *\\n  ProxyCommand touch /tmp/pwned"');
    for (const w of warnings) expect(hasControl(w)).toBe(false);
  });

  it("drops a malformed shed and keeps unknown fields of good ones", () => {
    const warnings: string[] = [];
    const res = checkShedList(
      "dev",
      { sheds: [shed("a", { warnings: "not a list" }), shed("b", { owner: "unowned" }), "junk", null] },
      (w) => warnings.push(w),
    );
    expect(res.sheds.map((s) => s.name)).toEqual(["b"]);
    expect((res.sheds[0] as unknown as { owner: string }).owner).toBe("unowned");
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatch(/shed "a" is malformed \(warnings: /);
  });

  it("refuses one shed with an invalid name, or another name than asked", () => {
    expect(() => checkShed("dev", shed(INJECTED))).toThrow(expect.objectContaining({ code: "INVALID_RESPONSE" }));
    expect(() => checkShed("dev", shed("other"), "mine")).toThrow(/shed "other" when asked for mine/);
    expect(checkShed("dev", shed("mine"), "mine").name).toBe("mine");
    expect(() => checkResponse("dev", "GET", "/api/sheds/mine", shed(INJECTED))).toThrow(/invalid name/);
    expect(() => checkResponse("dev", "GET", "/api/sheds", { nope: 1 })).toThrow(/without a list/);
    expect(() => checkEvent("dev", { type: "result", shed: shed(INJECTED) as never })).toThrow(/invalid name/);
    // Other answers pass as they are.
    expect(checkResponse("dev", "GET", "/api/info", { name: "x" })).toEqual({ name: "x" });
  });

  it("never writes an invalid name or server value into an ssh config entry", () => {
    const files = { keyFile: "/k", knownHostsFile: "/kh" };
    const entry = { host: "127.0.0.1", http_port: 1, ssh_port: 2222, host_key: "ssh-ed25519 AAAA" };
    expect(hostEntry("ok", { name: "dev", entry }, files).text).toContain("User ok");
    expect(() => hostEntry(INJECTED, { name: "dev", entry }, files)).toThrow(/invalid shed name/);
    expect(() => hostEntry("ok", { name: "dev", entry: { ...entry, host: "h\n  ProxyCommand x" } }, files)).toThrow(
      /host "h\\n {2}ProxyCommand x"/,
    );
  });
});

describe("values for ssh_config and known_hosts", () => {
  const good = { host: "example.com", ssh_port: 2222, host_key: "ssh-ed25519 AAAAC3Nza+/=" };
  it.each(["127.0.0.1", "::1", "[::1]", "my-host.example.com", "host_1"])("accepts host %s", (host) => {
    expect(() => checkSshEntry("s", { ...good, host }, { file: "f" })).not.toThrow();
  });
  it.each(["", "a b", "a\nProxyCommand x", '"x"', "h#c", "-oProxyCommand=x", "h%d"])("refuses host %j", (host) => {
    expect(() => checkSshEntry("s", { ...good, host }, { file: "f" })).toThrow(/not a host name/);
  });
  it("refuses a port or host key a server sent that is not one", () => {
    const from = { server: "http://h:1" };
    for (const ssh_port of [0, 65536, 22.5, "22", "22\n  ProxyCommand x"]) {
      expect(() => checkSshEntry("s", { ...good, ssh_port }, from)).toThrow(
        expect.objectContaining({ code: "INVALID_RESPONSE" }),
      );
    }
    for (const host_key of ["ssh-ed25519 AAAA\n@cert-authority * ssh-rsa BBBB", "ssh-ed25519", "x AAAA junk"]) {
      expect(() => checkSshEntry("s", { ...good, host_key }, from)).toThrow(/not an SSH public host key/);
    }
  });
});
