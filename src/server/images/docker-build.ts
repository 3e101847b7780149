import { createReadStream } from "node:fs";
import type Docker from "dockerode";
import { ShedError } from "../../core/errors.js";
import type { LifecycleSink } from "../../core/events.js";

/** Labels on every Docker image `shed image build` makes: prune finds superseded ones by them. */
export const IMAGE_LABEL = { name: "dev.shed.image-name", context: "dev.shed.image-context" } as const;

export interface DockerBuildSpec {
  /** The uploaded context (a tar). */
  contextFile: string;
  dockerfile: string;
  /** The tag to build: NAME:latest. */
  ref: string;
  name: string;
  contextHash: string;
  noCache: boolean;
  step: string;
  emit: LifecycleSink;
}

/**
 * One `docker build` through the engine's API (the context goes as the request body), its output
 * streamed as the step's output while it comes. Returns the image id. The engine reports a failed
 * instruction inside the stream (HTTP 200), so the stream's `error` items are what fail the build.
 */
export async function dockerBuild(docker: Docker, spec: DockerBuildSpec): Promise<string> {
  const stream = (await docker.buildImage(createReadStream(spec.contextFile), {
    t: spec.ref,
    dockerfile: spec.dockerfile,
    labels: { [IMAGE_LABEL.name]: spec.name, [IMAGE_LABEL.context]: spec.contextHash },
    nocache: spec.noCache,
    rm: true,
    forcerm: true,
  })) as NodeJS.ReadableStream;
  let failure: string | undefined;
  let imageId: string | undefined;
  let buffered = "";
  const handle = (line: string) => {
    if (line.trim() === "") return;
    let item: { stream?: string; status?: string; error?: string; aux?: { ID?: string } };
    try {
      item = JSON.parse(line);
    } catch {
      return;
    }
    if (item.error) failure = item.error;
    if (item.aux?.ID) imageId = item.aux.ID;
    const text = item.stream ?? (item.status ? `${item.status}\n` : item.error ? `${item.error}\n` : undefined);
    if (text) {
      spec.emit({
        type: "output_bytes",
        step: spec.step,
        stream: item.error ? "stderr" : "stdout",
        bytes: Buffer.from(text),
      });
    }
  };
  await new Promise<void>((resolve, reject) => {
    stream.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      let at = buffered.indexOf("\n");
      while (at >= 0) {
        handle(buffered.slice(0, at));
        buffered = buffered.slice(at + 1);
        at = buffered.indexOf("\n");
      }
    });
    stream.on("end", () => {
      handle(buffered);
      resolve();
    });
    stream.on("error", reject);
  });
  if (failure !== undefined) {
    throw new ShedError("BACKEND_ERROR", `docker build of ${spec.ref} failed: ${failure.trim()}`, {
      hint: `fix ${spec.dockerfile} (the build output above says where it stopped) and build again`,
    });
  }
  // The engine names the image in an aux item; inspecting the tag covers an engine that does not.
  return imageId ?? (await docker.getImage(spec.ref).inspect()).Id;
}
