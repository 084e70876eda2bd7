//! The hosted pages end users see: sign in, sign up, forgot and reset password, accept an invitation,
//! signed out, continue, and a clear error page. Server-rendered plain forms (they work without
//! JavaScript) that carry the application they were started from and show its name.

use crate::api::hosted::{HostedAppInfo, hosted_app, link_app};
use crate::components::ui::{Alert, BUTTON, CARD, FormToken, INPUT, LABEL};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_query_map;

/// What a page says for an error code from its form endpoint. Only known codes are shown; nothing
/// from the request is reflected.
pub fn message(code: &str) -> &'static str {
    match code {
        "invalid" => "Incorrect email or password.",
        "throttled" => "Too many failed sign-in attempts. Try again in a few minutes.",
        "csrf" => "This form has expired. Please try again.",
        "password_mismatch" => "The two passwords do not match.",
        "password_too_short" => "Use at least 10 characters.",
        "password_too_long" => "Use at most 256 characters.",
        "password_too_common" => "This password is too common; choose another.",
        "invalid_email" => "Enter a valid email address.",
        "email_taken" => "An account with this email already exists. Sign in instead.",
        "invalid_name" => "Name may be at most 200 characters.",
        "invalid_link" => "This link is invalid, expired or already used. Ask for a new one.",
        "sign_up_disabled" => "This application does not allow signing up. Ask for an invitation.",
        "application_disabled" => "This application is not available right now.",
        "not_found" | "invalid_client" => {
            "This application does not exist. Check the link you followed."
        }
        "invalid_redirect_uri" => {
            "The application asked to send you to an address it has not registered, so we stopped here."
        }
        "request_expired" => {
            "This sign-in request has expired. Go back to the application and start again."
        }
        "invalid_request" => "The application sent an incomplete sign-in request.",
        "impersonating" => {
            "This browser is impersonating a user: account changes (password, email, sign-up, invitations) are refused."
        }
        "invalid_id_token_hint" | "client_mismatch" => {
            "The application sent a sign-out request we could not verify."
        }
        "invalid_post_logout_redirect_uri" => {
            "The application asked to send you to an address it has not registered after signing out."
        }
        _ => "Something went wrong on our side. Please try again.",
    }
}

fn notice(code: &str) -> Option<&'static str> {
    match code {
        "sent" => Some(
            "If an account exists for that email, we have sent a link to reset its password. It works for 30 minutes.",
        ),
        "signed_in" => Some("You are signed in."),
        "signed_up" => Some("Your account is ready."),
        "password_reset" => Some("Your password has been changed."),
        "invitation_accepted" => Some("Your password is set and your account is ready."),
        _ => None,
    }
}

fn param(name: &'static str) -> Memo<String> {
    let query = use_query_map();
    Memo::new(move |_| query.with(|q| q.get(name)).unwrap_or_default())
}

/// The frame of every hosted page: the application's name above a card.
#[component]
fn Frame(#[prop(into)] title: String, app_name: String, children: Children) -> impl IntoView {
    let error = param("error");
    let notice_code = param("notice");
    view! {
        <Title text=title.clone() />
        <main class="flex min-h-screen items-center justify-center px-4">
            <div class=format!("{CARD} w-full max-w-sm")>
                <p class="text-sm font-medium text-indigo-700 dark:text-indigo-300" data-testid="app-name">{app_name}</p>
                <h1 class="mb-6 mt-1 text-xl font-semibold">{title}</h1>
                <div class="mb-4 space-y-2">
                    {move || (!error.get().is_empty()).then(|| view! { <Alert message=message(&error.get()) /> })}
                    {move || notice(&notice_code.get()).map(|m| view! { <Alert message=m success=true /> })}
                </div>
                {children()}
            </div>
        </main>
    }
}

