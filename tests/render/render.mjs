// Renders report Markdown as a GitHub comment would be, in headless Chromium, and reports faults.
// GFM through `marked`, Mermaid from npm, both from RENDER_HOME (`make render-tools` installs
// them); Chromium is Debian's (/usr/bin/chromium). Offline: the page loads nothing from a network.
// Usage: node tests/render/render.mjs OUT_DIR NAME=FILE.md ...
// Prints one JSON object per page and theme: {name, theme, errors, charts, series, lowContrast}.
import { createRequire } from "node:module";
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const [outDir, ...pages] = process.argv.slice(2);
if (!outDir || pages.length === 0) {
  console.error("usage: node tests/render/render.mjs OUT_DIR NAME=FILE.md ...");
  process.exit(2);
}
const home = process.env.RENDER_HOME ?? process.cwd();
const require = createRequire(join(home, "package.json"));
const { marked } = require("marked");
const { chromium } = require("playwright-core");
const mermaidJs = readFileSync(require.resolve("mermaid/dist/mermaid.min.js"), "utf8");
// GitHub's page backgrounds and text colours, light and dark.
const THEMES = {
  light: { background: "#ffffff", text: "#1f2328", mermaid: "default" },
  dark: { background: "#0d1117", text: "#e6edf3", mermaid: "dark" },
};

function page(markdown, theme) {
  const body = marked.parse(markdown, { gfm: true });
  const { background, text, mermaid } = THEMES[theme];
  return `<!doctype html><html><head><meta charset="utf-8"><style>
body { background: ${background}; color: ${text}; font: 14px -apple-system, sans-serif;
       max-width: 980px; margin: 16px auto; }
table { border-collapse: collapse; } td, th { border: 1px solid #8b949e; padding: 4px 8px; }
pre.mermaid { background: transparent; }
</style></head><body>${body}
<script>${mermaidJs}</script>
<script>
for (const code of document.querySelectorAll("code.language-mermaid")) {
  const pre = code.parentElement;
  pre.className = "mermaid";
  pre.textContent = code.textContent;
}
window.renderErrors = [];
mermaid.initialize({ startOnLoad: false, theme: "${mermaid}" });
mermaid.run({ querySelector: "pre.mermaid", suppressErrors: false,
              postRenderCallback: () => {} })
  .catch((error) => window.renderErrors.push(String(error && error.message || error)))
  .finally(() => { window.renderDone = true; });
</script></body></html>`;
}

// Colours of the plotted series (lines' strokes, bars' fills) in every rendered xychart.
function inspect() {
  const rgb = (colour) => {
    const match = colour.match(/\d+(\.\d+)?/g);
    return match ? match.slice(0, 3).map(Number) : null;
  };
  const charts = [...document.querySelectorAll("pre.mermaid svg")];
  const series = [];
  for (const svg of charts) {
    for (const line of svg.querySelectorAll(".line-plot-0 path, [class*='line-plot'] path")) {
      series.push({ kind: "line", colour: rgb(getComputedStyle(line).stroke) });
    }
    for (const bar of svg.querySelectorAll("[class*='bar-plot'] rect")) {
      series.push({ kind: "bar", colour: rgb(getComputedStyle(bar).fill) });
    }
  }
  const failed = [...document.querySelectorAll("pre.mermaid")].filter(
    (pre) => !pre.querySelector("svg") || /Syntax error|Parse error/i.test(pre.textContent),
  );
  return { charts: charts.length, series, failedBlocks: failed.length };
}

function luminance([r, g, b]) {
  const linear = [r, g, b].map((c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
}

function contrast(a, b) {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}

const hex = (colour) => [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16));
mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
let status = 0;
try {
  for (const spec of pages) {
    const [name, file] = spec.split("=");
    const markdown = readFileSync(file, "utf8");
    for (const theme of Object.keys(THEMES)) {
      const tab = await browser.newPage({ viewport: { width: 1024, height: 800 } });
      const errors = [];
      tab.on("pageerror", (error) => errors.push(String(error.message)));
      await tab.route("**/*", (route) =>
        route.request().url().startsWith("data:") ? route.continue() : route.abort());
      await tab.setContent(page(markdown, theme));
      await tab.waitForFunction(() => window.renderDone === true, null, { timeout: 60000 });
      errors.push(...(await tab.evaluate(() => window.renderErrors)));
      const found = await tab.evaluate(inspect);
      const background = hex(THEMES[theme].background);
      const lowContrast = found.series.filter(
        (item) => !item.colour || contrast(item.colour, background) < 2.0,
      );
      await tab.screenshot({ path: join(outDir, `${name}-${theme}.png`), fullPage: true });
      await tab.close();
      const result = {
        name, theme, errors, charts: found.charts, failedBlocks: found.failedBlocks,
        series: found.series.length, lowContrast, characters: markdown.length,
      };
      console.log(JSON.stringify(result));
      if (errors.length || found.failedBlocks || lowContrast.length) status = 1;
    }
  }
} finally {
  await browser.close();
}
process.exit(status);
