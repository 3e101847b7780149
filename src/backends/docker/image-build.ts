import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import { ShedError } from "../../core/errors.js";
import type { ImageBuildRequest } from "../backend.js";
import { dockerStatus } from "./docker-errors.js";

/** Repository of the images built from devcontainer.json; the tag is the content hash. */
export const BUILT_IMAGE_REPO = "shed-devcontainer";

/**
 * devcontainer.json's `build` on Docker: the context folder is sent to the
 * engine as a tar (dockerode honours .dockerignore), the engine's output is
 * streamed line by line, and the image is tagged with a hash of everything that
 * went into it (every file of the context, the Dockerfile's path, args,
 * target): a second create of the same repository reuses it without a build.
 */
export async function buildDevcontainerImage(
  docker: Docker,
  req: ImageBuildRequest,
  onOutput: (text: string) => void,
): Promise<{ image: string; cached: boolean }> {
  const image = `${BUILT_IMAGE_REPO}:${contextHash(req)}`;
  try {
    await docker.getImage(image).inspect();
    onOutput(`[shed] ${image} is already built from the same Dockerfile and context\n`);
    return { image, cached: true };
  } catch (err) {
    if (dockerStatus(err) !== 404) throw err;
  }
  const stream = await docker.buildImage(
    { context: req.contextDir, src: readdirSync(req.contextDir) },
    {
      t: image,
      dockerfile: req.dockerfile,
      buildargs: req.args,
      ...(req.target ? { target: req.target } : {}),
      labels: { "dev.shed.devcontainer": "1" },
      // A failed step's container goes too (the engine keeps it by default): a failed create leaves nothing.
      rm: true,
      forcerm: true,
    },
  );
  let failure: string | undefined;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err) => (err ? reject(err) : resolve()),
      (ev: { stream?: string; status?: string; error?: string; errorDetail?: { message?: string } }) => {
        if (ev.stream) onOutput(ev.stream);
        else if (ev.status) onOutput(`${ev.status}\n`);
        if (ev.error) failure = ev.errorDetail?.message ?? ev.error;
      },
    );
  });
  if (failure) {
    throw new ShedError("BACKEND_ERROR", `building ${req.dockerfile} failed: ${failure.trim().slice(0, 500)}`, {
      hint: "fix the Dockerfile (its output is above); the shed was not made",
    });
  }
  return { image, cached: false };
}

function contextHash(req: ImageBuildRequest): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ dockerfile: req.dockerfile, args: req.args, target: req.target ?? null }));
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const path = rel ? `${rel}/${name}` : name;
      if (path === ".git") continue;
      const st = lstatSync(full);
      if (st.isDirectory()) {
        h.update(`d\0${path}\0`);
        walk(full, path);
      } else if (st.isSymbolicLink()) h.update(`l\0${path}\0${readlinkSync(full)}\0`);
      else if (st.isFile()) {
        h.update(`f\0${path}\0${st.mode & 0o111 ? "x" : "-"}\0`);
        h.update(readFileSync(full));
      }
    }
  };
  walk(req.contextDir, "");
  return h.digest("hex").slice(0, 20);
}
