//! The Leptos dashboard: pages, components, and the server functions that are its RPC. Server functions
//! stay thin — authorize, parse, call `identity`, map the result — and only exist on the server side
//! behind the `ssr` feature.
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{Link, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use components::layout::DashboardLayout;
use pages::{
    accept_invite::AcceptInvitePage,
    application::ApplicationPage,
    applications::ApplicationsPage,
    audit::{self, AuditPage},
    home::HomePage,
    hosted, impersonation,
    login::LoginPage,
    organizations,
    settings::SettingsPage,
    staff::StaffPage,
    users,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    ssr::provide_csp_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900 antialiased dark:bg-slate-950 dark:text-slate-100">
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Tell browser tests (and anyone curious) that the WASM has taken over the page.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/portcullis.css" />
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Title formatter=|text: String| if text.is_empty() { "Portcullis".to_owned() } else { format!("{text} · Portcullis") } />
        // Pages render completely on the server (`SsrMode::Async`): the sign-in form and every page
        // read without JavaScript, and hydrate when the WASM arrives.
        <Router>
            <Routes fallback=|| view! { <pages::NotFound /> }>
                <Route ssr=SsrMode::Async path=path!("/login") view=LoginPage />
                <Route ssr=SsrMode::Async path=path!("/accept-invite") view=AcceptInvitePage />
                <Route ssr=SsrMode::Async path=path!("/u/sign-in") view=hosted::SignInPage />
                <Route ssr=SsrMode::Async path=path!("/u/sign-up") view=hosted::SignUpPage />
                <Route ssr=SsrMode::Async path=path!("/u/forgot-password") view=hosted::ForgotPasswordPage />
                <Route ssr=SsrMode::Async path=path!("/u/reset-password") view=hosted::ResetPasswordPage />
                <Route ssr=SsrMode::Async path=path!("/u/accept-invitation") view=hosted::AcceptInvitationPage />
                <Route ssr=SsrMode::Async path=path!("/u/continue") view=hosted::ContinuePage />
                <Route ssr=SsrMode::Async path=path!("/u/sign-out") view=hosted::SignOutPage />
                <Route ssr=SsrMode::Async path=path!("/u/signed-out") view=hosted::SignedOutPage />
                <Route ssr=SsrMode::Async path=path!("/u/error") view=hosted::HostedErrorPage />
                <ParentRoute ssr=SsrMode::Async path=path!("") view=DashboardLayout>
                    <Route ssr=SsrMode::Async path=path!("") view=HomePage />
                    <Route ssr=SsrMode::Async path=path!("staff") view=StaffPage />
                    <Route ssr=SsrMode::Async path=path!("audit") view=AuditPage />
                    <Route ssr=SsrMode::Async path=path!("audit/catalog") view=audit::AuditCatalogPage />
                    <Route ssr=SsrMode::Async path=path!("audit/events/:seq") view=audit::AuditEventPage />
                    <Route ssr=SsrMode::Async path=path!("audit/streams") view=pages::audit_streams::AuditStreamsPage />
                    <Route ssr=SsrMode::Async path=path!("audit/streams/:id") view=pages::audit_streams::AuditStreamPage />
                    <Route ssr=SsrMode::Async path=path!("applications") view=ApplicationsPage />
                    <Route ssr=SsrMode::Async path=path!("applications/:id") view=ApplicationPage />
                    <Route ssr=SsrMode::Async path=path!("users") view=users::UsersPage />
                    <Route ssr=SsrMode::Async path=path!("users/:id") view=users::UserPage />
                    <Route ssr=SsrMode::Async path=path!("organizations") view=organizations::OrganizationsPage />
                    <Route ssr=SsrMode::Async path=path!("organizations/:id") view=organizations::OrganizationPage />
                    <Route ssr=SsrMode::Async path=path!("impersonation") view=impersonation::ImpersonationPage />
                    <Route ssr=SsrMode::Async path=path!("settings") view=SettingsPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
