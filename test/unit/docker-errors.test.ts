import { describe, expect, it } from "vitest";
import { backendError, engineMessage } from "../../src/backends/docker/docker-errors.js";

describe("the engine's words in errors", () => {
  it("a streamed request's error (pull, build) keeps only the engine's message, not dockerode's prefix", () => {
    const streamed = new Error("(HTTP code 404) unexpected - manifest for example/x:1 not found: manifest unknown");
    expect(engineMessage(streamed)).toBe("manifest for example/x:1 not found: manifest unknown");
    expect(backendError("build image", new Error("(HTTP code 500) server error - no space left")).message).toBe(
      "build image: no space left",
    );
  });

  it("a parsed answer's message is used as it is, and other errors keep theirs", () => {
    expect(
      engineMessage(Object.assign(new Error("(HTTP code 409) conflict - x"), { json: { message: "in use" } })),
    ).toBe("in use");
    expect(engineMessage(new Error("socket hang up - retry"))).toBe("socket hang up - retry");
  });
});
