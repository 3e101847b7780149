import type { Duplex } from "node:stream";
import { ShedError } from "../../core/errors.js";
import { proofFor } from "../../protocol/agent-auth.js";
import { encodeJsonFrame, type Frame, FrameParser, FrameType } from "../../protocol/agent-frames.js";
import {
  AGENT_CAPABILITIES,
  AGENT_PROTOCOL,
  AGENT_PROTOCOL_VERSIONS,
  AgentHello,
  type HostHello,
  parseJsonPayload,
  pickVersion,
  Ready,
} from "../../protocol/agent-messages.js";
import type { AgentClientOptions } from "./agent-client.js";
import { agentError } from "./agent-errors.js";

/** What the handshake leaves: the socket, its parser (which may hold the start of the next frame), frames after READY. */
export interface Handshake {
  socket: Duplex;
  parser: FrameParser;
  where: string;
  version: number;
  hello: AgentHello;
  leftover: Frame[];
}

/** Dials, exchanges hellos (and the secret's proof), and resolves once the agent is ready. */
export async function handshake(opts: AgentClientOptions): Promise<Handshake> {
  const where = opts.where ?? "the guest agent";
  const socket = await opts.dial();
  const parser = new FrameParser();
  const secret = typeof opts.secret === "string" ? Buffer.from(opts.secret, "utf8") : opts.secret;
  return new Promise<Handshake>((resolve, reject) => {
    let stage: "hello" | "ready" = "hello";
    let version = 0;
    let hello: AgentHello | undefined;
    const timer = setTimeout(
      () => fail(new ShedError("TIMEOUT", `${where} did not finish the handshake in time`)),
      opts.handshakeTimeoutMs ?? 10_000,
    );
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    const fail = (err: ShedError) => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error) => fail(new ShedError("BACKEND_ERROR", `${where}: ${err.message}`, { cause: err }));
    const onClose = () => fail(new ShedError("BACKEND_ERROR", `${where} closed the connection during the handshake`));
    const onData = (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = parser.push(chunk);
      } catch (err) {
        fail(new ShedError("BACKEND_ERROR", `${where} does not speak the agent protocol: ${(err as Error).message}`));
        return;
      }
      while (frames.length > 0) {
        const f = frames.shift() as Frame;
        if (f.type === FrameType.ERROR) return fail(agentError(where, f.payload));
        if (stage === "hello") {
          hello = f.type === FrameType.HELLO ? parseJsonPayload(AgentHello, f.payload) : undefined;
          if (!hello) return fail(new ShedError("BACKEND_ERROR", `${where} sent no valid hello`));
          const picked = pickVersion(AGENT_PROTOCOL_VERSIONS, hello.versions);
          if (picked === undefined) {
            return fail(
              new ShedError("VERSION_MISMATCH", `${where} speaks protocol versions ${hello.versions.join(", ")} only`, {
                hint: "rebuild the VM image (npm run build-vm-image) with this version of Shed",
              }),
            );
          }
          if (hello.nonce && !secret) {
            return fail(new ShedError("BACKEND_ERROR", `${where} requires the VM's secret, and none was given`));
          }
          version = picked;
          const reply: HostHello = {
            protocol: AGENT_PROTOCOL,
            role: "host",
            versions: [...AGENT_PROTOCOL_VERSIONS],
            capabilities: [...AGENT_CAPABILITIES],
            ...(hello.nonce && secret ? { proof: proofFor(secret, hello.nonce) } : {}),
          };
          socket.write(encodeJsonFrame(FrameType.HELLO, 0, reply));
          stage = "ready";
          continue;
        }
        const ready = f.type === FrameType.READY ? parseJsonPayload(Ready, f.payload) : undefined;
        if (!ready || ready.version !== version)
          return fail(new ShedError("BACKEND_ERROR", `${where} sent no valid ready`));
        cleanup();
        // Frames after READY in this chunk are handed over with the parser (and any partial frame it holds).
        resolve({ socket, parser, where, version, hello: hello as AgentHello, leftover: frames });
        return;
      }
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    // A dialer may hand over a paused socket (the Firecracker one, after unshifting bytes).
    socket.resume();
  });
}
