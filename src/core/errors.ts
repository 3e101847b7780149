/**
 * The one error type of Shed. Every failure a user can see carries a stable
 * `code` (scripts match on it, never on the message), a message that says what
 * was wrong, and where possible a hint for the fix. The HTTP status and the CLI
 * exit code are derived from the code in one place.
 */
export const ERROR_CODES = {
  SHED_NOT_FOUND: 404,
  SHED_ALREADY_EXISTS: 409,
  SHED_ALREADY_RUNNING: 409,
  SHED_ALREADY_STOPPED: 409,
  SHED_BUSY: 409,
  /** The name's container or volume is another shed-server's, an unadopted older shed, or not made by Shed. */
  SHED_NOT_OWNED: 409,
  INVALID_SHED_NAME: 400,
  INVALID_REQUEST: 400,
  INVALID_CONFIG: 400,
  BACKEND_NOT_ENABLED: 400,
  BACKEND_ERROR: 502,
  IMAGE_NOT_FOUND: 400,
  /** `shed image delete` of an image a shed or the server config still uses. */
  IMAGE_IN_USE: 409,
  CLONE_FAILED: 502,
  CREDENTIAL_MISSING: 400,
  TIMEOUT: 504,
  LOCAL_DIR_NOT_FOUND: 400,
  /** A --local-dir the server's rules do not allow (a system or home directory, outside local_dir_roots...). */
  LOCAL_DIR_REFUSED: 403,
  SERVER_UNREACHABLE: 503,
  SERVER_NOT_FOUND: 404,
  NOT_SUPPORTED: 501,
  /** A server answered with data the CLI refuses to use (e.g. a shed name that is not a valid name). */
  INVALID_RESPONSE: 502,
  /** No API token, or a wrong one. */
  UNAUTHORIZED: 401,
  /** A request from a web page (it carries an Origin header): browsers never get to drive the API. */
  ORIGIN_REFUSED: 403,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  /** The server's TLS certificate is not the one pinned at `shed server add`. */
  SERVER_IDENTITY_CHANGED: 495,
  /** Another shed-server already uses this data_dir (one server per data_dir). */
  DATA_DIR_IN_USE: 409,
  /** The CLI and the server speak API versions the other no longer supports (src/protocol/api-version.ts). */
  VERSION_MISMATCH: 400,
  /** A local port a tunnel wants is taken (by another program, or another shed's tunnel). */
  PORT_IN_USE: 409,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ShedErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Structured facts for --json output and the API (never secrets). */
  details?: Record<string, unknown>;
}

export class ShedError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ShedErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ShedError";
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }

  toJSON(): ErrorBody["error"] {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** The wire form of an error, in API responses and `--json` output. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; hint?: string; details?: Record<string, unknown> };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_CODES, value);
}

/** Turns anything thrown into a ShedError; unknown failures become INTERNAL. */
export function toShedError(err: unknown): ShedError {
  if (err instanceof ShedError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ShedError("INTERNAL", message, { cause: err });
}

export function fromErrorBody(body: unknown, fallbackStatus: number): ShedError {
  const e = (body as Partial<ErrorBody> | undefined)?.error;
  if (e && isErrorCode(e.code) && typeof e.message === "string") {
    return new ShedError(e.code, e.message, { hint: e.hint, details: e.details });
  }
  return new ShedError("INTERNAL", `server answered HTTP ${fallbackStatus} without an error body`);
}
