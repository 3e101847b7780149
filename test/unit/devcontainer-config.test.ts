// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings hold devcontainer.json's own ${...} variables
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { Backend, CreateSpec } from "../../src/backends/backend.js";
import { localEnvNames, mapDevcontainer, resolveRemoteEnv } from "../../src/config/devcontainer/map.js";
import { parseDevcontainer } from "../../src/config/devcontainer/parse.js";
import { formatProblem } from "../../src/config/yaml-source.js";
import { encodeStage, STAGE_RUNNER } from "../../src/guest/devcontainer-stage.js";
import { devcontainerForCreate } from "../../src/lifecycle/devcontainer-create.js";
import { shedCommandUser } from "../../src/lifecycle/devcontainer-user.js";

const F = ".devcontainer/devcontainer.json";
const ctx = { localEnv: { USER_NAME: "ada" }, localWorkspaceFolderBasename: "proj" };

describe("devcontainer.json parse", () => {
  it("reads comments, trailing commas and the three command forms", () => {
    const { config, problems } = parseDevcontainer(
      [
        "// a comment",
        "{",
        '  /* block */ "image": "mcr.example/base:1",',
        '  "onCreateCommand": "echo one",',
        '  "updateContentCommand": ["npm", "ci",],',
        '  "postCreateCommand": { "a": "make", "b": ["x", "y"], },',
        "}",
      ].join("\n"),
      F,
    );
    expect(problems).toEqual([]);
    expect(config.image).toBe("mcr.example/base:1");
    expect(config.commands.onCreateCommand).toEqual({ kind: "shell", command: "echo one" });
    expect(config.commands.updateContentCommand).toEqual({ kind: "argv", argv: ["npm", "ci"] });
    expect(config.commands.postCreateCommand).toEqual({
      kind: "parallel",
      entries: [
        { name: "a", command: { kind: "shell", command: "make" } },
        { name: "b", command: { kind: "argv", argv: ["x", "y"] } },
      ],
    });
  });

  it("a type error names file:line:col and the property, and refuses only that property", () => {
    const text =
      '{\n  "postStartCommand": 42,\n  "remoteEnv": { "OK": "1", "BAD": [1] },\n  "onCreateCommand": "true"\n}';
    const { config, problems } = parseDevcontainer(text, F);
    expect(problems.map(formatProblem)).toEqual([
      `${F}:2:23: postStartCommand: must be a string, an array of strings or an object of those, not a number; refused`,
      `${F}:3:36: remoteEnv.BAD: must be a string, not an array; refused`,
    ]);
    expect(config.commands.postStartCommand).toBeUndefined();
    expect(config.remoteEnv).toEqual({ OK: "1" });
    expect(config.commands.onCreateCommand).toEqual({ kind: "shell", command: "true" });
  });

  it("a syntax error refuses the property it is in and keeps the others", () => {
    const text = '{\n  "onCreateCommand": "a",\n  "remoteEnv": { "X": "1" }\n  "postStartCommand": "b"\n}';
    const { config, problems } = parseDevcontainer(text, F);
    expect(problems.map(formatProblem)).toEqual([`${F}:4:3: postStartCommand: JSON syntax: a comma is missing`]);
    expect(config.commands.onCreateCommand).toEqual({ kind: "shell", command: "a" });
    expect(config.remoteEnv).toEqual({ X: "1" });
    expect(config.commands.postStartCommand).toBeUndefined();
  });

  it("a file that is not an object applies nothing", () => {
    const { problems } = parseDevcontainer("[1, 2]", F);
    expect(problems.map(formatProblem)).toEqual([`${F}:1:1: the file is not a JSON object; ignored`]);
  });
});

describe("devcontainer.json mapping", () => {
  it("puts onCreate, updateContent, postCreate in the install stage, in that order, and postStart, postAttach apart", () => {
    const { config } = parseDevcontainer(
      '{"postCreateCommand":"c","postStartCommand":"s","onCreateCommand":"a","postAttachCommand":"t","updateContentCommand":"b"}',
      F,
    );
    const { plan } = mapDevcontainer(config, F, ctx);
    expect(plan.install.map((c) => c.property)).toEqual([
      "onCreateCommand",
      "updateContentCommand",
      "postCreateCommand",
    ]);
    expect(plan.startup.map((c) => c.property)).toEqual(["postStartCommand"]);
    expect(plan.attach.map((c) => c.property)).toEqual(["postAttachCommand"]);
  });

  it("substitutes localEnv, workspace variables and containerEnv; unknown variables become empty", () => {
    const { config } = parseDevcontainer(
      JSON.stringify({
        containerEnv: { GREETING: "hi ${localEnv:USER_NAME}" },
        remoteEnv: {
          A: "${localEnv:USER_NAME}",
          B: "${containerEnv:GREETING}!",
          C: "${containerWorkspaceFolder}/${localWorkspaceFolderBasename}",
          D: "[${localEnv:NOPE}][${localEnv:NOPE:dflt}][${containerEnv:NOPE}]",
          E: "${containerEnv:PATH}:/extra",
          F: null,
        },
      }),
      F,
    );
    const { plan } = mapDevcontainer(config, F, ctx);
    expect(plan.containerEnv).toEqual({ GREETING: "hi ada" });
    expect(plan.remoteUnset).toEqual(["F"]);
    expect(resolveRemoteEnv(plan, { PATH: "/usr/bin:/bin" })).toEqual({
      A: "ada",
      B: "hi ada!",
      C: "/workspace/proj",
      D: "[][dflt][]",
      E: "/usr/bin:/bin:/extra",
    });
    expect(localEnvNames('{"a":"${localEnv:ONE} ${env:TWO}"}')).toEqual(["ONE", "TWO"]);
  });

  it("warns once per key Shed does not do, skips initializeCommand with a warning, refuses compose", () => {
    const { config } = parseDevcontainer(
      '{"features":{},"forwardPorts":[3000],"mounts":[],"customizations":{},"initializeCommand":"x"}',
      F,
    );
    const { warnings, plan } = mapDevcontainer(config, F, ctx);
    expect(plan.forwardPorts).toEqual(["3000"]);
    expect(warnings.map((w) => w.message.split(":")[1]?.trim().split(" ")[0])).toEqual([
      "initializeCommand",
      "features",
      "forwardPorts",
      "mounts",
      "customizations",
    ]);
    const compose = parseDevcontainer('{"dockerComposeFile":"docker-compose.yml"}', F).config;
    expect(() => mapDevcontainer(compose, F, ctx)).toThrow(/dockerComposeFile/);
  });

  it("resolves build paths against the file's folder and refuses ones that leave the repository", () => {
    const ok = parseDevcontainer(
      '{"build":{"dockerfile":"Dockerfile","context":"..","args":{"V":"${localEnv:USER_NAME}"}}}',
      F,
    );
    expect(mapDevcontainer(ok.config, F, ctx).plan.build).toEqual({
      dockerfile: ".devcontainer/Dockerfile",
      context: ".",
      args: { V: "ada" },
    });
    const out = parseDevcontainer('{"build":{"dockerfile":"Dockerfile","context":"../.."}}', F);
    const mapped = mapDevcontainer(out.config, F, ctx);
    expect(mapped.plan.build).toBeUndefined();
    expect(mapped.warnings[0]?.message).toContain("leaves the repository");
  });
});

