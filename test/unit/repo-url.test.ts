import { describe, expect, it } from "vitest";
import { repoCredentialsFromEnv } from "../../src/cli/repo-token.js";
import { ShedError } from "../../src/core/errors.js";
import { credentialSecrets, displayRemote, repoRemote } from "../../src/core/repo-url.js";

function refusal(f: () => unknown): ShedError {
  try {
    f();
  } catch (err) {
    if (err instanceof ShedError) return err;
    throw err;
  }
  throw new Error("not refused");
}

describe("repoRemote: credentials leave the URL git is given", () => {
  it("takes user and token out of an https URL, percent-decoded the way git decodes them", () => {
    expect(repoRemote("https://ci%20bot:t%2Fok%40en%25x@git.example:8443/o/r.git?x=1")).toEqual({
      url: "https://git.example:8443/o/r.git?x=1",
      credentials: { username: "ci bot", password: "t/ok@en%x" },
    });
  });
  it("treats a lone user name as the token (https://TOKEN@host), with an empty password", () => {
    expect(repoRemote("HTTP://ghp_abcdef@github.com/o/r")).toEqual({
      url: "HTTP://github.com/o/r",
      credentials: { username: "ghp_abcdef", password: "" },
    });
  });
  it("leaves URLs without credentials, ssh user names and scp-like remotes as they are", () => {
    for (const url of ["https://h/o/r.git", "ssh://git@h:22/o/r.git", "git@h:o/r.git", "git://h/r.git", "/srv/r"]) {
      expect(repoRemote(url)).toEqual({ url });
    }
  });
  it("drops a password from a non-http URL (git never uses it there), keeping the user name", () => {
    expect(repoRemote("ssh://git:pw@h/o/r.git")).toEqual({ url: "ssh://git@h/o/r.git" });
  });
  it("takes explicit credentials for an http URL without any", () => {
    const credentials = { username: "x-access-token", password: "s3cret-token" };
    expect(repoRemote("https://h/o/r.git", credentials)).toEqual({ url: "https://h/o/r.git", credentials });
  });
  it("refuses, without repeating the secret: both kinds at once, explicit ones for ssh, a bad escape, a line break, nested credentials", () => {
    const cases = [
      () => repoRemote("https://u:s3cret-a@h/r", { username: "u", password: "s3cret-b" }),
      () => repoRemote("ssh://git@h/r", { username: "u", password: "s3cret-b" }),
      () => repoRemote("https://u:s3cret-%zz@h/r"),
      () => repoRemote("https://u:s3cret-%0Aprotocol=x@h/r"),
      () => repoRemote("helper::https://u:s3cret-a@h/r"),
    ];
    for (const f of cases) {
      const e = refusal(f);
      expect(e.code).toBe("INVALID_REQUEST");
      expect(`${e.message} ${e.hint}`).not.toMatch(/s3cret/);
    }
  });
  it("shows *** where credentials are used, and names the strings to scrub", () => {
    const r = repoRemote("https://u:tok%2Fen@h/r.git");
    expect(displayRemote(r)).toBe("https://***@h/r.git");
    expect(credentialSecrets(r.credentials)).toEqual(["tok/en", "tok%2Fen"]);
    expect(credentialSecrets(repoRemote("https://ghp_abcdef@h/r").credentials)).toEqual(["ghp_abcdef"]);
  });
});

describe("SHED_REPO_TOKEN", () => {
  it("is the password for an http(s) remote, with SHED_REPO_USERNAME or x-access-token", () => {
    expect(repoCredentialsFromEnv("https://h/r", { SHED_REPO_TOKEN: "tok" })).toEqual({
      username: "x-access-token",
      password: "tok",
    });
    expect(repoCredentialsFromEnv("https://h/r", { SHED_REPO_TOKEN: "tok", SHED_REPO_USERNAME: "me" })).toEqual({
      username: "me",
      password: "tok",
    });
  });
  it("is not sent for ssh remotes, without a remote, or when unset", () => {
    expect(repoCredentialsFromEnv("git@h:o/r.git", { SHED_REPO_TOKEN: "tok" })).toBeUndefined();
    expect(repoCredentialsFromEnv(undefined, { SHED_REPO_TOKEN: "tok" })).toBeUndefined();
    expect(repoCredentialsFromEnv("https://h/r", {})).toBeUndefined();
  });
});
