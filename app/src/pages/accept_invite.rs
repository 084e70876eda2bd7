//! An invited staff member chooses a password. A plain form POST to `/auth/accept-invite`.

use crate::components::ui::{Alert, BUTTON, CARD, FormToken, INPUT, LABEL};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AcceptInvitePage() -> impl IntoView {
    let query = use_query_map();
    let invite_token = move || query.read().get("token").unwrap_or_default();
    let error = move || query.read().get("error");
    view! {
        <Title text="Accept invitation" />
        <main class="flex min-h-screen items-center justify-center px-4">
            <div class=format!("{CARD} w-full max-w-sm")>
                <h1 class="mb-1 text-xl font-semibold">"Join Portcullis"</h1>
                <p class="mb-6 text-sm text-slate-600 dark:text-slate-400">
                    "Choose a password of at least 10 characters."
                </p>
                <div class="mb-4">{move || error().map(|m| view! { <Alert message=m /> })}</div>
                <form method="post" action="/auth/accept-invite" class="space-y-4">
                    <FormToken />
                    <input type="hidden" name="token" value=invite_token />
                    <div>
                        <label class=LABEL for="password">"New password"</label>
                        <input class=INPUT id="password" name="password" type="password" autocomplete="new-password" minlength="10" required />
                    </div>
                    <div>
                        <label class=LABEL for="password_confirm">"Repeat password"</label>
                        <input class=INPUT id="password_confirm" name="password_confirm" type="password" autocomplete="new-password" minlength="10" required />
                    </div>
                    <button type="submit" class=format!("{BUTTON} w-full")>"Set password"</button>
                </form>
            </div>
        </main>
    }
}
