// End to end: the chat page as lobbyd serves it, in Debian's Chromium
// (playwright-core): two browser contexts on two lobbyd nodes that share
// one Redis.
import { copyFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LobbydNode, Redis, repoRoot, uid } from "../test/harness.js";

const shots = path.join(path.dirname(fileURLToPath(import.meta.url)), "screenshots");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let redis: Redis;
let nodeA: LobbydNode;
let nodeB: LobbydNode;
let browser: Browser;
let ann: Page;
let bob: Page;
const lobby = uid("e2e");
const errors: string[] = [];

/** The page as lobbyd serves it (`serve_page` is off by default with Redis). */
async function pageUrl(node: LobbydNode): Promise<string> {
  for (const [file, type] of [["", "text/html"], ["app.js", "text/javascript"], ["app.css", "text/css"]]) {
    const res = await fetch(`${node.httpUrl}/${file}`);
    expect(res.status, `GET /${file}`).toBe(200);
    expect(res.headers.get("content-type")).toContain(type);
  }
  return `${node.httpUrl}/`;
}

async function openPage(url: string, name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 620 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
  await page.goto(url);
  return page;
}

const messages = (page: Page) => page.locator("#messages .msg");
const bubble = (page: Page, text: string) => messages(page).filter({ hasText: text });
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(shots, `${name}.png`) });

/** The contents of the bubbles, top to bottom, with their seqs. */
async function transcript(page: Page) {
  return messages(page).evaluateAll((els) =>
    els.map((e) => ({ seq: Number((e as HTMLElement).dataset.seq), content: e.querySelector(".content")?.textContent ?? "" })),
  );
}

async function send(page: Page, text: string) {
  await page.fill("#composer input[name=content]", text);
  await page.press("#composer input[name=content]", "Enter");
  await bubble(page, text).waitFor();
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  redis = await Redis.start();
  nodeA = await LobbydNode.start({ redis, nodeId: "e2e-a", args: ["--serve-page", "true"] });
  nodeB = await LobbydNode.start({ redis, nodeId: "e2e-b", args: ["--serve-page", "true"] });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  ann = await openPage(await pageUrl(nodeA), "ann");
  bob = await openPage(await pageUrl(nodeB), "bob");
});

afterAll(async () => {
  await browser?.close();
  await nodeA?.kill();
  await nodeB?.kill();
  await redis?.stop();
});

