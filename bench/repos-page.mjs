// bench/repos-page.mjs BASE PASSWORD [RUNS] — the dashboard's first page of repositories in Chromium, for bench/repos.
// Logs in once (the session cookie stays), then RUNS times navigates from about:blank to #/repos and reads
// window.__mrgateFirstRowsAt (web/js/repos.js sets it when the first rows are in the DOM: performance.now(), counted
// from the start of the navigation). Prints {"runs", "times", "median"} (ms) as its last line. Uses tests/e2e's
// harness (playwright-core, Debian's Chromium).
import { launch, logIn } from '../tests/e2e/lib.mjs';

const [base, password, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 5);
const browser = await launch();
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  await logIn(page, `${base}/#/login`, 'admin', password);
  const times = [];
  for (let i = 0; i < runs; i++) {
    await page.goto('about:blank');
    await page.goto(`${base}/#/repos`);
    await page.waitForSelector('tr[data-id]');
    times.push(Math.round(await page.evaluate(() => window.__mrgateFirstRowsAt)));
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(JSON.stringify({ runs, times, median: sorted[Math.floor(sorted.length / 2)] }));
} finally {
  await browser.close();
}
