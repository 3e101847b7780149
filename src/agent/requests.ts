import { AGENT_PROTOCOL_VERSIONS, type AgentHealth, type OpenRequest } from "../protocol/agent-messages.js";
import type { AgentState } from "./agent-state.js";
import type { AgentStreamIO, StreamHandler } from "./connection.js";
import { startExec } from "./exec-stream.js";
import { startRelay } from "./relay-stream.js";
import { startGetTar, startPutTar } from "./tar-stream.js";
import { startWatch } from "./watch-stream.js";

const NOTHING: StreamHandler = { onCancel() {} };

/** Starts what an OPEN asked for; work kinds count as in flight until their stream ends. */
export async function startRequest(req: OpenRequest, io: AgentStreamIO, state: AgentState): Promise<StreamHandler> {
  switch (req.kind) {
    case "health": {
      const health: AgentHealth = {
        agentVersion: state.agentVersion,
        protocolVersion: Math.max(...AGENT_PROTOCOL_VERSIONS),
        uptimeMs: state.uptimeMs,
        inFlight: state.inFlight,
        draining: state.draining,
      };
      io.end(health);
      return NOTHING;
    }
    case "drain": {
      state.drain(req.timeoutMs).then((stillRunning) => io.end({ stillRunning }));
      return NOTHING;
    }
    case "subscribe":
      return startWatch(req, io, state);
    case "exec":
      return startExec(req, io, state.begin());
    case "put-tar":
      return startPutTar(req, io, state.begin());
    case "get-tar":
      return startGetTar(req, io, state.begin());
    case "tcp":
      return startRelay({ host: "127.0.0.1", port: req.port }, `127.0.0.1:${req.port}`, io, state.begin());
    case "unix":
      return startRelay({ path: req.path }, req.path, io, state.begin());
  }
}
