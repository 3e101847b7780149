import { isHttpRepoUrl, type RepoCredentials } from "../core/repo-url.js";

/** The user name sent with SHED_REPO_TOKEN when SHED_REPO_USERNAME is unset (GitHub and Gitea accept any; GitLab wants oauth2 or the token's name). */
export const DEFAULT_REPO_USERNAME = "x-access-token";

/**
 * A repository token from the environment, so it is on no command line,
 * not even the user's own (`shed create --repo https://TOKEN@...` is in the
 * shell's history and in `ps`). It travels in the create request's body.
 * Only an http(s) remote can use it: for ssh and others it is not sent.
 */
export function repoCredentialsFromEnv(
  remoteUrl: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): RepoCredentials | undefined {
  const password = env.SHED_REPO_TOKEN;
  if (!password || !remoteUrl || !isHttpRepoUrl(remoteUrl)) return undefined;
  return { username: env.SHED_REPO_USERNAME || DEFAULT_REPO_USERNAME, password };
}
