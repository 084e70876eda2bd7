//! Staff sign-in. A plain HTML form POSTed to `/auth/login`, so it works without JavaScript; the page
//! hydrates when the WASM loads. Every failure shows the same generic message.

use crate::components::ui::{Alert, BUTTON, CARD, FormToken, INPUT, LABEL};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

pub fn error_message(code: &str) -> &'static str {
    match code {
        "throttled" => "Too many failed sign-in attempts. Try again in a few minutes.",
        "csrf" => "This form has expired. Please try again.",
        "session_expired" => "Your session has ended. Please sign in again.",
        _ => "Incorrect email or password.",
    }
}

pub fn notice_message(code: &str) -> Option<&'static str> {
    match code {
        "signed_out" => Some("You have signed out."),
        "invitation_accepted" => Some("Your password is set. Sign in to continue."),
        _ => None,
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || query.read().get("error").map(|c| error_message(&c));
    let notice = move || query.read().get("notice").and_then(|c| notice_message(&c));
    view! {
        <Title text="Sign in" />
        <main class="flex min-h-screen items-center justify-center px-4">
            <div class=format!("{CARD} w-full max-w-sm")>
                <h1 class="mb-1 text-xl font-semibold">"Sign in to Portcullis"</h1>
                <p class="mb-6 text-sm text-slate-600 dark:text-slate-400">"Staff dashboard"</p>
                <div class="mb-4 space-y-2">
                    {move || error().map(|m| view! { <Alert message=m /> })}
                    {move || notice().map(|m| view! { <Alert message=m success=true /> })}
                </div>
                <form method="post" action="/auth/login" class="space-y-4">
                    <FormToken />
                    <div>
                        <label class=LABEL for="email">"Email"</label>
                        <input class=INPUT id="email" name="email" type="email" autocomplete="username" required />
                    </div>
                    <div>
                        <label class=LABEL for="password">"Password"</label>
                        <input class=INPUT id="password" name="password" type="password" autocomplete="current-password" required />
                    </div>
                    <button type="submit" class=format!("{BUTTON} w-full")>"Sign in"</button>
                </form>
            </div>
        </main>
    }
}
