use crate::components::ui::PageHeader;
use leptos::prelude::*;
use leptos_meta::Title;

/// A section whose capability has not landed yet.
#[component]
pub fn ComingSoon(title: &'static str, issue: &'static str) -> impl IntoView {
    view! {
        <Title text=title />
        <PageHeader title=title />
        <div class="rounded-lg border border-dashed border-slate-300 p-10 text-center text-sm text-slate-600 dark:border-slate-700 dark:text-slate-400">
            <p class="font-medium">"Coming soon"</p>
            <p class="mt-1">{format!("This section arrives with the “{issue}” capability.")}</p>
        </div>
    }
}
