// Writes schemas/provision.schema.json from the schema the code validates with.
import { writeFileSync } from "node:fs";
import { provisionJsonSchema } from "../src/config/provision-file.js";

writeFileSync(
  new URL("../schemas/provision.schema.json", import.meta.url),
  `${JSON.stringify(provisionJsonSchema(), null, 2)}\n`,
);
console.log("wrote schemas/provision.schema.json");
