import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { x as extractTar } from "tar";
import { docker } from "./docker.js";

/**
 * A read-only Docker registry (Registry HTTP API v2) on loopback, serving one
 * image, so that a real `docker pull` by the engine can succeed here, where no
 * public registry is reachable. dockerd talks plain HTTP to 127.0.0.0/8
 * registries by default (its "Insecure Registries"), so no TLS and no daemon
 * configuration. The image's content comes from the engine itself (`docker
 * save` of a local image): its config as it is, its layers gzipped, as a
 * registry stores them (the config's rootfs.diff_ids stay the digests of the
 * uncompressed tars). Every request is recorded, for tests to see what the
 * engine fetched.
 */
export interface LocalRegistry {
  /** host:port, the image reference's registry part. */
  readonly address: string;
  /** The full reference the engine pulls: address/repository:tag. */
  readonly reference: string;
  readonly manifestDigest: string;
  readonly configDigest: string;
  /** The layers' blob digests (of the gzipped tars), bottom first. */
  readonly layerDigests: readonly string[];
  readonly requests: ReadonlyArray<{ method: string; path: string; status: number }>;
  /** The paths of the GETs of this kind answered with 200 (a blob's ends with its digest). */
  served(kind: "manifests" | "blobs"): string[];
  close(): Promise<void>;
}

const MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_TYPE = "application/vnd.docker.container.image.v1+json";
const LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip";

interface Blob {
  size: number;
  file: string;
}

/** sha256 of what flows through, passing it on unchanged. */
class Hasher extends Transform {
  private readonly hash = createHash("sha256");
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void) {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  digest(): string {
    return `sha256:${this.hash.digest("hex")}`;
  }
}

/**
 * Saves `sourceImage` from the engine into `workDir` and serves it as
 * `repository:tag` on 127.0.0.1 (an ephemeral port).
 */
export async function startLocalRegistry(opts: {
  sourceImage: string;
  repository: string;
  tag: string;
  workDir: string;
}): Promise<LocalRegistry> {
  const saved = join(opts.workDir, "saved");
  mkdirSync(saved, { recursive: true });
  await pipeline(await docker.getImage(opts.sourceImage).get(), extractTar({ cwd: saved }));
  // `docker save`'s index: one entry per image saved, its config file and its layer tars, bottom first.
  const [entry] = JSON.parse(readFileSync(join(saved, "manifest.json"), "utf8")) as {
    Config: string;
    Layers: string[];
  }[];
  if (!entry) throw new Error(`docker save of ${opts.sourceImage} has no image in its manifest.json`);

  const blobs = new Map<string, Blob>();
  const configFile = join(saved, entry.Config);
  const configBytes = readFileSync(configFile);
  const configDigest = `sha256:${createHash("sha256").update(configBytes).digest("hex")}`;
  blobs.set(configDigest, { size: configBytes.length, file: configFile });
  const diffIds: string[] = JSON.parse(configBytes.toString("utf8")).rootfs.diff_ids;

  const layers: { mediaType: string; size: number; digest: string }[] = [];
  for (const [i, layerTar] of entry.Layers.entries()) {
    const file = join(opts.workDir, `layer-${i}.tar.gz`);
    const plain = new Hasher();
    const packed = new Hasher();
    // Level 1: the content is the test's own and fast beats small on 2 busy cores.
    await pipeline(
      createReadStream(join(saved, layerTar)),
      plain,
      createGzip({ level: 1 }),
      packed,
      createWriteStream(file),
    );
    // The engine checks each layer's uncompressed digest against the config: a mismatch here would fail the pull for the helper's fault.
    if (plain.digest() !== diffIds[i]) {
      throw new Error(`${layerTar}: uncompressed digest ${plain.digest()} is not the config's diff_id ${diffIds[i]}`);
    }
    const digest = packed.digest();
    blobs.set(digest, { size: packed.size, file });
    layers.push({ mediaType: LAYER_TYPE, size: packed.size, digest });
  }

  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: CONFIG_TYPE, size: configBytes.length, digest: configDigest },
      layers,
    }),
  );
  const manifestDigest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
  const requests: { method: string; path: string; status: number }[] = [];

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://registry").pathname;
    const reply = (status: number, headers: Record<string, string | number>, body?: Buffer | string) => {
      requests.push({ method: req.method ?? "", path, status });
      res.writeHead(status, { "Docker-Distribution-API-Version": "registry/2.0", ...headers });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    const error = (status: number, code: string, message: string) => {
      const body = JSON.stringify({ errors: [{ code, message }] });
      reply(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }, body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return error(405, "UNSUPPORTED", "this registry is read-only");
    if (path === "/v2/" || path === "/v2")
      return reply(200, { "Content-Type": "application/json", "Content-Length": 2 }, "{}");
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
    if (!m) return error(404, "NOT_FOUND", `no route for ${path}`);
    const [, name, kind, ref] = m;
    if (name !== opts.repository) return error(404, "NAME_UNKNOWN", `repository ${name} is not known`);
    if (kind === "manifests") {
      if (ref !== opts.tag && ref !== manifestDigest)
        return error(404, "MANIFEST_UNKNOWN", `manifest ${ref} is not known`);
      return reply(
        200,
        { "Content-Type": MANIFEST_TYPE, "Content-Length": manifest.length, "Docker-Content-Digest": manifestDigest },
        manifest,
      );
    }
    const blob = blobs.get(ref ?? "");
    if (!blob) return error(404, "BLOB_UNKNOWN", `blob ${ref} is not known`);
    requests.push({ method: req.method, path, status: 200 });
    res.writeHead(200, {
      "Docker-Distribution-API-Version": "registry/2.0",
      "Content-Type": "application/octet-stream",
      "Content-Length": blob.size,
      "Docker-Content-Digest": ref,
    });
    if (req.method === "HEAD") return res.end();
    createReadStream(blob.file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    address,
    reference: `${address}/${opts.repository}:${opts.tag}`,
    manifestDigest,
    configDigest,
    layerDigests: layers.map((l) => l.digest),
    requests,
    served: (kind) =>
      requests.filter((r) => r.method === "GET" && r.status === 200 && r.path.includes(`/${kind}/`)).map((r) => r.path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
