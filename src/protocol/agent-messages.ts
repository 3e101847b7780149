import { z } from "zod";

/**
 * The JSON payloads of the agent protocol (frame layout: agent-frames.ts).
 * Both sides validate what they receive with these schemas; anything else is a
 * bad frame.
 */

export const AGENT_PROTOCOL = "shed-agent";
/** Versions this build speaks; a peer picks the highest both speak. */
export const AGENT_PROTOCOL_VERSIONS = [1] as const;
export const AGENT_CAPABILITIES = ["exec", "pty", "tar", "tcp", "unix", "drain", "messages"] as const;

/** A JSON payload larger than this is refused (the frame cap: an exec's argv and env can be long). */
export const MAX_JSON_PAYLOAD = 1024 * 1024;

const versions = z.array(z.number().int().positive()).min(1).max(16);

export const AgentHello = z.strictObject({
  protocol: z.literal(AGENT_PROTOCOL),
  role: z.literal("agent"),
  versions,
  capabilities: z.array(z.string().max(64)).max(64),
  agentVersion: z.string().max(64),
  /** Present when the agent requires the host to prove the per-VM secret (agent-auth.ts). */
  nonce: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type AgentHello = z.infer<typeof AgentHello>;

export const HostHello = z.strictObject({
  protocol: z.literal(AGENT_PROTOCOL),
  role: z.literal("host"),
  versions,
  capabilities: z.array(z.string().max(64)).max(64),
  /** HMAC-SHA256(secret, nonce) in hex, when the agent's hello carried a nonce. */
  proof: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type HostHello = z.infer<typeof HostHello>;

export const Ready = z.strictObject({ version: z.number().int().positive() });

const text = (max: number) => z.string().max(max);
const path = text(4096).refine((p) => !p.includes("\0"), "contains NUL");
const userName = text(256).regex(/^[A-Za-z0-9._][A-Za-z0-9._-]*\$?$|^[0-9]+$/);

export const ExecRequest = z.strictObject({
  kind: z.literal("exec"),
  argv: z
    .array(text(128 * 1024).refine((a) => !a.includes("\0"), "contains NUL"))
    .min(1)
    .max(4096),
  env: z
    .record(
      text(1024).regex(/^[^=\0]+$/),
      text(32 * 1024).refine((v) => !v.includes("\0"), "contains NUL"),
    )
    .optional(),
  user: userName.optional(),
  cwd: path.optional(),
  tty: z
    .strictObject({ cols: z.number().int().min(1).max(10_000), rows: z.number().int().min(1).max(10_000) })
    .optional(),
  stdin: z.boolean().optional(),
});
export type ExecRequest = z.infer<typeof ExecRequest>;

const maxBytes = z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional();

export const PutTarRequest = z.strictObject({
  kind: z.literal("put-tar"),
  /** Absolute directory the archive is extracted under (made if missing, owned by user). */
  dir: path,
  user: userName.optional(),
  maxBytes,
  maxEntries: z.number().int().positive().optional(),
});
export type PutTarRequest = z.infer<typeof PutTarRequest>;

export const GetTarRequest = z.strictObject({
  kind: z.literal("get-tar"),
  /** Absolute path whose file or tree is streamed out, as an archive with one top entry (its basename). */
  path,
  maxBytes,
});
export type GetTarRequest = z.infer<typeof GetTarRequest>;

export const TcpRequest = z.strictObject({ kind: z.literal("tcp"), port: z.number().int().min(1).max(65535) });
export const UnixRequest = z.strictObject({ kind: z.literal("unix"), path });
export const HealthRequest = z.strictObject({ kind: z.literal("health") });
export const DrainRequest = z.strictObject({
  kind: z.literal("drain"),
  timeoutMs: z.number().int().min(0).max(600_000),
});
export const SubscribeRequest = z.strictObject({
  kind: z.literal("subscribe"),
  /** Guest files whose changes are announced as credential-changed messages. */
  watch: z.array(path).max(256),
});
export type SubscribeRequest = z.infer<typeof SubscribeRequest>;

export const OpenRequest = z.discriminatedUnion("kind", [
  ExecRequest,
  PutTarRequest,
  GetTarRequest,
  TcpRequest,
  UnixRequest,
  HealthRequest,
  DrainRequest,
  SubscribeRequest,
]);
export type OpenRequest = z.infer<typeof OpenRequest>;

/** Kinds that count as in-flight work: drain waits for them and refuses new ones. */
export const WORK_KINDS: ReadonlySet<OpenRequest["kind"]> = new Set(["exec", "put-tar", "get-tar", "tcp", "unix"]);

export const ExecControl = z.union([
  z.strictObject({
    resize: z.strictObject({ cols: z.number().int().min(1).max(10_000), rows: z.number().int().min(1).max(10_000) }),
  }),
  z.strictObject({ signal: z.string().regex(/^SIG[A-Z0-9]{2,10}$/) }),
]);
export type ExecControl = z.infer<typeof ExecControl>;

export const ExecAccept = z.strictObject({ pid: z.number().int() });

export const ExecEnd = z.strictObject({
  /** The shell's convention, as Docker reports it: 128 + the signal's number when a signal ended the process. */
  exitCode: z.number().int(),
  signal: z.string().optional(),
});
export type ExecEnd = z.infer<typeof ExecEnd>;

export const TarEnd = z.strictObject({ bytes: z.number().int().min(0), entries: z.number().int().min(0) });
export type TarEnd = z.infer<typeof TarEnd>;

export const AgentHealth = z.strictObject({
  agentVersion: z.string(),
  protocolVersion: z.number().int(),
  uptimeMs: z.number().min(0),
  inFlight: z.number().int().min(0),
  draining: z.boolean(),
});
export type AgentHealth = z.infer<typeof AgentHealth>;

export const DrainEnd = z.strictObject({ stillRunning: z.number().int().min(0) });
export type DrainEnd = z.infer<typeof DrainEnd>;

/** What the agent tells a subscribed host unprompted. */
export const AgentMessage = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("credential-changed"),
    path,
    /** False when the file was removed. */
    exists: z.boolean(),
    mtimeMs: z.number().optional(),
    size: z.number().int().min(0).optional(),
  }),
  z.strictObject({ type: z.literal("draining") }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

/** Codes of ERROR frames; on stream 0 the connection closes after one. */
export const AGENT_ERROR_CODES = [
  "BAD_FRAME",
  "FRAME_TOO_LARGE",
  "UNKNOWN_FRAME_TYPE",
  "PROTOCOL",
  "FLOW_CONTROL",
  "VERSION_MISMATCH",
  "AUTH_REQUIRED",
  "AUTH_FAILED",
  "BAD_REQUEST",
  "TOO_MANY_STREAMS",
  "DRAINING",
  "NO_SUCH_USER",
  "NOT_FOUND",
  "CONNECT_FAILED",
  "TAR_REFUSED",
  "TOO_LARGE",
  "CANCELLED",
  "INTERNAL",
] as const;
export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];

export const AgentErrorBody = z.strictObject({
  code: z.enum(AGENT_ERROR_CODES),
  message: z.string().max(4096),
});
export type AgentErrorBody = z.infer<typeof AgentErrorBody>;

/** Parses a JSON payload against a schema; undefined when it is not JSON or does not match. */
export function parseJsonPayload<T>(schema: z.ZodType<T>, payload: Buffer): T | undefined {
  if (payload.length > MAX_JSON_PAYLOAD) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(payload.toString("utf8"));
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** The highest version in both lists, or undefined. */
export function pickVersion(mine: readonly number[], theirs: readonly number[]): number | undefined {
  const common = mine.filter((v) => theirs.includes(v));
  return common.length > 0 ? Math.max(...common) : undefined;
}
