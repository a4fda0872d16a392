// Runs the README's five-line example against a real node.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it, onTestFinished, vi } from "vitest";
import { LobbydNode, WebSocketImpl, client, closeAll } from "./harness.js";

const here = path.dirname(fileURLToPath(import.meta.url));
let node: LobbydNode;
beforeAll(async () => {
  node = await LobbydNode.start();
});
afterAll(async () => {
  closeAll();
  await node?.kill();
});

it("the README's five-line example works", async () => {
  const readme = readFileSync(path.join(here, "../README.md"), "utf8");
  const block = readme.split("## Five lines")[1]!.split("```ts\n")[1]!.split("```")[0]!;
  const code = block.replace("@lobbyd/client", "../../src/index.js").replace("ws://127.0.0.1:8080/ws", node.wsUrl);
  expect(code.trim().split("\n").filter((l) => l && !l.startsWith("import")).length).toBe(5);

  const bob = client(node.wsUrl);
  await bob.login({ username: "bob" });
  const g = globalThis as { WebSocket?: unknown };
  const hadGlobal = "WebSocket" in g;
  g.WebSocket ??= WebSocketImpl; // Node 20 has none
  const log = vi.spyOn(console, "log").mockImplementation(() => {});
  try {
    mkdirSync(path.join(here, ".tmp"), { recursive: true });
    const file = path.join(here, ".tmp", "readme-example.ts");
    writeFileSync(file, `${code}\nexport { client };\n`);
    const example = await import(/* @vite-ignore */ file);
    onTestFinished(() => example.client.close());
    await bob.connectLobby({ id: "room-1" });
    await bob.sendMessage("room-1", "hi ann");
    await expect.poll(() => log.mock.calls.map((c) => c[0])).toContain("bob: hi ann");
    expect((await bob.history("room-1")).map((m) => m.data.content)).toEqual(["hello", "hi ann"]);
  } finally {
    log.mockRestore();
    if (!hadGlobal) delete g.WebSocket;
  }
});
