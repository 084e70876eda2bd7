import { test, expect, Browser, Page } from '@playwright/test';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import { ensureStaff, portcullis, signIn, waitForHydration, watchConsole } from './support';

// Audited impersonation through the dashboard, three people in three browsers: an operator turns
// impersonation on (with approval) for a web application, the owner assigns a support member, the
// support member asks with a reason, the owner approves, and the support member lands in a real
// relying party (openid-client, server side, confidential client) through its initiate-login URI —
// signed in as the user, with `act` naming the support member. Then they end it and the audit log
// shows the chain.

const PASSWORD = 'impersonation e2e staff 1';

/** The relying party: /login starts an authorization request (OpenID Connect third-party initiated
 * login), /callback redeems the code and shows the ID token's claims. */
let rp: Server;
let rpOrigin: string;
let rpConfig: client.Configuration | undefined;
let pending: { pkceCodeVerifier: string; expectedState: string; expectedNonce: string } | undefined;

test.beforeAll(async () => {
  rp = createServer(async (req, res) => {
    const url = new URL(req.url || '/', rpOrigin);
    const html = (status: number, body: string, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...extra });
      res.end(`<!doctype html><html><head><link rel="icon" href="data:,"><title>RP</title></head><body>${body}</body></html>`);
    };
    try {
      if (url.pathname === '/login' && rpConfig) {
        expect(url.searchParams.get('iss')).toBe(rpConfig.serverMetadata().issuer);
        pending = {
          pkceCodeVerifier: client.randomPKCECodeVerifier(),
          expectedState: client.randomState(),
          expectedNonce: client.randomNonce(),
        };
        const to = client.buildAuthorizationUrl(rpConfig, {
          redirect_uri: `${rpOrigin}/callback`,
          scope: 'openid email profile',
          code_challenge: await client.calculatePKCECodeChallenge(pending.pkceCodeVerifier),
          code_challenge_method: 'S256',
          state: pending.expectedState,
          nonce: pending.expectedNonce,
          login_hint: url.searchParams.get('login_hint') || '',
        });
        res.writeHead(302, { location: to.href });
        res.end();
      } else if (url.pathname === '/callback' && rpConfig && pending) {
        const tokens = await client.authorizationCodeGrant(rpConfig, url, pending);
        const claims = tokens.claims()!;
        html(200, `<h1>Signed in as ${claims.email}</h1><pre data-testid="claims">${JSON.stringify(claims)}</pre>`);
      } else {
        html(404, '<h1>Not found</h1>');
      }
    } catch (e) {
      html(500, `<h1>RP error</h1><pre data-testid="rp-error">${String(e)}</pre>`);
    }
  });
  await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
  rpOrigin = `http://127.0.0.1:${(rp.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  await new Promise<void>((resolve) => (rp ? rp.close(() => resolve()) : resolve()));
});

async function staffPage(browser: Browser, email: string, role: string): Promise<{ page: Page; errors: string[] }> {
  ensureStaff(email, role, PASSWORD);
  const page = await (await browser.newContext()).newPage();
  const errors = watchConsole(page);
  await signIn(page, email, PASSWORD);
  await expect(page).toHaveURL(/\/$/);
  return { page, errors };
}

test('support impersonates a user in one application with approval, and the audit log shows it', async ({ browser, request, baseURL }) => {
  const issuer = baseURL!.replace(/\/$/, '');
  const tag = Date.now().toString(36);
  const userEmail = `imp-user-${tag}@e2e.test`;
  const supportEmail = `imp-support-${tag}@e2e.test`;

  // A web application with an initiate-login URI and a secret, and a user — by API.
  const key = portcullis(['api-key', 'create', '--role', 'operator', '--name', `e2e imp ${tag}`]).trim().split('\n').pop()!;
  const auth = { authorization: `Bearer ${key}` };
  const appName = `Support Web ${tag}`;
  const appRes = await request.post('/api/v1/applications', {
    headers: auth,
    data: { name: appName, type: 'web', redirect_uris: [`${rpOrigin}/callback`], initiate_login_uri: `${rpOrigin}/login` },
  });
  expect(appRes.status(), await appRes.text()).toBe(201);
  const app = await appRes.json();
  const secretRes = await request.post(`/api/v1/applications/${app.id}/secrets`, { headers: auth, data: {} });
  expect(secretRes.status()).toBe(201);
  const secret = (await secretRes.json()).secret as string;
  const userRes = await request.post('/api/v1/users', {
    headers: auth,
    data: { email: userEmail, name: 'Ivy Personated', password: 'the user never tells support this' },
  });
  expect(userRes.status()).toBe(201);
  const userId = (await userRes.json()).id as string;
  rpConfig = await client.discovery(new URL(issuer), app.client_id, secret, undefined, {
    execute: [client.allowInsecureRequests],
  });

  // The operator turns impersonation on with approval.
  const operator = await staffPage(browser, `imp-operator-${tag}@e2e.test`, 'operator');
  await operator.page.goto(`/applications/${app.id}?tab=impersonation`);
  await waitForHydration(operator.page);
  await operator.page.getByLabel('Enabled').check();
  await operator.page.getByLabel('Approval required').check();
  await operator.page.getByLabel('Mode (carried in the tokens)').selectOption('read_only');
  await operator.page.getByRole('button', { name: 'Save impersonation policy' }).click();
  await expect(operator.page.getByText('Impersonation policy saved.')).toBeVisible();

  // The owner assigns the support member (owners assign).
  const support = await staffPage(browser, supportEmail, 'support');
  const owner = await staffPage(browser, `imp-owner-${tag}@e2e.test`, 'owner');
  await owner.page.goto(`/applications/${app.id}?tab=impersonation`);
  await waitForHydration(owner.page);
  await owner.page.getByLabel('Staff member').selectOption({ label: `${supportEmail} · Support` });
  await owner.page.getByRole('button', { name: 'Assign' }).click();
  await expect(owner.page.getByTestId('imp-assigned')).toContainText(supportEmail);

  // Support asks, with a reason and a ticket; the request waits and the banner says so.
  await support.page.goto('/impersonation');
  await waitForHydration(support.page);
  await support.page.getByLabel('User (email)').fill(userEmail);
  await support.page.getByLabel('Application', { exact: true }).selectOption({ label: `${appName} (up to 60 min, needs approval)` });
  await support.page.getByLabel('Duration (minutes)').fill('20');
  await support.page.getByLabel('Reason (at least 15 characters)').fill('Invoice page shows the wrong total');
  await support.page.getByLabel('Ticket (optional)').fill(`SUP-${tag}`);
  await support.page.getByRole('button', { name: 'Request impersonation' }).click();
  await expect(support.page.getByTestId('my-impersonation')).toHaveAttribute('data-status', 'pending');
  await support.page.reload();
  await expect(support.page.getByTestId('impersonation-banner')).toContainText('waiting for approval');

  // The owner approves it.
  await owner.page.goto('/impersonation');
  await waitForHydration(owner.page);
  const ask = owner.page.getByTestId('pending-impersonations').locator(`li[data-staff="${supportEmail}"]`);
  await expect(ask).toContainText('Invoice page shows the wrong total');
  await ask.getByLabel('Comment (optional)').fill('Go ahead');
  await ask.getByRole('button', { name: 'Approve' }).click();
  await expect(owner.page.getByText('Decision recorded.')).toBeVisible();

  // Support starts it and opens the application: the relying party signs them in as the user.
  await support.page.reload();
  await waitForHydration(support.page);
  await expect(support.page.getByTestId('my-impersonation')).toHaveAttribute('data-status', 'approved');
  await support.page.getByTestId('start-impersonation').click();
  await expect(support.page).toHaveURL(/\/impersonation\?started=/);
  await expect(support.page.getByTestId('my-impersonation')).toHaveAttribute('data-status', 'active');
  await expect(support.page.getByTestId('countdown').first()).toHaveText(/^(19|20):\d\d$/);
  await expect(support.page.getByTestId('impersonation-banner')).toContainText(`You are impersonating ${userEmail}`);
  await support.page.getByTestId('open-application').click();
  await support.page.waitForURL((u) => u.origin === rpOrigin && u.pathname === '/callback');
  await expect(support.page.getByTestId('rp-error')).toHaveCount(0);
  const claims = JSON.parse((await support.page.getByTestId('claims').textContent())!);
  expect(claims.sub).toBe(userId);
  expect(claims.email).toBe(userEmail);
  expect(claims.aud).toBe(app.client_id);
  expect(claims.act.email).toBe(supportEmail);
  expect(claims.impersonation.mode).toBe('read_only');
  expect(claims.impersonation.ends_at).toBeGreaterThan(Date.now() / 1000);
  const impersonationId = claims.impersonation.id as string;

  // The support member ends it; the banner goes away.
  await support.page.goto('/impersonation');
  await waitForHydration(support.page);
  await support.page.getByRole('button', { name: 'End impersonation' }).click();
  await expect(support.page.getByText('Impersonation ended.')).toBeVisible();
  await support.page.reload();
  await expect(support.page.getByTestId('impersonation-banner')).toHaveCount(0);

  // The owner follows the audit trail from the history: the whole chain, in order.
  await owner.page.goto('/impersonation?status=ended');
  await waitForHydration(owner.page);
  await owner.page.locator(`a[href="/audit?target=impersonation:${impersonationId}"]`).click();
  await expect(owner.page.getByTestId('audit-filter')).toContainText(`impersonation:${impersonationId}`);
  const events = await owner.page.getByTestId('audit-table').locator('tbody tr td:nth-child(3)').allTextContents();
  expect(events.reverse()).toEqual([
    'impersonation.requested',
    'impersonation.approved',
    'impersonation.started',
    'impersonation.token_issued',
    'impersonation.ended',
  ]);
  for (const p of [operator, support, owner]) expect(p.errors).toEqual([]);
});
