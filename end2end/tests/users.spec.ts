import { test, expect, Page, Browser } from '@playwright/test';
import { ensureStaff, portcullis, signIn, waitForHydration, watchConsole } from './support';

const OWNER = 'pool-owner@e2e.test';
const OPERATOR = 'pool-operator@e2e.test';
const PASSWORD = 'pool staff password 1';
const SPA_RETURN = 'https://spa.e2e.test/welcome';
const NATIVE_RETURN = 'http://127.0.0.1:9/native-welcome';

/** Creates an application with a return URL through the management API; returns its client ID. */
async function createApp(request: any, key: string, name: string, type: string, returnUrl: string) {
  const res = await request.post('/api/v1/applications', {
    headers: { authorization: `Bearer ${key}` },
    data: { name, type, return_url: returnUrl },
  });
  expect(res.status()).toBe(201);
  return (await res.json()).client_id as string;
}

/** The newest link of `kind` (a path such as /u/reset-password) in the outbox for `to`, read by the
 * owner in Settings → Outbox (reloading until it arrives: some mail is queued after the answer). */
async function linkFromOutbox(browser: Browser, to: string, kind: string): Promise<string> {
  const context = await browser.newContext();
  const owner = await context.newPage();
  await signIn(owner, OWNER, PASSWORD);
  let link = '';
  await expect
    .poll(async () => {
      await owner.goto('/settings');
      const body = (await owner.getByTestId('outbox').locator(`li[data-to="${to}"]`).first().locator('pre').textContent()) || '';
      link = body.match(/https?:\/\/\S+token=\S+/)?.[0] || '';
      return link.includes(kind);
    })
    .toBe(true);
  await context.close();
  return new URL(link).pathname + new URL(link).search;
}

/** Serves the applications' return URLs, so landing there is observable. */
async function fakeApps(page: Page) {
  await page.route('https://spa.e2e.test/**', (r) => r.fulfill({ contentType: 'text/html', body: '<h1>Storefront SPA home</h1>' }));
  await page.route('http://127.0.0.1:9/**', (r) => r.fulfill({ contentType: 'text/html', body: '<h1>Native app home</h1>' }));
}

test.beforeAll(() => {
  ensureStaff(OWNER, 'owner', PASSWORD);
  ensureStaff(OPERATOR, 'operator', PASSWORD);
});

test('an invited user sets a password and lands in the SPA; a reset from the native app returns there', async ({ page, browser, request }) => {
  const key = portcullis(['api-key', 'create', '--role', 'operator', '--name', 'e2e pool']).trim().split('\n').pop()!;
  const spa = await createApp(request, key, 'Pool SPA', 'spa', SPA_RETURN);
  const native = await createApp(request, key, 'Pool Phone', 'native', NATIVE_RETURN);
  const errors = watchConsole(page);

  // The operator invites a user to the SPA.
  await signIn(page, OPERATOR, PASSWORD);
  await page.goto('/users');
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Create user' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create user' });
  await dialog.getByLabel('Email', { exact: true }).fill('nadia@e2e.test');
  await dialog.getByLabel('Name', { exact: true }).fill('Nadia');
  await dialog.getByLabel('Invitation returns to').selectOption({ label: 'Pool SPA' });
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByTestId('user-created')).toContainText('Invited nadia@e2e.test');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await page.reload();
  await expect(page.locator('tr[data-email="nadia@e2e.test"]').getByTestId('status')).toHaveText('invited');
  expect(errors).toEqual([]);

  // The user opens the link from the outbox, sets a password and lands on the SPA's return URL.
  const invitation = await linkFromOutbox(browser, 'nadia@e2e.test', '/u/accept-invitation');
  const userContext = await browser.newContext();
  const user = await userContext.newPage();
  await fakeApps(user);
  await user.goto(invitation);
  await expect(user.getByTestId('app-name')).toHaveText('Pool SPA');
  await user.getByLabel('Password', { exact: true }).fill('nadias first password');
  await user.getByLabel('Repeat password').fill('nadias first password');
  await user.getByRole('button', { name: 'Set password' }).click();
  await expect(user).toHaveURL(SPA_RETURN);
  await expect(user.getByRole('heading', { name: 'Storefront SPA home' })).toBeVisible();

  // She signs out, then forgets her password on the native app's sign-in page.
  await user.goto(`/u/sign-out?client_id=${spa}`);
  await user.getByRole('button', { name: 'Sign out' }).click();
  await expect(user.getByRole('heading', { name: 'You have signed out' })).toBeVisible();
  await user.goto(`/u/sign-in?client_id=${native}`);
  await expect(user.getByTestId('app-name')).toHaveText('Pool Phone');
  await user.getByRole('link', { name: 'Forgot password?' }).click();
  await user.getByLabel('Email').fill('nadia@e2e.test');
  await user.getByRole('button', { name: 'Email me a link' }).click();
  await expect(user.getByTestId('alert')).toContainText('If an account exists for that email');
  const reset = await linkFromOutbox(browser, 'nadia@e2e.test', '/u/reset-password');
  expect(reset).toContain('/u/reset-password?token=');
  await user.goto(reset);
  await expect(user.getByTestId('app-name')).toHaveText('Pool Phone');
  await user.getByLabel('Password', { exact: true }).fill('nadias second password');
  await user.getByLabel('Repeat password').fill('nadias second password');
  await user.getByRole('button', { name: 'Set new password' }).click();
  await expect(user).toHaveURL(NATIVE_RETURN);
  await expect(user.getByRole('heading', { name: 'Native app home' })).toBeVisible();

  // The link worked once.
  await user.goto(reset);
  await expect(user.getByTestId('hosted-error')).toContainText('already used');
  await userContext.close();

  // The operator sees the story on her page.
  await page.goto('/users?q=nadia');
  await page.getByRole('link', { name: 'nadia@e2e.test' }).click();
  await expect(page.getByTestId('user-events')).toContainText('user.password_reset');
  await expect(page.getByTestId('user-events')).toContainText('user.invitation_accepted');
});
