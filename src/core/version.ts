/** Replaced at bundle time by esbuild's define; the dev fallback reads nothing. */
declare const __SHED_VERSION__: string | undefined;
export const VERSION: string = typeof __SHED_VERSION__ === "string" ? __SHED_VERSION__ : "0.1.0-dev";