describe("chat page", () => {
  it("two users on two nodes log in, meet in a lobby and see each other online", async () => {
    for (const [page, name] of [[ann, "ann"], [bob, "bob"]] as const) {
      await page.fill("#login-form input[name=username]", name);
      await page.click("#login-form button");
      await page.locator("#status[data-state=open]").waitFor();
      await expect.poll(() => page.evaluate(() => localStorage.getItem("lobbyd.token"))).toMatch(/^[0-9a-f]{32}$/);
    }
    await ann.fill("#join-form input[name=lobby]", lobby);
    await ann.click("#join-form button");
    await ann.locator(`#lobbies button[data-lobby="${lobby}"]`).waitFor();
    await bob.fill("#join-form input[name=lobby]", lobby);
    await bob.click("#join-form button");
    await bob.locator(`#lobbies button[data-lobby="${lobby}"]`).waitFor();

    await ann.locator("#members li[data-online=true]", { hasText: "bob" }).waitFor();
    await bob.locator("#members li[data-online=true]", { hasText: "ann" }).waitFor();
  });

  it("shows typing, delivers messages both ways and ticks them received and viewed", async () => {
    await bob.locator("#composer input[name=content]").pressSequentially("hi a", { delay: 20 });
    await ann.locator("#typing", { hasText: "bob is typing" }).waitFor();
    await bob.fill("#composer input[name=content]", "hi ann, this is bob on node B");
    await bob.press("#composer input[name=content]", "Enter");
    await bubble(ann, "hi ann, this is bob on node B").waitFor();
    await expect.poll(() => ann.locator("#typing").textContent()).toBe("");
    // Ann's page saw it (received) and showed it (viewed): Bob's ticks turn blue.
    await bubble(bob, "this is bob").locator(".ticks[data-state=viewed]").waitFor();

    await ann.locator("#composer input[name=content]").pressSequentially("hello", { delay: 20 });
    await bob.locator("#typing", { hasText: "ann is typing" }).waitFor();
    await ann.fill("#composer input[name=content]", "hello bob, ann here on node A");
    await ann.press("#composer input[name=content]", "Enter");
    await bubble(bob, "ann here on node A").waitFor();
    await bubble(ann, "ann here on node A").locator(".ticks[data-state=viewed]").waitFor();
    expect(await bubble(ann, "ann here on node A").locator(".ticks").getAttribute("title")).toBe("viewed by bob");
  });

  it("edits your own message for everyone", async () => {
    await bubble(ann, "ann here on node A").locator("button.edit").click();
    const input = ann.locator("#messages .msg input.edit-input");
    await input.fill("hello bob, ann here on node A (edited)");
    await input.press("Enter");
    await bubble(bob, "(edited)").locator(".edited").waitFor();
    await bubble(ann, "(edited)").waitFor();
    expect(await bubble(ann, "hi ann").locator("button.edit").count()).toBe(0); // Bob's, not Ann's to edit
    await shot(ann, "1-ann-chat");
    await shot(bob, "2-bob-chat");
  });

  it("survives a restart of its node without losing or doubling a message", async () => {
    const before = (await transcript(ann)).length;
    await nodeA.kill();
    await ann.locator("#status[data-state=reconnecting]").waitFor();
    // Node A is gone: Bob's node sees Ann's presence expire.
    await bob.locator("#members li[data-online=false]", { hasText: "ann" }).waitFor({ timeout: 15_000 });
    for (const text of ["missed one", "missed two", "missed three"]) await send(bob, text);
    await shot(ann, "3-ann-reconnecting");
    await shot(bob, "4-bob-ann-offline");

    await nodeA.start(); // same port
    await ann.locator("#status[data-state=open]").waitFor({ timeout: 20_000 });
    await bubble(ann, "missed three").waitFor();
    await bob.locator("#members li[data-online=true]", { hasText: "ann" }).waitFor();
    await send(bob, "and one after");
    await bubble(ann, "and one after").waitFor();
    await send(ann, "back, and I saw all of it");
    await bubble(bob, "back, and I saw all of it").waitFor();
    await bubble(bob, "missed three").locator(".ticks[data-state=viewed]").waitFor();

    const annLines = await transcript(ann);
    const bobLines = await transcript(bob);
    expect(annLines.length).toBe(before + 5);
    expect(annLines.map((l) => l.seq)).toEqual(annLines.map((_, i) => i + 1)); // every seq once, in order
    expect(annLines).toEqual(bobLines);
    expect(annLines.slice(-5).map((l) => l.content)).toEqual([
      "missed one",
      "missed two",
      "missed three",
      "and one after",
      "back, and I saw all of it",
    ]);
    await shot(ann, "5-ann-after-restart");
    await shot(bob, "6-bob-after-restart");
    if (process.env.UPDATE_DOCS_SCREENSHOT) copyFileSync(path.join(shots, "5-ann-after-restart.png"), path.join(repoRoot, "docs/screenshot.png"));
  });

  it("keeps the session across a page reload (token in localStorage)", async () => {
    await ann.reload();
    await ann.locator("#status[data-state=open]").waitFor();
    await bubble(ann, "back, and I saw all of it").waitFor();
    expect(await ann.locator("#me").textContent()).toBe("ann");
  });

  it("private lobbies need their token; unread counts, leaving and logging out", async () => {
    const secret = uid("secret");
    await ann.fill("#join-form input[name=lobby]", secret);
    await ann.uncheck("#join-form input[name=public]");
    await ann.click("#join-form button");
    await ann.locator(`#lobbies button.active[data-lobby="${secret}"]`).waitFor();
    const token = (await ann.locator("#lobby-token").textContent())!.replace("token: ", "");
    expect(token).toMatch(/^[0-9a-f]{32}$/);

    await bob.fill("#join-form input[name=lobby]", secret);
    await bob.click("#join-form button");
    await bob.locator("#join-error", { hasText: "forbidden" }).waitFor();
    await bob.fill("#join-form input[name=token]", token);
    await bob.click("#join-form button");
    await bob.locator(`#lobbies button.active[data-lobby="${secret}"]`).waitFor();
    await ann.locator("#members li", { hasText: "bob" }).waitFor();

    await bob.click(`#lobbies button[data-lobby="${lobby}"]`); // look elsewhere
    await send(ann, "psst");
    await bob.locator(`#lobbies button[data-lobby="${secret}"] .unread`, { hasText: "1" }).waitFor();
    await bob.click(`#lobbies button[data-lobby="${secret}"]`);
    await bubble(bob, "psst").waitFor();
    await bubble(ann, "psst").locator(".ticks[data-state=viewed]").waitFor();

    await bob.click("#leave");
    await ann.locator("#members li", { hasText: "bob" }).waitFor({ state: "detached" });
    await bob.locator(`#lobbies button[data-lobby="${secret}"]`).waitFor({ state: "detached" });

    await bob.click("#logout");
    await bob.locator("#login-form").waitFor();
    expect(await bob.evaluate(() => localStorage.getItem("lobbyd.token"))).toBeNull();
    await ann.locator(`#lobbies button[data-lobby="${lobby}"]`).click();
    await ann.locator("#members li[data-online=false]", { hasText: "bob" }).waitFor();
    expect(errors).toEqual([]);
  });
});