describe("the stage runner (bash on this host)", () => {
  it("runs properties in order, arrays without a shell, objects in parallel with prefixes, and stops at a failure", () => {
    const stage = encodeStage([
      { property: "onCreateCommand", command: { kind: "shell", command: 'echo one "$0"' } },
      { property: "updateContentCommand", command: { kind: "argv", argv: ["printf", "%s|", "a b", "$HOME", ""] } },
      {
        property: "postCreateCommand",
        command: {
          kind: "parallel",
          entries: [
            { name: "x", command: { kind: "shell", command: "echo x1" } },
            { name: "y", command: { kind: "argv", argv: ["sh", "-c", "echo y1; exit 3"] } },
          ],
        },
      },
      { property: "postStartCommand", command: { kind: "shell", command: "echo never" } },
    ]);
    const r = spawnSync("bash", ["-c", STAGE_RUNNER, "label", stage], { encoding: "utf8" });
    expect(r.status).toBe(3);
    expect(r.stdout).toContain("one /bin/sh\n");
    expect(r.stdout).toContain("a b|$HOME||");
    expect(r.stdout).toContain("[x] x1\n");
    expect(r.stdout).toContain("[y] y1\n");
    expect(r.stdout).not.toContain("never");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe(
      "shed: devcontainer.json: postCreateCommand failed with exit code 3",
    );
  });
});

describe("devcontainer.json at create", () => {
  const spec = () => ({ name: "x", image: "shed-base:latest", env: { FROM_SERVER: "1" } }) as unknown as CreateSpec;
  const docker = { name: "docker", buildImage: async () => ({ image: "", cached: true }) } as unknown as Backend;
  const qemu = { name: "qemu" } as unknown as Backend;
  const req = (text: string) => ({ path: ".devcontainer.json", text });

  it("on Docker, image becomes the shed's image and containerEnv the container's env", () => {
    const s = spec();
    const dc = devcontainerForCreate(req('{"image":"node:20","containerEnv":{"A":"1"}}'), docker, s, false);
    expect(s.image).toBe("node:20");
    expect(s.env).toEqual({ FROM_SERVER: "1", A: "1" });
    expect(dc.build).toBe(false);
  });

  it("--image wins over the file's image and build, said in a warning", () => {
    const s = spec();
    const dc = devcontainerForCreate(req('{"image":"node:20"}'), docker, s, true);
    expect(s.image).toBe("shed-base:latest");
    expect(dc.warnings.map((w) => w.message)).toEqual([".devcontainer.json: image/build ignored: --image was given"]);
  });

  it("a VM backend ignores image and build with a warning", () => {
    const s = spec();
    const dc = devcontainerForCreate(req('{"build":{"dockerfile":"Dockerfile"}}'), qemu, s, false);
    expect(s.image).toBe("shed-base:latest");
    expect(dc.build).toBe(false);
    expect(dc.warnings[0]?.message).toContain("image and build are ignored on the qemu backend");
  });
});

describe("the user a shed's commands run as", () => {
  const plan = (extra: Record<string, string>) => ({
    ...mapDevcontainer(parseDevcontainer("{}", F).config, F, ctx).plan,
    ...extra,
  });
  it("is the remoteUser provisioning found in the image, root only when that is the file's", () => {
    expect(shedCommandUser(plan({ remoteUser: "dev", hookUser: "dev" }))).toBe("dev");
    expect(shedCommandUser(plan({ remoteUser: "root", hookUser: "root" }))).toBe("root");
  });
  it("is shed without a devcontainer.json, without remoteUser, when the image lacks it, or for a record made before", () => {
    expect(shedCommandUser(undefined)).toBe("shed");
    expect(shedCommandUser(plan({}))).toBe("shed");
    expect(shedCommandUser(plan({ remoteUser: "vscode", hookUser: "" }))).toBe("shed");
    expect(shedCommandUser(plan({ remoteUser: "root" }))).toBe("shed");
  });
});
