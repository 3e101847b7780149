/** The host side of shed-agent: a client per VM, and GuestExec over it. */
export { AgentClient, type AgentClientOptions, type AgentExec, type AgentExecSpec } from "./agent-client.js";
export { AgentGuestExec } from "./agent-guest-exec.js";
export { type AgentDialer, dialerFor, firecrackerDialer, tcpDialer, unixDialer } from "./dialers.js";
