// JupyterLab in headless Chromium, used as a learner uses it. tests/test_lab_e2e.py starts the
// server (smoke mode, a scratch copy of the notebooks) and runs this script with:
//   LAB_URL, LAB_TOKEN       the server and its token
//   RUN_NOTEBOOK             the chapter to Run All (07_full_gpt.ipynb)
//   EXERCISE_NOTEBOOK        a chapter whose exercises are checked without running it
//   SCREENSHOTS              the folder for the screenshots
//   CHROMIUM                 the browser binary (Debian's chromium; Playwright downloads none)
//   RUN_TIMEOUT_S            how long Run All may take
// It prints one line per step and exits non-zero with the reason when a check fails.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`lab_e2e.mjs needs the environment variable ${name}`);
  return value;
};
const LAB_URL = env("LAB_URL");
const TOKEN = env("LAB_TOKEN");
const RUN_NOTEBOOK = env("RUN_NOTEBOOK");
const EXERCISE_NOTEBOOK = env("EXERCISE_NOTEBOOK");
const SCREENSHOTS = env("SCREENSHOTS");
const CHROMIUM = env("CHROMIUM");
const RUN_TIMEOUT_MS = Number(env("RUN_TIMEOUT_S")) * 1000;
const stem = (notebook) => notebook.replace(/\.ipynb$/, "");

