// The monitor page in a real browser: Debian's chromium, driven by
// playwright-core, against a Roomcast server holding the demo `world` room
// with two @colyseus/sdk clients. Checks the room list, the room's clients
// and state tree, and disposes of the room from the page.
//
// Arguments: <port> <monitor token> <screenshot directory>.
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { assert, modern, until, left, steps, endpoint } from "./lib.mjs";

const [token, shots] = process.argv.slice(3);
const executablePath = process.env.ROOMCAST_CHROMIUM || "/usr/bin/chromium";
fs.mkdirSync(shots, { recursive: true });

let ana, bo, browser, page;

await steps([
  ["two clients join the demo room", async () => {
    ana = await modern().joinOrCreate("world", { name: "ana" });
    bo = await modern().joinById(ana.roomId, { name: "bo" });
    await until(() => ana.state.players && ana.state.players.size === 2, "two players");
    ana.send("move", { x: 123, y: 45 });
    await until(() => bo.state.players?.get(ana.sessionId)?.x === 123, "ana's move");
  }],
  ["chromium opens the monitor", async () => {
    browser = await chromium.launch({
      executablePath,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("dialog", (dialog) => dialog.accept());
    page.on("pageerror", (e) => {
      console.error("page error:", e);
      process.exit(1);
    });
    const response = await page.goto(`${endpoint}/monitor?token=${encodeURIComponent(token)}`);
    assert.equal(response.status(), 200);
  }],
  ["the room list shows the room", async () => {
    const row = page.locator(`#rooms tbody tr[data-room-id="${ana.roomId}"]`);
    await row.waitFor({ timeout: 10000 });
    const cells = await row.locator("td").allTextContents();
    assert.equal(cells[0], "world");
    assert.equal(cells[1], ana.roomId);
    assert.equal(cells[3], "2", `clients column: ${cells}`);
    await page.screenshot({ path: path.join(shots, "monitor-rooms.png"), fullPage: true });
  }],
  ["the room page shows its clients and state tree", async () => {
    await page.locator(`#rooms a[href="#room=${ana.roomId}"]`).click();
    for (const id of [ana.sessionId, bo.sessionId]) {
      await page.locator(`#clients tbody tr[data-session-id="${id}"]`).waitFor({ timeout: 10000 });
    }
    const tree = page.locator("#state > details");
    await tree.waitFor({ timeout: 10000 });
    // The tree shows two levels open; players are collapsed.
    const shown = await page.locator("#state").innerText();
    assert.match(shown, /players \{2\}/, shown);
    assert.doesNotMatch(shown, /123/, "a collapsed player shows no fields");
    // Open ana's node: her fields, ana's move included.
    const ana_node = page.locator("#state details details details", {
      has: page.locator(`:scope > summary > .key:text-is("${ana.sessionId}")`),
    });
    await ana_node.locator(":scope > summary").click();
    assert.equal(await ana_node.evaluate((d) => d.open), true);
    const fields = await ana_node.innerText();
    assert.match(fields, /name: "ana"/, fields);
    assert.match(fields, /x: 123/, fields);
    const clients = await page.locator("#clients tbody").innerText();
    assert.match(clients, new RegExp(bo.sessionId));
    await page.screenshot({ path: path.join(shots, "monitor-room.png"), fullPage: true });
  }],
  ["dispose from the page closes the clients and unlists the room", async () => {
    const closed = [left(ana), left(bo)];
    await page.locator("#dispose").click();
    await Promise.all(closed);
    await page.locator("#list-view").waitFor({ state: "visible", timeout: 10000 });
    const gone = page.locator(`#rooms tbody tr[data-room-id="${ana.roomId}"]`);
    await gone.waitFor({ state: "detached", timeout: 10000 });
    await page.screenshot({ path: path.join(shots, "monitor-after-dispose.png"), fullPage: true });
    await browser.close();
  }],
]);
