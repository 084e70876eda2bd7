import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { ensureStaff, portcullis, signIn, waitForHydration, watchConsole } from './support';

// A security reviewer narrows the log to one application's changes, reads what changed, exports the
// view as CSV and verifies the chain — read-only from start to end.

test('an auditor filters, reads a diff, exports CSV and verifies the chain', async ({ page, request }) => {
  const tag = Date.now().toString(36);
  const key = portcullis(['api-key', 'create', '--role', 'operator', '--name', `e2e audit ${tag}`]).trim().split('\n').pop()!;
  const auth = { authorization: `Bearer ${key}` };
  const appName = `Audited ${tag}`;
  const created = await request.post('/api/v1/applications', {
    headers: auth,
    data: { name: appName, type: 'spa', description: 'before the change', redirect_uris: ['https://audited.example/cb'] },
  });
  expect(created.status()).toBe(201);
  const appId = (await created.json()).id as string;
  const changed = await request.patch(`/api/v1/applications/${appId}`, { headers: auth, data: { description: 'after the change' } });
  expect(changed.status()).toBe(200);

  const email = `auditor-${tag}@e2e.test`;
  const password = 'read everything change nothing';
  ensureStaff(email, 'auditor', password);
  const errors = watchConsole(page);
  await signIn(page, email, password);
  await page.goto('/audit');
  await waitForHydration(page);

  // Filter by application and event; the view lives in the URL.
  const filters = page.getByTestId('audit-filters');
  await filters.getByLabel('Application', { exact: true }).selectOption({ label: appName });
  await filters.getByLabel('Event', { exact: true }).selectOption('application.updated');
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await expect(page).toHaveURL(new RegExp(`application=${appId}.*event=application\\.updated|event=application\\.updated.*application=${appId}`));
  const rows = page.getByTestId('audit-table').locator('tbody tr');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('application.updated');

  // The event's page: the diff of what changed.
  await rows.first().locator('td:first-child a').click();
  await expect(page).toHaveURL(/\/audit\/events\/\d+$/);
  const diff = page.getByTestId('event-diff');
  const description = diff.locator('tr[data-changed="true"]', { hasText: 'description' });
  await expect(description).toContainText('before the change');
  await expect(description).toContainText('after the change');
  await page.goBack();
  await waitForHydration(page);

  // Export the view as CSV.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'CSV', exact: true }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^audit-\d+\.csv$/);
  const csv = readFileSync((await download.path())!, 'utf8').trim().split('\r\n');
  expect(csv[0]).toMatch(/^seq,created_at,event,category,/);
  expect(csv).toHaveLength(2);
  expect(csv[1]).toContain('application.updated');
  expect(csv[1]).toContain(appId);

  // Verify the whole chain.
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByTestId('verify-result')).toContainText(/Intact: \d+ events checked\./);
  expect(errors).toEqual([]);
});
