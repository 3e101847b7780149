import { existsSync } from "node:fs";
import type { Backend, CreateSpec } from "../backends/backend.js";
import { ShedError } from "../core/errors.js";
import { validateShedName } from "../core/names.js";
import { redactUrl } from "../core/redact.js";
import { repoRemote } from "../core/repo-url.js";
import type { RepoSource } from "../guest/clone.js";
import type { CreateShedRequest } from "../protocol/api-types.js";
import type { CreateContext } from "./create-steps.js";
import { devcontainerForCreate } from "./devcontainer-create.js";
import { checkLocalDir } from "./local-dir-policy.js";
import type { ProvisionState } from "./provision-steps.js";
import type { ServiceDeps } from "./shed-service.js";
import { checkSizeRequest } from "./size-request.js";

/**
 * A create request checked and turned into what the create steps need, before
 * anything is made: the backend, the local dir (checked, resolved), where the
 * code comes from (credentials out of the URL), and the credentials' plan.
 */
export async function prepareCreate(
  req: CreateShedRequest,
  deps: Pick<ServiceDeps, "config" | "backends" | "env" | "bundlePath" | "hostProblem">,
  provisionState: (backend: Backend, name: string, noProvision: boolean) => ProvisionState,
): Promise<CreateContext> {
  const name = validateShedName(req.name);
  // Before the backend is even looked up: a malformed or impossible size makes nothing.
  const size = checkSizeRequest(req);
  const backendName = req.backend ?? deps.config.defaultBackend;
  const backend = deps.backends.get(backendName);
  if (!backend) {
    const enabled = `enabled: ${[...deps.backends.keys()].join(", ")} (server config: enabled_backends)`;
    // Said at once: enabling it would not help on a host that lacks what it needs.
    const problem = deps.hostProblem?.(backendName);
    throw new ShedError(
      "BACKEND_NOT_ENABLED",
      `backend ${JSON.stringify(backendName)} is not enabled on this server${problem ? `, and this host could not run it: ${problem.message}` : ""}`,
      { hint: problem?.hint ? `${problem.hint}; ${enabled}` : enabled },
    );
  }
  if ((req.repo || req.repo_bundle) && req.local_dir) {
    throw new ShedError("INVALID_REQUEST", "--repo and --local-dir cannot be used together", {
      hint: "--local-dir mounts an existing checkout as the workspace; --repo clones one into a fresh workspace",
    });
  }
  if (req.repo && req.repo_bundle) {
    throw new ShedError("INVALID_REQUEST", "give either repo or repo_bundle, not both");
  }
  // Checked here, before anything is made, for every backend; the real path is what gets mounted.
  const localDir = req.local_dir ? checkLocalDir(req.local_dir, deps.config) : undefined;
  // Credentials leave the URL here (given in it or as repo_credentials): git gets them from a store, never argv.
  if (req.repo_credentials && !req.repo && !req.repo_origin) {
    throw new ShedError("INVALID_REQUEST", "repo_credentials were given without a repository URL to use them for", {
      hint: "give repo (or repo_origin with repo_bundle) too",
    });
  }
  let repo: RepoSource | undefined;
  if (req.repo) repo = { kind: "url", ...repoRemote(req.repo, req.repo_credentials) };
  if (req.repo_bundle) {
    const file = deps.bundlePath(req.repo_bundle);
    if (!file) {
      throw new ShedError("INVALID_REQUEST", `repo_bundle ${req.repo_bundle} is not an upload on this server`, {
        hint: "upload the bundle with PUT /api/bundles first (the CLI does this for a local --repo path)",
      });
    }
    repo = {
      kind: "bundle",
      file,
      label: req.repo_label ?? "local repository",
      ...(req.repo_origin ? { origin: repoRemote(req.repo_origin, req.repo_credentials) } : {}),
    };
  }
  // A missing source is a warning of the credential step; the backend gets the present ones.
  const present = deps.config.credentials.filter((c) => existsSync(c.source));
  const missing = deps.config.credentials.filter((c) => !present.includes(c));
  const spec: CreateSpec = {
    name,
    image: req.image ?? backend.defaultImage,
    credentials: present,
    env: deps.env,
    createdAt: new Date().toISOString(),
    size,
    ...(localDir ? { localDir } : {}),
    ...(req.repo ? { repoDisplay: redactUrl(req.repo) } : {}),
    ...(req.repo_bundle ? { repoDisplay: req.repo_label ?? "local repository" } : {}),
  };
  // devcontainer.json (issue 13) can set the image and the container's env: read before anything is made.
  const devcontainer = req.devcontainer
    ? devcontainerForCreate(req.devcontainer, backend, spec, req.image !== undefined)
    : undefined;
  // What this backend cannot do (a --local-dir where it has none, an image it does not have) is refused now.
  await backend.checkCreate(spec);
  return {
    backend,
    spec,
    repo,
    missingCredentials: missing,
    prov: provisionState(backend, name, req.no_provision === true),
    ...(devcontainer ? { devcontainer } : {}),
    ...(req.devcontainer_lookup && req.repo && !devcontainer
      ? { devcontainerLookup: { ...req.devcontainer_lookup, imageGiven: req.image !== undefined } }
      : {}),
  };
}
