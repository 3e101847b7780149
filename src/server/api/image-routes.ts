import type { Hono } from "hono";
import { ShedError } from "../../core/errors.js";
import { quote } from "../../core/quote.js";
import { buildImageRequestSchema, type ImageListResponse, imageNameSchema } from "../../protocol/image-types.js";
import type { BundleStore } from "../bundles.js";
import type { ImageService } from "../images/image-service.js";
import { runOperation } from "./respond.js";

/**
 * /api/images: build (with live progress, like a lifecycle operation; the context is an upload
 * made with PUT /api/bundles, under the same size limit), list, one image, delete, prune.
 */
export function registerImageRoutes(
  app: Hono,
  deps: { images: ImageService; bundles: BundleStore; parse: (req: Request) => Promise<unknown> },
): void {
  const { images } = deps;

  app.get("/api/images", async (c) => c.json({ images: await images.list() } satisfies ImageListResponse));

  app.get("/api/images/:name", async (c) => c.json(await images.get(checkName(c.req.param("name")))));

  app.post("/api/images", async (c) => {
    const req = buildImageRequestSchema.safeParse(await deps.parse(c.req.raw));
    if (!req.success) {
      const i = req.error.issues[0];
      throw new ShedError("INVALID_REQUEST", `invalid request body: ${i?.path.join(".") || "body"}: ${i?.message}`);
    }
    return runOperation(
      c,
      async (emit) => {
        try {
          await images.build(req.data, emit);
        } finally {
          deps.bundles.remove(req.data.context);
        }
      },
      () => undefined,
    );
  });

  app.delete("/api/images/:name", async (c) =>
    c.json({ deleted: c.req.param("name"), removed: await images.delete(checkName(c.req.param("name"))) }),
  );

  app.post("/api/images/prune", async (c) => {
    const dry = c.req.query("dry_run");
    if (dry !== undefined && dry !== "true" && dry !== "false") {
      throw new ShedError("INVALID_REQUEST", `dry_run must be true or false, got ${quote(dry)}`);
    }
    return c.json(await images.prune(dry === "true"));
  });
}

function checkName(name: string): string {
  if (!imageNameSchema.safeParse(name).success) {
    throw new ShedError("INVALID_REQUEST", `${quote(name, 70)} is not an image name`, {
      hint: "an image name uses a-z, 0-9 and single . _ - between them",
    });
  }
  return name;
}