/// Loads the page's application by `client_id` and renders `f` with it, or the error page.
fn with_app<V: IntoView + 'static>(
    f: impl Fn(HostedAppInfo) -> V + Send + Sync + Clone + 'static,
) -> impl IntoView {
    let client_id = param("client_id");
    let app = Resource::new(move || client_id.get(), hosted_app);
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let f = f.clone();
                Suspend::new(async move {
                    match app.await {
                        Ok(app) => f(app).into_any(),
                        Err(e) => view! { <ErrorCard code=e.code /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn ErrorCard(code: String) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Something is wrong" />
        <main class="flex min-h-screen items-center justify-center px-4">
            <div class=format!("{CARD} w-full max-w-sm") role="alert" data-testid="hosted-error">
                <h1 class="mb-2 text-xl font-semibold">"We can't continue"</h1>
                <p class="text-sm">{message(&code)}</p>
            </div>
        </main>
    }
}

fn hidden_client(app: &HostedAppInfo) -> impl IntoView + use<> {
    view! { <input type="hidden" name="client_id" value=app.client_id.clone() /> }
}

fn link(page: &str, app: &HostedAppInfo) -> String {
    format!("/u/{page}?client_id={}", app.client_id)
}

/// The pending authorization request a sign-in or sign-up continues (`request` in the URL).
fn hidden_request(request: &str) -> impl IntoView + use<> {
    (!request.is_empty())
        .then(|| view! { <input type="hidden" name="request" value=request.to_owned() /> })
}

/// A link to another hosted page that keeps the pending authorization request.
fn link_keeping(page: &str, app: &HostedAppInfo, request: &str) -> String {
    let mut to = link(page, app);
    if !request.is_empty() {
        to.push_str("&request=");
        to.push_str(&crate::components::ui::encode(request));
    }
    to
}

fn password_fields(autocomplete: &'static str) -> impl IntoView {
    view! {
        <div>
            <label class=LABEL for="password">"Password"</label>
            <input class=INPUT id="password" name="password" type="password" autocomplete=autocomplete required minlength="10" />
            <p class="mt-1 text-xs text-slate-500">"At least 10 characters."</p>
        </div>
        <div>
            <label class=LABEL for="password_confirm">"Repeat password"</label>
            <input class=INPUT id="password_confirm" name="password_confirm" type="password" autocomplete=autocomplete required />
        </div>
    }
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let request = param("request");
    let login_hint = param("login_hint");
    with_app(move |app| {
        let request = request.get_untracked();
        let sign_up = link_keeping("sign-up", &app, &request);
        let forgot = link("forgot-password", &app);
        view! {
            <Frame title="Sign in" app_name=app.name.clone()>
                <form method="post" action="/u/auth/sign-in" class="space-y-4">
                    <FormToken />
                    {hidden_client(&app)}
                    {hidden_request(&request)}
                    <div>
                        <label class=LABEL for="email">"Email"</label>
                        <input class=INPUT id="email" name="email" type="email" autocomplete="username" required value=login_hint.get_untracked() />
                    </div>
                    <div>
                        <label class=LABEL for="password">"Password"</label>
                        <input class=INPUT id="password" name="password" type="password" autocomplete="current-password" required />
                    </div>
                    <button type="submit" class=format!("{BUTTON} w-full")>"Sign in"</button>
                </form>
                <div class="mt-4 flex justify-between text-sm">
                    <a class="underline" href=forgot>"Forgot password?"</a>
                    {app.allow_sign_up.then(|| view! { <a class="underline" href=sign_up>"Create an account"</a> })}
                </div>
            </Frame>
        }
    })
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let request = param("request");
    with_app(move |app| {
        if !app.allow_sign_up {
            return view! { <ErrorCard code="sign_up_disabled".to_owned() /> }.into_any();
        }
        let request = request.get_untracked();
        let sign_in = link_keeping("sign-in", &app, &request);
        view! {
            <Frame title="Create your account" app_name=app.name.clone()>
                <form method="post" action="/u/auth/sign-up" class="space-y-4">
                    <FormToken />
                    {hidden_client(&app)}
                    {hidden_request(&request)}
                    <div>
                        <label class=LABEL for="name">"Name"</label>
                        <input class=INPUT id="name" name="name" autocomplete="name" />
                    </div>
                    <div>
                        <label class=LABEL for="email">"Email"</label>
                        <input class=INPUT id="email" name="email" type="email" autocomplete="email" required />
                    </div>
                    {password_fields("new-password")}
                    <button type="submit" class=format!("{BUTTON} w-full")>"Create account"</button>
                </form>
                <p class="mt-4 text-sm"><a class="underline" href=sign_in>"Already have an account? Sign in"</a></p>
            </Frame>
        }
        .into_any()
    })
}

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    with_app(|app| {
        let sign_in = link("sign-in", &app);
        view! {
            <Frame title="Reset your password" app_name=app.name.clone()>
                <form method="post" action="/u/auth/forgot-password" class="space-y-4">
                    <FormToken />
                    {hidden_client(&app)}
                    <div>
                        <label class=LABEL for="email">"Email"</label>
                        <input class=INPUT id="email" name="email" type="email" autocomplete="email" required />
                    </div>
                    <button type="submit" class=format!("{BUTTON} w-full")>"Email me a link"</button>
                </form>
                <p class="mt-4 text-sm"><a class="underline" href=sign_in>"Back to sign in"</a></p>
            </Frame>
        }
    })
}

/// The pages reached from a one-time link: the link's application, or the error page.
fn with_link<V: IntoView + 'static>(
    f: impl Fn(HostedAppInfo, String) -> V + Send + Sync + Clone + 'static,
) -> impl IntoView {
    let token = param("token");
    let error = param("error");
    let app = Resource::new(move || token.get(), link_app);
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let f = f.clone();
                Suspend::new(async move {
                    match app.await {
                        Ok(Some(app)) => f(app, token.get_untracked()).into_any(),
                        // A used link after a failed attempt still shows that attempt's error.
                        Ok(None) if error.get_untracked().starts_with("password") => view! { <ErrorCard code=error.get_untracked() /> }.into_any(),
                        Ok(None) => view! { <ErrorCard code="invalid_link".to_owned() /> }.into_any(),
                        Err(e) => view! { <ErrorCard code=e.code /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    with_link(|app, token| {
        view! {
            <Frame title="Choose a new password" app_name=app.name.clone()>
                <form method="post" action="/u/auth/reset-password" class="space-y-4">
                    <FormToken />
                    <input type="hidden" name="token" value=token />
                    {password_fields("new-password")}
                    <button type="submit" class=format!("{BUTTON} w-full")>"Set new password"</button>
                </form>
            </Frame>
        }
    })
}

#[component]
pub fn AcceptInvitationPage() -> impl IntoView {
    with_link(|app, token| {
        view! {
            <Frame title="Set your password" app_name=app.name.clone()>
                <p class="mb-4 text-sm">{format!("You have been invited to {}. Choose a password to finish.", app.name)}</p>
                <form method="post" action="/u/auth/accept-invitation" class="space-y-4">
                    <FormToken />
                    <input type="hidden" name="token" value=token />
                    {password_fields("new-password")}
                    <button type="submit" class=format!("{BUTTON} w-full")>"Set password"</button>
                </form>
            </Frame>
        }
    })
}

/// Done: on to the application's return URL (a meta refresh, so it works without JavaScript and
/// needs no form-action exception), with a link in case the browser does not follow it.
#[component]
pub fn ContinuePage() -> impl IntoView {
    with_app(|app| {
        let sign_out = view! {
            <form method="post" action="/u/auth/sign-out" class="mt-4">
                <FormToken />
                {hidden_client(&app)}
                <button type="submit" class="text-sm underline">"Sign out"</button>
            </form>
        };
        match app.continue_url.clone() {
            Some(url) => view! {
                <Meta http_equiv="refresh" content=format!("0;url={url}") />
                <Frame title=format!("Continue to {}", app.name) app_name=app.name.clone()>
                    <a class=format!("{BUTTON} w-full") href=url>{format!("Continue to {}", app.name)}</a>
                    {sign_out}
                </Frame>
            }
            .into_any(),
            None => view! {
                <Frame title="You're all set" app_name=app.name.clone()>
                    <p class="text-sm">{format!("Return to {} to continue.", app.name)}</p>
                    {sign_out}
                </Frame>
            }
            .into_any(),
        }
    })
}

/// Asks before signing out (a GET never changes anything). An RP-initiated logout without an ID
/// token hint lands here with the application's post-logout URI and state, which the form carries
/// on (the server checks the URI against the application's list again).
#[component]
pub fn SignOutPage() -> impl IntoView {
    let next = param("post_logout_redirect_uri");
    let state = param("state");
    with_app(move |app| {
        view! {
            <Frame title=format!("Sign out of {}?", app.name) app_name=app.name.clone()>
                <form method="post" action="/u/auth/sign-out">
                    <FormToken />
                    {hidden_client(&app)}
                    <input type="hidden" name="post_logout_redirect_uri" value=move || next.get() />
                    <input type="hidden" name="state" value=move || state.get() />
                    <button type="submit" class=format!("{BUTTON} w-full")>"Sign out"</button>
                </form>
            </Frame>
        }
    })
}

#[component]
pub fn SignedOutPage() -> impl IntoView {
    with_app(|app| {
        let sign_in = link("sign-in", &app);
        view! {
            <Frame title="You have signed out" app_name=app.name.clone()>
                <a class=format!("{BUTTON} w-full") href=sign_in>"Sign in again"</a>
            </Frame>
        }
    })
}

#[component]
pub fn HostedErrorPage() -> impl IntoView {
    let error = param("error");
    view! { {move || view! { <ErrorCard code=error.get() /> }} }
}
