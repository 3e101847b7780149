/**
 * The stable agent socket in the shed user's home: a symlink the server's agent
 * relay points at the latest forwarding connection's socket, and that `shed attach -A`
 * gives tmux as SSH_AUTH_SOCK (sessions outlive a connection).
 */
export const STABLE_AGENT_LINK = ".ssh-agent-shed.sock";
