import { type ErrorCode, ShedError } from "../../core/errors.js";
import { AgentErrorBody, parseJsonPayload } from "../../protocol/agent-messages.js";

const CODE_MAP: Partial<Record<AgentErrorBody["code"], ErrorCode>> = {
  VERSION_MISMATCH: "VERSION_MISMATCH",
  TOO_LARGE: "PAYLOAD_TOO_LARGE",
  TAR_REFUSED: "INVALID_REQUEST",
};

/** An ERROR frame from the agent as a ShedError, with a hint where the fix is known. */
export function agentError(where: string, payload: Buffer): ShedError {
  const body = parseJsonPayload(AgentErrorBody, payload);
  if (!body) return new ShedError("BACKEND_ERROR", `${where} sent an unreadable error`);
  const hint =
    body.code === "AUTH_FAILED" || body.code === "AUTH_REQUIRED"
      ? "the VM's secret on this host does not match the guest's; recreate the shed"
      : body.code === "DRAINING"
        ? "the shed is stopping; `shed start` it again once stopped"
        : undefined;
  return new ShedError(CODE_MAP[body.code] ?? "BACKEND_ERROR", `${where}: ${body.message}`, {
    ...(hint ? { hint } : {}),
    details: { agentCode: body.code },
  });
}
