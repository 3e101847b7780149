import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../../core/atomic-file.js";
import { IMAGE_NAME_RE } from "../../protocol/image-types.js";

/**
 * What `shed image build` made, one file per name in data_dir/images/NAME.json (written whole and
 * atomically): where it came from, the content hash it was built from (the cache key), and the two
 * forms. The engine and vm_images_dir stay the truth about what exists; a record says only what
 * Shed made, so that list, delete and prune never touch an image a user made by hand.
 */
const recordSchema = z
  .object({
    version: z.literal(1),
    name: z.string().regex(IMAGE_NAME_RE),
    source: z.string(),
    dockerfile: z.string(),
    context_hash: z.string(),
    docker_id: z.string(),
    /** The VM image's build directory, when the server had a VM backend to build it for. */
    vm_dir: z.string().optional(),
    arch: z.string(),
    built_at: z.string(),
  })
  .strict();

export type ImageRecord = z.infer<typeof recordSchema>;

export class ImageRecords {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, "images");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  get(name: string): ImageRecord | undefined {
    let text: string;
    try {
      text = readFileSync(this.file(name), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    const parsed = recordSchema.safeParse(JSON.parse(text));
    // A damaged record is as good as none: the next build writes it again.
    return parsed.success ? parsed.data : undefined;
  }

  list(): ImageRecord[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith(".json") && IMAGE_NAME_RE.test(f.slice(0, -5)))
      .map((f) => this.get(f.slice(0, -5)))
      .filter((r): r is ImageRecord => r !== undefined)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  put(record: ImageRecord): void {
    writeFileAtomic(this.file(record.name), `${JSON.stringify(recordSchema.parse(record), null, 2)}\n`, 0o600);
  }

  remove(name: string): void {
    rmSync(this.file(name), { force: true });
  }

  private file(name: string): string {
    if (!IMAGE_NAME_RE.test(name)) throw new Error(`not an image name: ${name}`);
    return join(this.dir, `${name}.json`);
  }
}
