/** A shed as a server's API returns it, for tests that play a (hostile) server to the CLI. */
export function fakeShed(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    backend: "docker",
    status: "running",
    image: "shed-base:latest",
    created_at: "2026-01-01T00:00:00.000Z",
    workspace: "/workspace",
    resources: {},
    warnings: [],
    ...extra,
  };
}
