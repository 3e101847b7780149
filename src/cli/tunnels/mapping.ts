import { ShedError } from "../../core/errors.js";

/** One forward: a listener on 127.0.0.1:local on this machine to localhost:remote in the shed. */
export interface TunnelMapping {
  local: number;
  remote: number;
}

/** What a profile entry or a -t value may be: `PORT` (same on both sides) or `LOCAL:REMOTE`; a YAML number is a PORT. */
export type MappingSpec = string | number;

const SPEC_RE = /^(\d{1,5})(?::(\d{1,5}))?$/;

function port(text: string): number | undefined {
  const n = Number(text);
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}

/** The mapping a spec names, or undefined when it is not one (the config schema and -t share this). */
export function parseMapping(spec: MappingSpec): TunnelMapping | undefined {
  const m = SPEC_RE.exec(String(spec));
  if (!m?.[1]) return undefined;
  const local = port(m[1]);
  const remote = m[2] === undefined ? local : port(m[2]);
  return local !== undefined && remote !== undefined ? { local, remote } : undefined;
}

export const MAPPING_FORMAT = "PORT or LOCAL:REMOTE, each port 1-65535 (e.g. 3000 or 8080:3000)";

export function mappingSpec(m: TunnelMapping): string {
  return m.local === m.remote ? String(m.local) : `${m.local}:${m.remote}`;
}

/**
 * The mappings of a start: each -p profile's in order, then each -t; the same
 * mapping twice counts once, and one local port sent to two remote ports is
 * refused, naming where each came from.
 */
export function mergeMappings(
  profiles: Record<string, MappingSpec[]> | undefined,
  wanted: { profiles: string[]; specs: string[] },
  configFile: string,
): (TunnelMapping & { from: string })[] {
  const byLocal = new Map<number, { m: TunnelMapping; from: string }>();
  const add = (spec: MappingSpec, from: string) => {
    const m = parseMapping(spec);
    if (!m) {
      throw new ShedError("INVALID_REQUEST", `${from}: ${JSON.stringify(spec)} is not a tunnel mapping`, {
        hint: `write ${MAPPING_FORMAT}`,
      });
    }
    const seen = byLocal.get(m.local);
    if (seen && seen.m.remote !== m.remote) {
      throw new ShedError(
        "INVALID_REQUEST",
        `local port ${m.local} is mapped twice: to ${seen.m.remote} (${seen.from}) and to ${m.remote} (${from})`,
        { hint: "give each local port one remote port (LOCAL:REMOTE picks another local port)" },
      );
    }
    if (!seen) byLocal.set(m.local, { m, from });
  };
  for (const name of wanted.profiles) {
    const specs = profiles && Object.hasOwn(profiles, name) ? profiles[name] : undefined;
    if (!specs) {
      const known = Object.keys(profiles ?? {});
      throw new ShedError("INVALID_REQUEST", `no tunnel profile ${JSON.stringify(name)} in ${configFile}`, {
        hint: known.length
          ? `known profiles: ${known.join(", ")}`
          : `add one under tunnels: in ${configFile}, e.g. tunnels: {web: ["3000", "5432:5432"]}`,
      });
    }
    for (const spec of specs) add(spec, `profile ${name}`);
  }
  for (const spec of wanted.specs) add(spec, `-t ${spec}`);
  return [...byLocal.values()].map((v) => ({ ...v.m, from: v.from }));
}
