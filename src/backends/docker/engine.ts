import Docker from "dockerode";

/**
 * The engine client: the socket of the server config's `docker_host`, else
 * dockerode's default (DOCKER_HOST with its TLS settings, else
 * /var/run/docker.sock). Each request opens its own connection, so a client
 * outlives an engine restart: nothing needs reconnecting once it is back.
 */
export function dockerEngine(socketPath: string | undefined): Docker {
  return socketPath ? new Docker({ socketPath }) : new Docker();
}