const STDERR = '[data-mime-type="application/vnd.jupyter.stderr"]';
const started = Date.now();
const log = (message) =>
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`);

class CheckFailed extends Error {}
const check = (ok, message) => {
  if (!ok) throw new CheckFailed(message);
};

async function shoot(page, name, target = page) {
  const path = join(SCREENSHOTS, name);
  await target.screenshot({ path });
  log(`screenshot ${path}`);
}

// The notebook in the main area's current tab, once that tab is `name`: its panel (a locator)
// and the panel's element id, for the checks that run inside the page.
async function currentNotebook(page, name) {
  const tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current");
  await tab.filter({ hasText: name }).waitFor({ timeout: 180_000 });
  const id = await tab.getAttribute("data-id");
  const panel = page.locator(`[id="${id}"]`);
  await panel.locator(".jp-Cell").first().waitFor({ timeout: 180_000 });
  await kernelIdle(page, id, 180_000);
  const dialog = page.locator(".jp-Dialog");
  if (await dialog.count()) {
    throw new CheckFailed(`a dialog opened with ${name}: ${await dialog.first().innerText()}`);
  }
  log(`opened ${name}, kernel idle`);
  return { id, panel };
}

// The first notebook opens from a link, as from `make lab`'s printed address...
async function openByLink(page, name) {
  await page.goto(`${LAB_URL}/lab/tree/${encodeURIComponent(name)}?token=${TOKEN}`);
  return currentNotebook(page, name);
}

// ...the next one from the file browser, with a double click.
async function openFromFileBrowser(page, name) {
  await page.locator(".jp-DirListing-item", { hasText: name }).first().dblclick();
  return currentNotebook(page, name);
}

// The kernel is ready and waiting: the toolbar's indicator says idle and so does the status bar
// ("Python 3 (ipykernel) | Idle"). Right after a notebook opens the indicator already reads
// idle while the kernel is still starting, and a Run All clicked then does nothing.
async function kernelIdle(page, id, timeout) {
  await page.waitForFunction(
    (id) => {
      const panel = document.getElementById(id);
      const indicator = panel?.querySelector(".jp-Notebook-ExecutionIndicator");
      const statusBar = document.getElementById("jp-main-statusbar")?.textContent ?? "";
      return indicator?.getAttribute("data-status") === "idle" && /\|\s*Idle/.test(statusBar);
    },
    id,
    { timeout, polling: 500 },
  );
}

// Run > Run All Cells. Every code cell is queued ([*]) at once; the run is over when none is
// left queued and the kernel is idle. A failing cell stops the run: the cells after it lose
// their [*] without running.
async function runAll(page, id) {
  await page.locator(".lm-MenuBar-itemLabel", { hasText: /^Run$/ }).click();
  await page.locator(".lm-Menu-itemLabel", { hasText: /^Run All Cells$/ }).click();
  log("Run All Cells");
  await page.waitForFunction(
    (id) =>
      [...document.getElementById(id).querySelectorAll(".jp-InputPrompt")].some((p) =>
        p.textContent.includes("*"),
      ),
    id,
    { timeout: 60_000 },
  );
  await page.waitForFunction(
    (id) =>
      ![...document.getElementById(id).querySelectorAll(".jp-InputPrompt")].some((p) =>
        p.textContent.includes("*"),
      ),
    id,
    { timeout: RUN_TIMEOUT_MS, polling: 1000 },
  );
  await kernelIdle(page, id, 120_000);
  log("the run is over, kernel idle");
}

// No output holds a traceback, every code cell ran, no progress bar ended red.
async function checkRun(panel) {
  const tracebacks = await panel.locator(STDERR).evaluateAll((nodes) =>
    // IPython's error outputs: "ValueError   Traceback (most recent call last)", or for a
    // syntax error no "Traceback" but a last line "SyntaxError: ...".
    nodes
      .map((n) => n.innerText)
      .filter((t) => /Traceback|^\w*(Error|Exception|Interrupt)\b/m.test(t)),
  );
  check(tracebacks.length === 0, `an output holds a traceback:\n${tracebacks.join("\n---\n")}`);
  // A cell whose input is folded (a solution) shows no prompt; its outputs are checked above.
  const prompts = await panel.locator(".jp-CodeCell .jp-InputArea-prompt").allTextContents();
  const notRun = prompts.filter((p) => !/\[\d+\]/.test(p)).length;
  check(notRun === 0, `${notRun} of ${prompts.length} code cells did not run: ${prompts.join("")}`);
  // tqdm.auto draws an ipywidgets progress bar in Lab; tqdm turns it red ("danger") when its
  // loop ends early, green ("success") when it completes.
  const bars = await panel
    .locator(".widget-hprogress .progress-bar, .widget-vprogress .progress-bar")
    .evaluateAll((nodes) => nodes.map((n) => n.className));
  check(bars.length > 0, "no progress bar shows as a widget (did tqdm fall back to text?)");
  const red = bars.filter((c) => c.includes("progress-bar-danger")).length;
  check(red === 0, `${red} of ${bars.length} progress bars ended red (bar_style "danger")`);
  log(`${prompts.length} code cells ran, no traceback, ${bars.length} progress bars, none red`);
  const training = panel
    .locator(".jp-OutputArea-output")
    .filter({ has: panel.page().locator(".widget-hprogress") })
    .first();
  await training.scrollIntoViewIfNeeded();
  await shoot(panel.page(), `${stem(RUN_NOTEBOOK)}_progress_bar.png`, training);
}

// The sampling lab: drag the temperature slider; the chart and the sample must change.
async function checkSamplingLab(page, { id, panel }) {
  const cell = panel.locator(".jp-CodeCell", { hasText: "sampling_lab(" }).first();
  const slider = cell.locator(".widget-slider", { hasText: "temperature" }).first();
  await slider.scrollIntoViewIfNeeded();
  const readout = slider.locator(".widget-readout");
  const picture = cell.locator(".widget-output img").first();
  const sample = cell.locator(".widget-output .jp-RenderedText").last();
  await picture.waitFor({ timeout: 120_000 });
  const before = { src: await picture.getAttribute("src"), text: await sample.innerText() };
  const readoutBefore = await readout.innerText();
  await shoot(page, `${stem(RUN_NOTEBOOK)}_sampling_lab_before.png`, cell);

  const handle = slider.locator(".noUi-handle");
  const box = await handle.boundingBox();
  check(box !== null, "the temperature slider has no handle on screen");
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 40, box.y + box.height / 2, { steps: 4 });
  await page.mouse.up();
  const readoutAfter = await readout.innerText();
  check(readoutAfter !== readoutBefore, `dragging did not move the slider (${readoutBefore})`);
  log(`temperature ${readoutBefore} -> ${readoutAfter}`);

  const changed = async () => ({
    src: await picture.getAttribute("src").catch(() => null),
    text: await sample.innerText().catch(() => null),
  });
  const deadline = Date.now() + 120_000;
  let now = await changed();
  while (!(now.src && now.text && now.src !== before.src && now.text !== before.text)) {
    const same = now.src === before.src ? "the chart" : "the sample";
    check(Date.now() < deadline, `after the slider moved, ${same} stayed the same`);
    await page.waitForTimeout(500);
    now = await changed();
  }
  await kernelIdle(page, id, 120_000); // the last redraw of the drag is done
  log("the chart and the sample changed");
  await shoot(page, `${stem(RUN_NOTEBOOK)}_sampling_lab_after.png`, cell);
  // The attention explorer below it, for a look at its prompt box and controls.
  const explorer = panel.locator(".jp-CodeCell", { hasText: "attention_explorer(" }).first();
  if (await explorer.count()) {
    await explorer.scrollIntoViewIfNeeded();
    await shoot(page, `${stem(RUN_NOTEBOOK)}_attention_explorer.png`, explorer);
  }
}

// A chapter's exercises as Lab renders them: titles, no directive lines, solutions folded.
async function checkExercises(page, panel) {
  const text = (await panel.locator(".jp-MarkdownOutput").allInnerTexts()).join("\n");
  const directive = /^\s*(:(label|class):|```\{(exercise|solution))/;
  const raw = text.split("\n").filter((line) => directive.test(line));
  check(raw.length === 0, `raw directive lines show:\n${raw.join("\n")}`);
  const titles = text.match(/Exercise \d+\.\d+ ·/g) ?? [];
  check(titles.length > 0, "no exercise title (Exercise N.k · …) shows");
  const details = panel.locator(".jp-MarkdownOutput details");
  const count = await details.count();
  check(count > 0, "no <details> solution block is rendered");
  for (let i = 0; i < count; i++) {
    const block = details.nth(i);
    const summary = (await block.locator("summary").innerText()).trim();
    check(!(await block.evaluate((d) => d.open)), `the solution "${summary}" is open`);
    const shown = await block.locator(":scope > :not(summary)").evaluateAll((nodes) =>
      nodes.filter((n) => n.checkVisibility()).map((n) => n.innerText.slice(0, 80)),
    );
    check(shown.length === 0, `the solution "${summary}" shows its text: ${shown.join(" | ")}`);
  }
  log(`${titles.length} exercise titles, ${count} prose solutions, all folded`);
  await details.first().scrollIntoViewIfNeeded();
  await shoot(page, `${stem(EXERCISE_NOTEBOOK)}_exercises.png`);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
let page;
let exitCode = 0;
try {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  page = await context.newPage();
  page.on("pageerror", (err) => log(`page error: ${err.message}`));

  const chapter = await openByLink(page, RUN_NOTEBOOK);
  await runAll(page, chapter.id);
  await shoot(page, `${stem(RUN_NOTEBOOK)}_run_all.png`);
  await checkRun(chapter.panel);
  await checkSamplingLab(page, chapter);

  const exercises = await openFromFileBrowser(page, EXERCISE_NOTEBOOK);
  await checkExercises(page, exercises.panel);
  log("all checks passed");
} catch (err) {
  exitCode = 1;
  console.log(err instanceof CheckFailed ? `CHECK FAILED: ${err.message}` : `ERROR: ${err.stack}`);
  if (page) await shoot(page, "failure.png").catch(() => {});
} finally {
  await browser.close();
}
process.exit(exitCode);
