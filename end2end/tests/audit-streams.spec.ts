import { test, expect } from '@playwright/test';
import { createHmac } from 'node:crypto';
import { createServer, IncomingMessage } from 'node:http';
import { AddressInfo } from 'node:net';
import { ensureStaff, signIn, waitForHydration, watchConsole } from './support';

// An owner streams staff events to a SIEM: creates the stream in the dashboard and copies the
// secret shown once; the SIEM fails the first delivery, gets the retry, checks the HMAC signature;
// the delivery log shows both attempts, and "Redeliver" sends the batch again; then the owner
// moves the stream to another endpoint and changes its filter.

type Received = { signature: string; body: string };

async function siem(failFirst: number) {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ signature: String(req.headers['portcullis-signature'] ?? ''), body });
      res.statusCode = received.length <= failFirst ? 500 : 200;
      res.end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/ingest`, received, close: () => server.close() };
}

test('an owner streams audit events to a SIEM, sees retries in the delivery log and redelivers', async ({ page }) => {
  const tag = Date.now().toString(36);
  const receiver = await siem(1);
  const email = `streams-owner-${tag}@e2e.test`;
  const password = 'stream every staff change';
  ensureStaff(email, 'owner', password);
  const errors = watchConsole(page);
  await signIn(page, email, password);
  await page.goto('/audit/streams');
  await waitForHydration(page);

  await page.getByLabel('Name').fill(`SIEM ${tag}`);
  await page.getByLabel('Endpoint URL').fill(receiver.url);
  await page.getByLabel('Category').selectOption('staff');
  await page.getByRole('button', { name: 'Create stream' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('only time the secret is shown');
  const secret = await dialog.getByTestId('revealed-value').inputValue();
  expect(secret).toMatch(/^whsec_/);
  await dialog.getByRole('link', { name: 'Open the stream' }).click();
  await expect(page).toHaveURL(/\/audit\/streams\/[0-9a-f-]+$/);
  await waitForHydration(page);

  // A staff change after the stream exists: the first delivery fails, the retry is acknowledged.
  ensureStaff(`streamed-${tag}@e2e.test`, 'support', 'a streamed staff member');
  await expect.poll(() => receiver.received.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
  for (const r of receiver.received.slice(0, 2)) {
    const [t, v1] = r.signature.replace('t=', '').split(',v1=');
    expect(createHmac('sha256', secret).update(`${t}.${r.body}`).digest('hex')).toBe(v1);
    const events = JSON.parse(r.body).events as { event: string; detail: { after?: { email?: string } } }[];
    expect(events.map((e) => e.event)).toEqual(['staff.created']);
    expect(events[0].detail.after?.email).toBe(`streamed-${tag}@e2e.test`);
  }

  // The delivery log shows the failure and the success; redeliver the delivered batch.
  const log = page.getByTestId('deliveries-table').locator('tbody tr');
  await expect(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect(log).toHaveCount(2, { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await expect(log.nth(0)).toContainText('delivered (HTTP 200)');
  await expect(log.nth(1)).toContainText('failed: HTTP 500');
  await log.nth(0).getByRole('button', { name: 'Redeliver' }).click();
  await expect(page.getByTestId('toast')).toHaveText('Redelivery queued.');
  await expect.poll(() => receiver.received.length, { timeout: 15_000 }).toBe(3);
  expect(receiver.received[2].body).toContain(`streamed-${tag}@e2e.test`);

  // The owner moves the stream to another endpoint and narrows it to failures: the next staff
  // change (a success) is passed over, not sent.
  const moved = await siem(0);
  await page.getByLabel('Endpoint URL').fill(moved.url);
  await page.getByLabel('Outcome').selectOption('failure');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await expect(page.getByTestId('toast')).toHaveText('Saved.');
  const fields = page.getByTestId('stream-fields');
  await expect(fields).toContainText(moved.url);
  await expect(fields).toContainText('category staff, outcome failure');
  await expect(page.getByLabel('Outcome')).toHaveValue('failure');
  ensureStaff(`skipped-${tag}@e2e.test`, 'support', 'a staff member the filter passes over');
  await expect(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect(fields).toContainText('(0 newer events', { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  // Every outcome again: the next staff change reaches the new endpoint, and only that one.
  await page.getByLabel('Outcome').selectOption('');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await expect(fields).not.toContainText('outcome failure');
  ensureStaff(`moved-${tag}@e2e.test`, 'support', 'a staff member for the new endpoint');
  await expect.poll(() => moved.received.length, { timeout: 20_000 }).toBe(1);
  expect(moved.received[0].body).toContain(`moved-${tag}@e2e.test`);
  expect(moved.received[0].body).not.toContain(`skipped-${tag}@e2e.test`);
  expect(receiver.received).toHaveLength(3);
  expect(errors).toEqual([]);
  receiver.close();
  moved.close();
});
