/**
 * What a worker node says when a task module cannot be imported on its machine: which module,
 * which package is missing and where to install it, in words a user can act on. The same text
 * goes to the node's stderr and, with the node's name, to the coordinator.
 */

/** Longest import error passed on: stack traces of loaders can be long, the cause is on top. */
const MAX_DETAIL_CHARS = 600;

/**
 * How runtimes say a bare import could not be resolved: Node "Cannot find package 'x' imported
 * from …"; Deno "Could not find package 'x' from referrer …", or, where a deno.json or
 * package.json does not list it, 'Import "x" not a dependency' and 'Relative import path "x" not
 * prefixed with / or ./ or ../'.
 */
const NOT_FOUND = [
  /(?:Cannot|Could not) find (?:package|module) ['"]([^'"]+)['"]/,
  /Import ['"]([^'"]+)['"] not a dependency/,
  /Relative import path ['"]([^'"]+)['"] not prefixed/,
];

/** The package a failed import could not find, from the runtime's message. */
export function missingPackage(err: unknown): string | undefined {
  const message = err instanceof Error ? err.message : String(err);
  const m = NOT_FOUND.map((re) => re.exec(message)).find((x) => x !== null);
  if (!m) return undefined;
  const specifier = m[1]!;
  // A path (a relative import the bundle should have inlined) is not a package to install.
  if (/^(?:\.|\/|[a-z]+:)/i.test(specifier)) return undefined;
  // The package of a deep import: '@scope/name/sub' → '@scope/name', 'name/sub' → 'name'.
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/**
 * One sentence for a task module that failed to import. `module` is its name on the
 * coordinator's machine (tasks.ts); `installDir` is where this node resolves packages from.
 */
export function describeImportFailure(module: string, err: unknown, installDir: string): string {
  const pkg = missingPackage(err);
  if (pkg !== undefined) {
    return `task module ${module} imports package '${pkg}', which is not installed on this machine: run \`npm install ${pkg}\` in ${installDir} (where the worker runs)`;
  }
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const short = detail.length > MAX_DETAIL_CHARS ? `${detail.slice(0, MAX_DETAIL_CHARS)}…` : detail;
  return `task module ${module} could not be imported on this machine: ${short}`;
}
