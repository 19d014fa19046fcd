/** The merchant dashboard in a real browser: Debian's chromium driven by playwright-core. */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';
import { createAnalyticsApp } from '../../scripts/analytics-server.js';
import { createApiKey } from '../../src/storage/repositories/apiKeys.js';
import { recordCapture, seedPerson, seedTenant, seedVisitor, type Tenant, seededRandom } from './support.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
// Skipped, saying why in the suite's name, without chromium; a skip fails a CI run (scripts/run-tests.mjs).
const why = hasChromium ? '' : ` [skipped: ${CHROMIUM} is missing (apt-get install -y chromium)]`;

let env: TestEnvironment;
let server: Server;
let browser: Browser;
let origin: string;
let a: Tenant;
let b: Tenant;
const keys: Record<string, string> = {};

describe.skipIf(!hasChromium)(`merchant dashboard (chromium)${why}`, () => {
  beforeAll(async () => {
    env = await createTestEnvironment();
    a = await seedTenant(env.db, 'Alpha Shops', ['America/New_York', 'Europe/Paris']);
    b = await seedTenant(env.db, 'Beta Mart', ['UTC']);
    keys.a = (await createApiKey(env.db, { role: 'merchant', merchantId: a.merchantId })).key;
    keys.b = (await createApiKey(env.db, { role: 'merchant', merchantId: b.merchantId })).key;
    const members = [await seedPerson(env.db, a.merchantId, 'M1'), await seedPerson(env.db, a.merchantId, 'M2')];
    const visitors = await Promise.all(Array.from({ length: 8 }, () => seedVisitor(env.db, a.merchantId)));
    const rnd = seededRandom(3);
    for (let i = 0; i < 60; i++) {
      const day = Math.floor(rnd() * 10); // 2026-03-01 .. 03-10
      const at = new Date(Date.parse('2026-03-01T14:00:00Z') + day * 86_400_000 + Math.floor(rnd() * 9 * 60) * 60_000);
      const subject = rnd() < 0.3 ? { kind: 'member' as const, subjectId: members[Math.floor(rnd() * 2)] } : { kind: 'visitor' as const, subjectId: visitors[Math.floor(rnd() * 8)] };
      await recordCapture(env.db, a, 0, at, [{ ...subject, age: 15 + Math.floor(rnd() * 60), gender: rnd() < 0.5 ? 'male' : 'female' }]);
    }
    server = createAnalyticsApp(env.db, env.config).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    await env?.cleanup();
  });

  it('signs in, shows the API numbers for a store and range, downloads CSV, and saves a screenshot', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1400 }, acceptDownloads: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${origin}/dashboard`);
    await page.fill('#key', keys.a);
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForSelector('#dashboard:not([hidden])');
    const options = await page.$$eval('#store option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options.sort()).toEqual([...a.storeIds].sort());
    await page.selectOption('#store', a.storeIds[0]);
    await page.selectOption('#preset', 'custom');
    await page.fill('#from', '2026-03-01');
    await page.fill('#to', '2026-03-10');
    await page.selectOption('#interval', 'day');
    await page.click('#load');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('Showing 10 day buckets'));

    const q = 'from=2026-03-01&to=2026-03-11&interval=day';
    const api = async (route: string) =>
      (await fetch(`${origin}/v1/stores/${a.storeIds[0]}/analytics/${route}?${q}`, { headers: { Authorization: `Bearer ${keys.a}` } })).json();
    const [traffic, demo, vis] = [await api('traffic'), await api('demographics'), await api('visitors')];
    const kpi = async (name: string) => (await page.textContent(`[data-kpi="${name}"]`))?.trim();
    expect(traffic.totals.visits).toBeGreaterThan(10);
    expect(await kpi('visits')).toBe(String(traffic.totals.visits));
    expect(await kpi('uniqueSubjects')).toBe(String(traffic.totals.uniqueSubjects));
    expect(await kpi('memberVisits')).toBe(String(traffic.totals.memberVisits));
    expect(await kpi('visitorVisits')).toBe(String(traffic.totals.visitorVisits));
    expect(await kpi('newVisitors')).toBe(String(vis.totals.newVisitors));
    expect(await kpi('returningVisitors')).toBe(String(vis.totals.returningVisitors));
    expect(await kpi('repeatVisitors')).toBe(String(vis.totals.repeatVisitors));
    expect(await kpi('medianVisitMinutes')).toBe(String(demo.totals.medianVisitMinutes));

    // The traffic chart holds exactly the API's series.
    const series = await page.evaluate(() => {
      const chart = (window as unknown as { echarts: { getInstanceByDom(el: Element): { getOption(): { series: { data: number[] }[]; xAxis: { data: string[] }[] } } } })
        .echarts.getInstanceByDom(document.getElementById('chart-traffic')!);
      const option = chart.getOption();
      return { visits: option.series[0].data, labels: option.xAxis[0].data };
    });
    expect(series.visits).toEqual(traffic.buckets.map((x: { visits: number }) => x.visits));
    expect(series.labels).toEqual(traffic.buckets.map((x: { start: string }) => x.start.slice(0, 10)));
    for (const id of ['chart-traffic', 'chart-kinds', 'chart-returning', 'chart-gender', 'chart-age', 'chart-heatmap']) {
      expect(await page.$(`#${id} canvas`), id).not.toBeNull();
    }

    // CSV download equals the API's CSV.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
    const csv = await fsp.readFile((await download.path())!, 'utf8');
    const apiCsv = await (await fetch(`${origin}/v1/stores/${a.storeIds[0]}/analytics/traffic?${q}&format=csv`, { headers: { Authorization: `Bearer ${keys.a}` } })).text();
    expect(csv).toBe(apiCsv);

    await fsp.mkdir('test-results', { recursive: true });
    await page.screenshot({ path: path.join('test-results', 'dashboard.png'), fullPage: true });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('another merchant sees only its own stores and cannot load Alpha\'s', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/dashboard/`);
    await page.fill('#key', keys.b);
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForSelector('#dashboard:not([hidden])');
    const options = await page.$$eval('#store option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options).toEqual(b.storeIds);
    const status = await page.evaluate(async (storeId) => {
      const res = await fetch(`/v1/stores/${storeId}/analytics/traffic`, { headers: { Authorization: `Bearer ${sessionStorage.getItem('faceperks.merchantKey')}` } });
      return res.status;
    }, a.storeIds[0]);
    expect(status).toBe(404);
    // A wrong key never gets in.
    await page.click('#sign-out');
    await page.fill('#key', 'not-a-key');
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForFunction(() => (document.getElementById('sign-in-error')?.textContent ?? '').length > 0);
    expect(await page.isHidden('#dashboard')).toBe(true);
    await context.close();
  });
});
