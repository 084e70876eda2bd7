pub mod accept_invite;
pub mod application;
pub mod applications;
pub mod audit;
pub mod audit_streams;
pub mod home;
pub mod hosted;
pub mod impersonation;
pub mod login;
pub mod organizations;
pub mod settings;
pub mod staff;
pub mod users;

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="mx-auto max-w-md px-4 py-24 text-center">
            <h1 class="text-2xl font-semibold">"Page not found"</h1>
            <p class="mt-2 text-sm text-slate-600 dark:text-slate-400">
                <a class="underline" href="/">"Back to the dashboard"</a>
            </p>
        </main>
    }
}
