// The playground in headless Chromium (Debian's chromium, driven by playwright-core): a
// prompt is submitted, the canvas is seen updating step by step, and a screenshot is
// saved as a CI artifact ($UNMASK_ARTIFACT_DIR/playground.png).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { startServer } from "./server.mjs";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

test("playground renders the canvas denoising live", async () => {
  // Tiny-model steps take microseconds: slow them down so the page can be watched.
  const server = await startServer(["--step-delay-ms", "40"]);
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(server.url + "/");
    await page.waitForFunction(() => document.getElementById("model-name").textContent === "llada-tiny");
    await page.fill("#max_tokens", "48");
    await page.selectOption("#algorithm", "topn");  // one slot per step: 48 visible steps
    await page.fill("#prompt", "Hello, playground!");
    await page.click("#send");

    const canvasState = () =>
      page.evaluate(() => ({
        steps: Number(document.getElementById("canvas").dataset.steps),
        masked: document.querySelectorAll("#canvas .slot.masked").length,
        slots: document.querySelectorAll("#canvas .slot").length,
      }));
    await page.waitForFunction(() => Number(document.getElementById("canvas").dataset.steps) >= 3);
    const early = await canvasState();
    assert.ok(early.masked > 0, "masked placeholders are shown while decoding");
    const dir = process.env.UNMASK_ARTIFACT_DIR || ".";
    fs.mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, "playground-denoising.png"), fullPage: true });
    await page.waitForFunction((s) => Number(document.getElementById("canvas").dataset.steps) > s + 3, early.steps);
    const later = await canvasState();
    assert.ok(later.steps > early.steps, "the canvas keeps updating");
    await page.waitForSelector("#messages .assistant", { timeout: 60000 });
    const done = await canvasState();
    assert.equal(done.masked, 0, "no masked slot is left at the end");
    assert.ok(Number(await page.textContent("#tps")) > 0, "tokens/s readout is live");
    await page.waitForFunction(() => document.getElementById("send").disabled === false);
    await page.screenshot({ path: path.join(dir, "playground.png"), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.stop();
  }
});
