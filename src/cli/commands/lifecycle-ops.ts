import type { ProgressEvent } from "../../core/events.js";
import type { Shed } from "../../core/types.js";
import type { ApiClient } from "../api-client.js";
import type { Output } from "../render.js";

/**
 * start, stop and delete as the server runs them, with live progress. Shared by
 * the full CLI (commands/sheds.ts) and the quick path (quick.ts), which passes
 * the same without commander or the local server's start-up behind it, so
 * nothing here may import them.
 */
export interface LifecycleCaller {
  json: boolean;
  out: Output;
  server(): Promise<{ name: string; api: ApiClient }>;
  result(value: unknown, human: () => string): void;
}

const DONE = { start: "started", stop: "stopped" } as const;

export async function startOrStop(caller: LifecycleCaller, verb: "start" | "stop", name: string): Promise<void> {
  const { api } = await caller.server();
  const shed = await operation(caller, api, "POST", `/api/sheds/${name}/${verb}`);
  caller.result(shed, () => `${DONE[verb]} ${name}`);
}

/** The delete itself, once confirmed (the question is the full CLI's). */
export async function deleteShed(
  caller: LifecycleCaller,
  name: string,
  opts: { keepVolume: boolean },
  api?: ApiClient,
): Promise<void> {
  const client = api ?? (await caller.server()).api;
  await operation(caller, client, "DELETE", `/api/sheds/${name}${opts.keepVolume ? "?keep_volume=true" : ""}`);
  caller.result({ deleted: name, kept_volume: opts.keepVolume }, () => `deleted ${name}`);
}

/** Runs a lifecycle operation, rendering its events; resolves to the shed it ended with. */
export async function operation(
  caller: LifecycleCaller,
  api: ApiClient,
  method: "POST" | "DELETE",
  path: string,
  body?: unknown,
): Promise<Shed> {
  try {
    const last: ProgressEvent | undefined = await api.operation(
      method,
      path,
      body,
      (ev) => caller.out.progress(ev),
      (b) => caller.out.printed(b),
    );
    return (last?.type === "result" ? last.shed : undefined) as Shed;
  } finally {
    caller.out.done();
  }
}
