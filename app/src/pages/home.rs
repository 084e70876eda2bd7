use crate::components::layout::with_me;
use crate::components::ui::{CARD, PageHeader};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="Home" />
        {with_me(|me| {
            view! {
                <PageHeader
                    title="Dashboard"
                    subtitle=format!("Signed in as {} · {}", me.email, me.role_label)
                />
                <div class="grid gap-4 sm:grid-cols-2 lg:grid-cols-3" data-testid="home-cards">
                    <Card href="/applications" title="Applications" text="Each product surface: client IDs, redirects, session policy, credentials." />
                    <Card href="/users" title="Users" text="One shared pool of end users across every application." />
                    <Card href="/impersonation" title="Impersonation" text="Support sessions as a user inside one application, audited." />
                    {me.can_view_audit.then(|| view! {
                        <Card href="/audit" title="Audit log" text="Every sign-in and change, hash-chained." />
                    })}
                    {me.can_view_staff.then(|| view! {
                        <Card href="/staff" title="Staff" text="Who can use this dashboard, and with which role." />
                    })}
                </div>
            }
        })}
    }
}

#[component]
fn Card(href: &'static str, title: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <a href=href class=format!("{CARD} block hover:border-indigo-400 focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-600")>
            <h2 class="font-semibold">{title}</h2>
            <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">{text}</p>
        </a>
    }
}
