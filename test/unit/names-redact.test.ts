import { describe, expect, it } from "vitest";
import { validateShedName } from "../../src/core/names.js";
import { redactText, redactUrl, urlSecrets } from "../../src/core/redact.js";

describe("shed names", () => {
  it.each(["a", "ab", "my-project", "x1", "a".repeat(63)])("accepts %s", (n) => {
    expect(validateShedName(n)).toBe(n);
  });
  it.each(["", "A", "1abc", "-a", "a-", "a_b", "a.b", "a".repeat(64), "über"])("rejects %j", (n) => {
    expect(() => validateShedName(n)).toThrow(/shed name/);
  });
});

describe("redaction", () => {
  it("removes credentials from URLs", () => {
    expect(redactUrl("https://user:tok@github.com/o/r.git")).toBe("https://***@github.com/o/r.git");
    expect(redactUrl("https://github.com/o/r.git")).toBe("https://github.com/o/r.git");
    expect(redactText("fatal: could not read from https://x:y@h/p and https://a@b/c")).toBe(
      "fatal: could not read from https://***@h/p and https://***@b/c",
    );
  });
  it("scrubs the secret even where a tool mangled the URL", () => {
    const secrets = urlSecrets("https://bot:s3cret%21@host/r.git");
    expect(redactText("auth failed for bot with s3cret! and s3cret%21", secrets)).not.toMatch(/s3cret/);
  });
});
