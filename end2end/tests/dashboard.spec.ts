import { test, expect } from '@playwright/test';
import { portcullis, signIn, waitForHydration, watchConsole } from './support';

const OWNER = 'owner@e2e.test';
const OWNER_PASSWORD = 'owner password 1234';

test.beforeAll(() => {
  // Bootstrap the first owner with the CLI, password from the environment (never argv). A worker
  // restarted after a failure finds the owner already there.
  try {
    const out = portcullis(['staff', 'create', '--email', OWNER, '--role', 'owner', '--password-env', 'E2E_OWNER_PASSWORD'], {
      E2E_OWNER_PASSWORD: OWNER_PASSWORD,
    });
    expect(out).toContain(`Created ${OWNER} (owner)`);
  } catch (e) {
    expect(String((e as any).stderr)).toContain('already exists');
  }
});

test('owner signs in, uses the hydrated dashboard, invites an auditor, signs out', async ({ page, browser }) => {
  const errors = watchConsole(page);
  await signIn(page, OWNER, OWNER_PASSWORD);

  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await expect(page.getByText(`Signed in as ${OWNER}`)).toBeVisible();
  await waitForHydration(page);

  // Client-side interactions: the staff menu opens, and navigation happens without a page load.
  const menuButton = page.locator('#staff-menu-button');
  await expect(menuButton).toHaveAttribute('aria-expanded', 'false');
  await menuButton.click();
  await expect(menuButton).toHaveAttribute('aria-expanded', 'true');
  await expect(page.getByRole('menuitem', { name: 'Sign out' })).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(page.getByRole('menuitem', { name: 'Sign out' })).toBeHidden();

  await page.evaluate(() => ((window as any).__noReload = true));
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Staff' }).click();
  await expect(page).toHaveURL(/\/staff$/);
  await expect(page.getByRole('heading', { name: 'Staff', exact: true })).toBeVisible();
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);

  // A bad email gets a message next to the field; nothing is created.
  await page.getByLabel('Email').fill('not an email');
  await page.getByLabel('Email').evaluate((el: HTMLInputElement) => (el.type = 'text'));
  await page.getByRole('button', { name: 'Send invitation' }).click();
  await expect(page.locator('#invite-email-error')).toHaveText('Enter a valid email address.');

  // Invite an auditor.
  await page.getByLabel('Email').fill('auditor@e2e.test');
  await page.getByLabel('Role', { exact: true }).selectOption('auditor');
  await page.getByRole('button', { name: 'Send invitation' }).click();
  await expect(page.getByTestId('invite-result')).toContainText('Invitation created for auditor@e2e.test (auditor)');
  const link = await page.getByTestId('invite-link').inputValue();
  expect(link).toContain('/accept-invite?token=');
  const row = page.locator('tr[data-email="auditor@e2e.test"]');
  await expect(row.getByTestId('role')).toHaveText('auditor');
  await expect(row.getByTestId('status')).toHaveText('invited');

  // Sign out from the staff menu.
  await page.locator('#staff-menu-button').click();
  await page.getByRole('menuitem', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login\?notice=signed_out$/);
  await expect(page.getByText('You have signed out.')).toBeVisible();
  await page.goto('/staff');
  await expect(page).toHaveURL(/\/login$/);
  expect(errors).toEqual([]);

  // The auditor accepts the invitation in their own browser and gets a read-only view.
  const context = await browser.newContext();
  const auditor = await context.newPage();
  await auditor.goto(link);
  await auditor.getByLabel('New password').fill('auditor password 1');
  await auditor.getByLabel('Repeat password').fill('auditor password 1');
  await auditor.getByRole('button', { name: 'Set password' }).click();
  await expect(auditor).toHaveURL(/notice=invitation_accepted/);
  await signIn(auditor, 'auditor@e2e.test', 'auditor password 1');
  await expect(auditor.getByText('Signed in as auditor@e2e.test · Auditor (security reviewer)')).toBeVisible();
  await auditor.goto('/staff');
  await expect(auditor.getByTestId('staff-table')).toBeVisible();
  await expect(auditor.getByRole('button', { name: 'Send invitation' })).toHaveCount(0);
  await auditor.goto('/audit');
  await expect(auditor.getByTestId('audit-table')).toContainText('staff.invitation_accepted');
  await expect(auditor.getByTestId('audit-table')).toContainText('staff.invited');
  await context.close();
});

test('a wrong password and an unknown email show the same generic message', async ({ page }) => {
  await signIn(page, OWNER, 'not the password');
  await expect(page).toHaveURL(/error=invalid/);
  const wrong = await page.getByTestId('alert').textContent();
  await signIn(page, 'nobody@e2e.test', 'not the password');
  const unknown = await page.getByTestId('alert').textContent();
  expect(wrong).toBe('Incorrect email or password.');
  expect(unknown).toBe(wrong);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the sign-in form still works', async ({ page }) => {
    await signIn(page, OWNER, OWNER_PASSWORD);
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByText(`Signed in as ${OWNER}`)).toBeVisible();
  });
});
