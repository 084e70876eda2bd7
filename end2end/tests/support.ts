import { expect, Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

export const bin = process.env.PORTCULLIS_BIN || resolve(__dirname, '../../target/release/portcullis');

/** Runs the real CLI against the test server's database, as an operator would. */
export function portcullis(args: string[], env: Record<string, string> = {}): string {
  return execFileSync(bin, args, {
    env: { ...process.env, PORTCULLIS_DATA_DIR: process.env.E2E_DATA_DIR!, ...env },
    encoding: 'utf8',
  });
}

/** Collects console errors (a CSP violation, a failed asset, a panic in the WASM). A 422 is a
 * validation answer the test provokes on purpose, which Chromium also logs. */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().includes('status of 422')) errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(String(err)));
  return errors;
}

export async function waitForHydration(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

export async function signIn(page: Page, email: string, password: string) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Creates a staff member with the CLI unless they already exist (a restarted worker). */
export function ensureStaff(email: string, role: string, password: string) {
  try {
    const out = portcullis(['staff', 'create', '--email', email, '--role', role, '--password-env', 'E2E_STAFF_PASSWORD'], {
      E2E_STAFF_PASSWORD: password,
    });
    expect(out).toContain(`Created ${email} (${role})`);
  } catch (e) {
    expect(String((e as any).stderr)).toContain('already exists');
  }
}
