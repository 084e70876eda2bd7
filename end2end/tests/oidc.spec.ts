import { test, expect, Page } from '@playwright/test';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import { ensureStaff, portcullis, signIn, waitForHydration, watchConsole } from './support';

// A relying party we did not write — panva's openid-client — signs a user in through Portcullis:
// discovery, authorization code + PKCE (S256) with state and nonce through the hosted sign-in page,
// ID token validation (by the library, signature included), userinfo, refresh rotation, revocation
// and RP-initiated logout.

const SCOPE = 'openid email profile offline_access';
const PASSWORD = 'oidc relying party user 1';

/** The relying party's own pages, on a loopback port of its own, so the browser lands somewhere
 * real and the callback URL is what the library reads. */
let rp: Server;
let rpOrigin: string;

test.beforeAll(async () => {
  rp = createServer((req, res) => {
    const path = new URL(req.url || '/', 'http://rp.invalid').pathname;
    const title = path === '/callback' ? 'RP callback' : path === '/logged-out' ? 'RP signed out' : 'RP';
    res.writeHead(path === '/callback' || path === '/logged-out' ? 200 : 404, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
    });
    res.end(`<!doctype html><html><head><link rel="icon" href="data:,"><title>${title}</title></head><body><h1>${title}</h1></body></html>`);
  });
  await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
  rpOrigin = `http://127.0.0.1:${(rp.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  await new Promise<void>((resolve) => (rp ? rp.close(() => resolve()) : resolve()));
});

/** The header and payload of a compact JWS, without verifying it (the library verifies ID tokens). */
function decodeJwt(token: string): { header: Record<string, any>; payload: Record<string, any> } {
  const parts = token.split('.');
  expect(parts).toHaveLength(3);
  const part = (s: string) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: part(parts[0]), payload: part(parts[1]) };
}

/** A fresh authorization request: its own PKCE verifier, state and nonce. */
async function authorizationRequest(config: client.Configuration, redirectUri: string, extra: Record<string, string> = {}) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: expectedState,
    nonce: expectedNonce,
    ...extra,
  });
  return { url, checks: { pkceCodeVerifier, expectedState, expectedNonce } };
}

/** Every URL the page navigates to, redirects included (a 303 to /u/sign-in shows up here). */
function recordNavigations(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (r) => {
    try {
      if (r.isNavigationRequest() && r.frame() === page.mainFrame()) urls.push(r.url());
    } catch {
      // a service-worker request has no frame
    }
  });
  return urls;
}

async function landedOn(page: Page, path: string): Promise<URL> {
  await page.waitForURL((u) => u.origin === rpOrigin && u.pathname === path);
  return new URL(page.url());
}

/** The OAuth error of a token/revocation endpoint answer that the library turned into an exception. */
async function oauthError(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the request should have been refused').toBeInstanceOf(client.ResponseBodyError);
  return (err as client.ResponseBodyError).error;
}

test('openid-client signs in with code + PKCE, refreshes, revokes and logs out', async ({ page, request, baseURL }) => {
  const issuer = baseURL!.replace(/\/$/, '');
  const callback = `${rpOrigin}/callback`;
  const loggedOut = `${rpOrigin}/logged-out`;
  const tag = Date.now().toString(36);
  const email = `oidc-rp-${tag}@e2e.test`;

  // An operator key creates the SPA (public client) and a user with a password.
  const key = portcullis(['api-key', 'create', '--role', 'operator', '--name', `e2e oidc ${tag}`]).trim().split('\n').pop()!;
  const appName = `OIDC RP ${tag}`;
  const appRes = await request.post('/api/v1/applications', {
    headers: { authorization: `Bearer ${key}` },
    data: { name: appName, type: 'spa', redirect_uris: [callback], post_logout_redirect_uris: [loggedOut] },
  });
  expect(appRes.status(), await appRes.text()).toBe(201);
  const clientId = (await appRes.json()).client_id as string;
  const userRes = await request.post('/api/v1/users', {
    headers: { authorization: `Bearer ${key}` },
    data: { email, name: 'Olive Idsee', password: PASSWORD },
  });
  expect(userRes.status(), await userRes.text()).toBe(201);

  // Discovery: the library checks that the document's issuer is the one asked for.
  const config = await client.discovery(new URL(issuer), clientId, { token_endpoint_auth_method: 'none' }, client.None(), {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  });
  const meta = config.serverMetadata();
  expect(meta.issuer).toBe(issuer);
  expect(meta.authorization_endpoint).toBe(`${issuer}/oauth/authorize`);
  expect(meta.token_endpoint).toBe(`${issuer}/oauth/token`);
  expect(meta.userinfo_endpoint).toBe(`${issuer}/oauth/userinfo`);
  expect(meta.revocation_endpoint).toBe(`${issuer}/oauth/revoke`);
  expect(meta.end_session_endpoint).toBe(`${issuer}/oauth/logout`);
  expect(meta.jwks_uri).toBe(`${issuer}/.well-known/jwks.json`);
  expect(meta.response_types_supported).toEqual(['code']);
  expect(meta.supportsPKCE('S256')).toBe(true);
  expect(meta.authorization_response_iss_parameter_supported).toBe(true);
  expect(meta.id_token_signing_alg_values_supported).toContain('ES256');
  expect(meta.token_endpoint_auth_methods_supported).toContain('none');

  // First authorization: no session yet, so the hosted sign-in page asks for the password.
  const errors = watchConsole(page);
  const first = await authorizationRequest(config, callback);
  await page.goto(first.url.href);
  await expect(page).toHaveURL(/\/u\/sign-in\?/);
  const signInUrl = new URL(page.url());
  expect(signInUrl.origin).toBe(issuer);
  expect(signInUrl.searchParams.get('client_id')).toBe(clientId);
  expect(signInUrl.searchParams.get('request')).toBeTruthy();
  await expect(page.getByTestId('app-name')).toHaveText(appName);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const firstCallback = await landedOn(page, '/callback');
  expect(firstCallback.searchParams.get('state')).toBe(first.checks.expectedState);
  expect(firstCallback.searchParams.get('iss')).toBe(issuer);
  expect(firstCallback.searchParams.get('code')).toBeTruthy();
  expect(errors).toEqual([]);

  // The library checks state, iss (RFC 9207), PKCE at the token endpoint, and the ID token
  // (signature against jwks_uri, iss, aud, exp, iat, nonce).
  const tokens = await client.authorizationCodeGrant(config, firstCallback, first.checks);
  expect(tokens.token_type).toBe('bearer'); // lower-cased by the library; any case is accepted
  expect(tokens.id_token).toBeTruthy();
  expect(tokens.refresh_token).toBeTruthy();
  expect(tokens.expiresIn()).toBeGreaterThan(0);
  if (tokens.scope !== undefined) expect(tokens.scope.split(' ')).toEqual(expect.arrayContaining(SCOPE.split(' ')));
  const claims = tokens.claims()!;
  expect(claims.iss).toBe(issuer);
  expect(typeof claims.sub).toBe('string');
  expect([claims.aud].flat()).toEqual([clientId]);
  expect(claims.nonce).toBe(first.checks.expectedNonce);
  expect(claims.email).toBe(email);
  expect(decodeJwt(tokens.id_token!).header.alg).toBe('ES256');
  expect(decodeJwt(tokens.id_token!).header.kid).toBeTruthy();

  // The access token is a JWT access token (RFC 9068).
  const at = decodeJwt(tokens.access_token);
  expect(at.header.typ).toBe('at+jwt');
  expect(at.payload.iss).toBe(issuer);
  expect(at.payload.sub).toBe(claims.sub);
  expect(at.payload.client_id).toBe(clientId);

  // Userinfo: the library requires its sub to be the ID token's.
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  expect(userinfo.sub).toBe(claims.sub);
  expect(userinfo.email).toBe(email);

  // Refresh rotates the refresh token; the old one is refused afterwards.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
  expect(refreshed.access_token).toBeTruthy();
  expect(refreshed.access_token).not.toBe(tokens.access_token);
  expect(refreshed.refresh_token).toBeTruthy();
  expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
  if (refreshed.id_token) expect(refreshed.claims()!.sub).toBe(claims.sub);
  expect((await client.fetchUserInfo(config, refreshed.access_token, claims.sub)).sub).toBe(claims.sub);
  expect(await oauthError(client.refreshTokenGrant(config, tokens.refresh_token!))).toBe('invalid_grant');

  // Second authorization in the same browser: the sign-in session is shared, no password asked.
  // (Its own grant, so reuse detection on the first grant cannot mask the revocation below.)
  const navigations = recordNavigations(page);
  const second = await authorizationRequest(config, callback);
  await page.goto(second.url.href);
  const secondCallback = await landedOn(page, '/callback');
  expect(navigations.some((u) => new URL(u).pathname === '/u/sign-in')).toBe(false);
  const tokens2 = await client.authorizationCodeGrant(config, secondCallback, second.checks);
  const claims2 = tokens2.claims()!;
  expect(claims2.sub).toBe(claims.sub);
  expect(claims2.nonce).toBe(second.checks.expectedNonce);
  if (claims.auth_time !== undefined) expect(claims2.auth_time).toBe(claims.auth_time);

  // Revocation: rotate once, revoke the newest refresh token, and it no longer refreshes.
  const rotated = await client.refreshTokenGrant(config, tokens2.refresh_token!);
  expect(rotated.refresh_token).toBeTruthy();
  expect(rotated.refresh_token).not.toBe(tokens2.refresh_token);
  await client.tokenRevocation(config, rotated.refresh_token!, { token_type_hint: 'refresh_token' });
  expect(await oauthError(client.refreshTokenGrant(config, rotated.refresh_token!))).toBe('invalid_grant');

  // An authorization code works once (replayed last: a provider may revoke its grant on replay).
  expect(await oauthError(client.authorizationCodeGrant(config, secondCallback, second.checks))).toBe('invalid_grant');

  // RP-initiated logout: back on the post-logout redirect URI with our state.
  const logoutState = client.randomState();
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: tokens2.id_token!,
    post_logout_redirect_uri: loggedOut,
    state: logoutState,
  });
  expect(endSession.origin + endSession.pathname).toBe(`${issuer}/oauth/logout`);
  expect(endSession.searchParams.get('client_id')).toBe(clientId);
  await page.goto(endSession.href);
  const afterLogout = await landedOn(page, '/logged-out');
  expect(afterLogout.origin + afterLogout.pathname).toBe(loggedOut);
  expect(afterLogout.searchParams.get('state')).toBe(logoutState);
  await expect(page.getByRole('heading', { name: 'RP signed out' })).toBeVisible();

  // The session is gone: prompt=none comes back with login_required (state and iss included,
  // which the library checks before it reports the error).
  const silent = await authorizationRequest(config, callback, { prompt: 'none' });
  await page.goto(silent.url.href);
  const silentCallback = await landedOn(page, '/callback');
  expect(silentCallback.searchParams.get('error')).toBe('login_required');
  expect(silentCallback.searchParams.get('state')).toBe(silent.checks.expectedState);
  expect(silentCallback.searchParams.get('code')).toBeNull();
  const silentErr = await client.authorizationCodeGrant(config, silentCallback, silent.checks).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(silentErr).toBeInstanceOf(client.AuthorizationResponseError);
  expect((silentErr as client.AuthorizationResponseError).error).toBe('login_required');
  expect(errors).toEqual([]);
});

test('an owner rotates the signing keys from Settings and the JWKS follows', async ({ page, request }) => {
  const email = 'keys-owner@e2e.test';
  const password = 'rotate the keys please';
  ensureStaff(email, 'owner', password);
  const errors = watchConsole(page);
  const before = (await (await request.get('/.well-known/jwks.json')).json()).keys.map((k: any) => k.kid);
  await signIn(page, email, password);
  await page.goto('/settings');
  await waitForHydration(page);
  const table = page.getByTestId('signing-keys');
  await expect(table.locator('tr[data-status="current"]')).toHaveCount(2); // ES256 and RS256
  const nextKids = await table.locator('tr[data-status="next"] td:first-child').allTextContents();
  await page.getByRole('button', { name: 'Rotate keys' }).click();
  await expect(page.getByText('Keys rotated.')).toBeVisible();
  await expect(table.locator('tr[data-status="previous"]')).toHaveCount(2);
  const current = await table.locator('tr[data-status="current"] td:first-child').allTextContents();
  expect(current.sort()).toEqual(nextKids.sort());
  const after = (await (await request.get('/.well-known/jwks.json')).json()).keys.map((k: any) => k.kid);
  for (const kid of before) expect(after).toContain(kid); // the old current keys still verify
  expect(after.length).toBe(before.length + 2);
  expect(errors).toEqual([]);
});
