//! Small presentational pieces shared by pages.

use leptos::prelude::*;

pub const INPUT: &str = "mt-1 block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm shadow-sm \
    focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500 \
    dark:border-slate-700 dark:bg-slate-900";
pub const BUTTON: &str = "inline-flex items-center justify-center rounded-md bg-indigo-600 px-4 py-2 text-sm \
    font-semibold text-white shadow-sm hover:bg-indigo-500 focus-visible:outline focus-visible:outline-2 \
    focus-visible:outline-offset-2 focus-visible:outline-indigo-600 disabled:opacity-50";
pub const BUTTON_QUIET: &str = "inline-flex items-center rounded-md border border-slate-300 px-3 py-1.5 text-sm \
    hover:bg-slate-100 focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-600 \
    dark:border-slate-700 dark:hover:bg-slate-800";
pub const LABEL: &str = "block text-sm font-medium text-slate-700 dark:text-slate-300";
pub const CARD: &str = "rounded-lg border border-slate-200 bg-white p-6 shadow-sm dark:border-slate-800 dark:bg-slate-900";

/// A field-level error message, linked to its input by `id`.
#[component]
pub fn FieldError(id: &'static str, message: Signal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || message.get().is_some()>
            <p id=id class="mt-1 text-sm text-red-600 dark:text-red-400" role="alert">
                {move || message.get().unwrap_or_default()}
            </p>
        </Show>
    }
}

/// A banner for a form-wide error or notice.
#[component]
pub fn Alert(#[prop(into)] message: String, #[prop(optional)] success: bool) -> impl IntoView {
    let class = if success {
        "rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-800 dark:border-emerald-800 dark:bg-emerald-950 dark:text-emerald-200"
    } else {
        "rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200"
    };
    view! { <div class=class role="alert" data-testid="alert">{message}</div> }
}

#[component]
pub fn PageHeader(
    #[prop(into)] title: String,
    #[prop(into, optional)] subtitle: String,
) -> impl IntoView {
    view! {
        <header class="mb-6">
            <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
            <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">{subtitle}</p>
        </header>
    }
}

/// The hidden CSRF field of the signed-out forms: the double-submit token of this browser's
/// `pc_csrf` cookie, rendered on the server so the form works without JavaScript.
#[component]
pub fn FormToken() -> impl IntoView {
    let token = Resource::new(|| (), |_| crate::api::session::form_token());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let value = token.await.unwrap_or_default();
                view! { <input type="hidden" name="csrf" value=value /> }
            })}
        </Suspense>
    }
}

/// A bordered, horizontally scrollable table with column headers; `children` are the body rows.
#[component]
pub fn DataTable(
    headers: Vec<&'static str>,
    #[prop(into)] testid: String,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="overflow-x-auto rounded-lg border border-slate-200 dark:border-slate-800">
            <table class="min-w-full divide-y divide-slate-200 text-sm dark:divide-slate-800" data-testid=testid>
                <thead class="bg-slate-100 text-left dark:bg-slate-900">
                    <tr>
                        {headers
                            .into_iter()
                            .map(|h| view! { <th scope="col" class="px-3 py-2">{h}</th> })
                            .collect_view()}
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100 dark:divide-slate-800">{children()}</tbody>
            </table>
        </div>
    }
}
