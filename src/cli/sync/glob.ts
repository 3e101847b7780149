/**
 * `include` globs of sync.yaml, matched against a file's path relative to its
 * directory source. `*` and `?` stay within one path segment, `**` crosses
 * segments (`**\/` is zero or more directories), `[abc]`/`[!abc]` are classes and
 * `{a,b}` alternatives. As in .gitignore, a pattern without a `/` matches a
 * name at any depth, a pattern with one is anchored at the source; a pattern
 * that matches a directory includes everything below it.
 */
export type IncludeMatcher = (relPath: string) => boolean;

export function includeMatcher(patterns: readonly string[]): IncludeMatcher {
  const compiled = patterns.map((raw) => {
    const trimmed = raw.replace(/\/+$/, "");
    const anchored = trimmed.includes("/");
    return { anchored, re: globToRegExp(trimmed.replace(/^\/+/, "").replace(/^\.\//, "")) };
  });
  return (relPath) => {
    const segments = relPath.split("/");
    return compiled.some(({ anchored, re }) =>
      anchored
        ? segments.some((_, i) => re.test(segments.slice(0, i + 1).join("/")))
        : segments.some((seg) => re.test(seg)),
    );
  };
}

export function globToRegExp(glob: string): RegExp {
  let re = "";
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        i++;
        if (glob[i + 1] === "/") {
          i++;
          re += "(?:.*/)?";
        } else re += ".*";
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let body = glob.slice(i + 1, end).replace(/\\/g, "\\\\");
        if (body.startsWith("!")) body = `^${body.slice(1)}`;
        re += `[${body}]`;
        i = end;
      }
    } else if (c === "{") {
      braces++;
      re += "(?:";
    } else if (c === "," && braces > 0) re += "|";
    else if (c === "}" && braces > 0) {
      braces--;
      re += ")";
    } else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  re += ")".repeat(braces);
  return new RegExp(`^${re}$`);
}
