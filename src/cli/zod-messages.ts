/**
 * The client config's schema (client-config.ts) uses zod/mini:
 * it is tree-shaken down to what the schema uses, where classic zod brings all of
 * itself and costs about 80 ms of start-up, which the quick path (quick.ts)
 * cannot afford. (Import it as `import * as z from "zod/mini"` and never pass
 * `z` around as a value, or the bundle gets all of it again.) Classic zod sets
 * English messages when its first schema is made; mini does not, so this
 * module does, for its importers: the messages are the same whichever loaded.
 */
import { en } from "zod/locales";
import { config } from "zod/mini";

config(en());
