//! The signed-in dashboard frame: navigation, the staff menu, and the page outlet.

use crate::api::Viewer;
use crate::api::session::me;
use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

/// The signed-in staff member, loaded once per page and shared with the pages below the layout.
#[derive(Clone, Copy)]
pub struct MeResource(pub Resource<Result<Option<Viewer>, crate::api::AppError>>);

/// Waits for the signed-in staff member and renders `f` with them.
pub fn with_me<V: IntoView + 'static>(
    f: impl Fn(Viewer) -> V + Send + Sync + Clone + 'static,
) -> impl IntoView {
    let me = expect_context::<MeResource>().0;
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let f = f.clone();
                Suspend::new(async move {
                    match me.await {
                        Ok(Some(me)) => f(me).into_any(),
                        _ => ().into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// The sections, each with who may see it. The server enforces the same rules on every call.
struct NavItem {
    href: &'static str,
    label: &'static str,
    visible: fn(&Viewer) -> bool,
}

const fn item(href: &'static str, label: &'static str, visible: fn(&Viewer) -> bool) -> NavItem {
    NavItem {
        href,
        label,
        visible,
    }
}

const NAV: [NavItem; 8] = [
    item("/", "Home", |_| true),
    item("/applications", "Applications", |_| true),
    item("/users", "Users", |_| true),
    item("/organizations", "Organizations", |_| true),
    item("/impersonation", "Impersonation", |_| true),
    item("/audit", "Audit log", |v| v.can_view_audit),
    item("/staff", "Staff", |v| v.can_view_staff),
    item("/settings", "Settings", |v| v.can_view_settings),
];

#[component]
pub fn DashboardLayout() -> impl IntoView {
    let me = Resource::new(|| (), |_| me());
    provide_context(MeResource(me));
    let nav_open = RwSignal::new(false);
    view! {
        <a href="#main" class="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2 focus:text-slate-900">
            "Skip to content"
        </a>
        <div class="min-h-screen md:flex">
            <aside class="border-b border-slate-200 bg-white md:w-60 md:shrink-0 md:border-b-0 md:border-r dark:border-slate-800 dark:bg-slate-900">
                <div class="flex items-center justify-between px-4 py-4">
                    <a href="/" class="flex items-center gap-2 text-lg font-semibold">
                        <span aria-hidden="true" class="inline-block h-6 w-6 rounded bg-indigo-600"></span>
                        "Portcullis"
                    </a>
                    <button
                        type="button"
                        class="rounded-md p-2 text-sm md:hidden"
                        aria-controls="main-nav"
                        aria-expanded=move || nav_open.get().to_string()
                        on:click=move |_| nav_open.update(|o| *o = !*o)
                    >
                        "Menu"
                    </button>
                </div>
                <nav
                    id="main-nav"
                    aria-label="Main"
                    class=move || {
                        if nav_open.get() { "block px-2 pb-4" } else { "hidden px-2 pb-4 md:block" }
                    }
                >
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            let viewer = me.await.ok().flatten();
                            view! { <NavLinks viewer /> }
                        })}
                    </Suspense>
                </nav>
            </aside>
            <div class="flex min-w-0 flex-1 flex-col">
                <header class="flex items-center justify-end border-b border-slate-200 bg-white px-4 py-3 dark:border-slate-800 dark:bg-slate-900">
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            match me.await {
                                Ok(Some(me)) => view! { <StaffMenu me /> }.into_any(),
                                _ => view! {
                                    <a class="text-sm underline" href="/login">"Sign in"</a>
                                }.into_any(),
                            }
                        })}
                    </Suspense>
                </header>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        me.await.ok().flatten().and_then(|m| m.impersonating).map(|b| view! { <ImpersonationBanner b /> })
                    })}
                </Suspense>
                <main id="main" class="mx-auto w-full max-w-6xl flex-1 px-4 py-8 sm:px-8">
                    <Outlet />
                </main>
            </div>
        </div>
    }
}

/// Shown on every page while the viewer has an impersonation open: who, where, until when.
#[component]
fn ImpersonationBanner(b: crate::api::impersonation::Banner) -> impl IntoView {
    let text = match b.status.as_str() {
        "active" => format!(
            "You are impersonating {} in {} until {} (UTC).",
            b.user_email,
            b.application_name,
            b.ends_at.unwrap_or_default()
        ),
        "approved" => format!(
            "Your request to impersonate {} in {} is approved: start it or withdraw it.",
            b.user_email, b.application_name
        ),
        _ => format!(
            "Your request to impersonate {} in {} is waiting for approval.",
            b.user_email, b.application_name
        ),
    };
    view! {
        <div role="status" data-testid="impersonation-banner" class="flex flex-wrap items-center justify-between gap-2 border-b border-amber-300 bg-amber-100 px-4 py-2 text-sm text-amber-950 dark:border-amber-700 dark:bg-amber-950 dark:text-amber-100">
            <span>{text}</span>
            <a class="font-medium underline" href="/impersonation">"Manage"</a>
        </div>
    }
}

#[component]
fn NavLinks(viewer: Option<Viewer>) -> impl IntoView {
    let visible = NAV
        .into_iter()
        .filter(|nav| viewer.as_ref().is_some_and(nav.visible))
        .map(|NavItem { href, label, .. }| {
            view! {
                <li>
                    <A
                        href=href
                        exact=true
                        attr:class="block rounded-md px-3 py-2 text-sm font-medium text-slate-700 hover:bg-slate-100 aria-[current=page]:bg-indigo-50 aria-[current=page]:text-indigo-700 dark:text-slate-300 dark:hover:bg-slate-800 dark:aria-[current=page]:bg-slate-800 dark:aria-[current=page]:text-white"
                    >
                        {label}
                    </A>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="space-y-1">{visible}</ul> }
}

/// The signed-in staff member's menu: who they are, their role, and sign out (a plain form POST, so
/// it works before the WASM arrives too).
#[component]
fn StaffMenu(me: Viewer) -> impl IntoView {
    let open = RwSignal::new(false);
    view! {
        <div
            class="relative"
            on:keydown=move |ev| {
                if ev.key() == "Escape" {
                    open.set(false);
                }
            }
        >
            <button
                type="button"
                id="staff-menu-button"
                class="flex items-center gap-2 rounded-md px-3 py-1.5 text-sm hover:bg-slate-100 focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-600 dark:hover:bg-slate-800"
                aria-haspopup="true"
                aria-controls="staff-menu"
                aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)
            >
                <span data-testid="staff-email">{me.email.clone()}</span>
                <span class="rounded bg-slate-200 px-1.5 py-0.5 text-xs dark:bg-slate-700">{me.role.clone()}</span>
            </button>
            <div
                id="staff-menu"
                role="menu"
                class=move || {
                    if open.get() {
                        "absolute right-0 z-10 mt-2 w-64 rounded-md border border-slate-200 bg-white p-3 shadow-lg dark:border-slate-700 dark:bg-slate-900"
                    } else {
                        "hidden"
                    }
                }
            >
                <p class="text-sm font-medium">{me.email.clone()}</p>
                <p class="mb-3 text-xs text-slate-500 dark:text-slate-400">{me.role_label.clone()}</p>
                <form method="post" action="/auth/logout">
                    <input type="hidden" name="csrf" value=me.csrf.clone() />
                    <button
                        type="submit"
                        role="menuitem"
                        class="w-full rounded-md px-3 py-2 text-left text-sm hover:bg-slate-100 dark:hover:bg-slate-800"
                    >
                        "Sign out"
                    </button>
                </form>
            </div>
        </div>
    }
}
