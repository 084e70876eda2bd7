import { test, expect } from '@playwright/test';
import { ensureStaff, signIn, waitForHydration, watchConsole } from './support';

const OPERATOR = 'operator@e2e.test';
const PASSWORD = 'operator password 1234';

test.beforeAll(() => ensureStaff(OPERATOR, 'operator', PASSWORD));

test('an operator creates a SPA, fixes its redirects, tunes its policy, mints a key and disables it', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const errors = watchConsole(page);
  await signIn(page, OPERATOR, PASSWORD);
  await expect(page).toHaveURL(/\/$/);
  await page.goto('/applications');
  await waitForHydration(page);
  await expect(page.getByTestId('applications-table')).toContainText('Default application');

  // Filters live in the URL; a search that matches nothing says so.
  await page.getByLabel('Search').fill('no such application');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/q=no\+such\+application|q=no%20such%20application/);
  await expect(page.getByTestId('empty')).toContainText('No applications match these filters.');

  // Create a single-page app in the dialog; the type comes with its explanation.
  await page.getByRole('button', { name: 'Create application' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create application' });
  await dialog.getByLabel('Name').fill('Storefront SPA');
  await expect(dialog.getByText('Runs in the browser; a public client that cannot keep a secret.')).toBeVisible();
  await dialog.getByLabel(/Single-page app/).check();
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(page).toHaveURL(/\/applications\/[0-9a-f-]{36}$/);
  await expect(page.getByRole('heading', { name: 'Storefront SPA' })).toBeVisible();
  await expect(page.getByTestId('client-id')).toHaveText(/^spa_[A-Za-z0-9_-]{22}$/);
  const appUrl = page.url();

  // A bad redirect URI gets the rule next to the field; a good one is saved.
  await page.getByRole('tab', { name: 'Redirects' }).click();
  const redirects = page.getByLabel('Sign-in redirect URIs');
  await redirects.fill('http://shop.e2e.test/callback');
  await page.getByRole('button', { name: 'Save redirects' }).click();
  await expect(page.locator('#redirect_uris-error')).toContainText('Use https');
  await redirects.fill('https://shop.e2e.test/callback');
  await page.getByRole('button', { name: 'Save redirects' }).click();
  await expect(page.getByTestId('toast')).toHaveText('Redirects saved.');
  await page.reload();
  await expect(page.getByLabel('Sign-in redirect URIs')).toHaveValue('https://shop.e2e.test/callback');
  await expect(page.getByLabel('Default redirect URI')).toHaveValue('https://shop.e2e.test/callback');
  await waitForHydration(page);

  // The access-token lifetime: out of bounds is refused at the field, then 10 minutes is saved.
  await page.getByRole('tab', { name: 'Session policy' }).click();
  const access = page.getByLabel('Access token lifetime');
  const accessRow = page.locator('tr[data-key="access_token_ttl_secs"]');
  await expect(accessRow.getByTestId('source')).toHaveText('built-in default');
  await access.fill('10');
  await page.getByRole('button', { name: 'Save session policy' }).click();
  await expect(page.locator('#policy-access_token_ttl_secs-error')).toContainText('between 1 minute and 24 hours');
  await access.fill('600');
  await page.getByRole('button', { name: 'Save session policy' }).click();
  await expect(page.getByTestId('toast')).toHaveText('Session policy saved.');
  await expect(accessRow.getByTestId('effective')).toHaveText('10 min');
  await expect(accessRow.getByTestId('source')).toHaveText('this application');
  await expect(page.locator('tr[data-key="refresh_rotation"]').getByTestId('source')).toHaveText('fixed by type');

  // An API key: shown once, copied, gone after a reload.
  await page.getByRole('tab', { name: 'Credentials' }).click();
  await expect(page.getByText('Public clients (single-page and native apps) cannot keep a secret')).toBeVisible();
  await page.getByLabel('Key name').fill('storefront backend');
  await page.getByLabel(/users:read/).check();
  await page.getByRole('button', { name: 'Create API key' }).click();
  const reveal = page.getByRole('dialog', { name: 'Copy it now' });
  const key = await reveal.getByTestId('revealed-value').inputValue();
  expect(key).toMatch(/^pcapp_[A-Za-z0-9_-]{43}$/);
  await reveal.getByRole('button', { name: 'Copy the API key' }).click();
  await expect(reveal.getByRole('button', { name: 'Copy the API key' })).toHaveText('Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
  await reveal.getByRole('button', { name: 'Done' }).click();
  await expect(reveal).toBeHidden();
  await expect(page.locator('tr[data-name="storefront backend"]')).toContainText('users:read');
  await page.reload();
  await expect(page.locator('tr[data-name="storefront backend"]')).toContainText(key.slice(0, 12));
  expect(await page.content()).not.toContain(key);
  await waitForHydration(page);

  // Disable it from the danger zone.
  await page.getByRole('tab', { name: 'Danger zone' }).click();
  await page.getByRole('button', { name: 'Disable application' }).click();
  await expect(page.getByTestId('toast')).toHaveText('Status changed.');
  await expect(page.locator('header').getByTestId('status')).toHaveText('disabled');
  await page.goto('/applications?status=disabled');
  await expect(page.locator('tr[data-name="Storefront SPA"]').getByTestId('status')).toHaveText('disabled');
  expect(page.url()).not.toBe(appUrl);
  expect(errors).toEqual([]);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the list and an application page render on the server', async ({ page }) => {
    await signIn(page, OPERATOR, PASSWORD);
    await page.goto('/applications?sort=name');
    await expect(page.getByTestId('applications-table')).toContainText('Default application');
    await page.getByRole('link', { name: 'Default application' }).click();
    await expect(page.getByTestId('client-id')).toHaveText(/^web_/);
    await page.getByRole('tab', { name: 'Session policy' }).click();
    await expect(page.locator('tr[data-key="access_token_ttl_secs"]').getByTestId('effective')).toHaveText('1 h');
  });
});
