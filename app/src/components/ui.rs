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
pub fn FieldError(#[prop(into)] id: String, message: Signal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || message.get().is_some()>
            <p id=id.clone() class="mt-1 text-sm text-red-600 dark:text-red-400" role="alert">
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

pub const BUTTON_DANGER: &str = "inline-flex items-center justify-center rounded-md bg-red-600 px-4 py-2 text-sm \
    font-semibold text-white shadow-sm hover:bg-red-500 focus-visible:outline focus-visible:outline-2 \
    focus-visible:outline-offset-2 focus-visible:outline-red-600 disabled:opacity-50";
pub const BADGE: &str = "inline-flex items-center rounded px-1.5 py-0.5 text-xs font-medium";

/// A badge coloured by status: active green, anything else grey.
#[component]
pub fn StatusBadge(#[prop(into)] status: String) -> impl IntoView {
    let colour = if status == "active" {
        "bg-emerald-100 text-emerald-800 dark:bg-emerald-900 dark:text-emerald-200"
    } else {
        "bg-slate-200 text-slate-700 dark:bg-slate-700 dark:text-slate-200"
    };
    view! { <span class=format!("{BADGE} {colour}") data-testid="status">{status}</span> }
}

/// A short confirmation in the corner ("Saved."), announced to screen readers; it fades by itself.
#[component]
pub fn Toast(message: Signal<Option<String>>) -> impl IntoView {
    view! {
        <div aria-live="polite" class="pointer-events-none fixed bottom-4 right-4 z-50">
            <Show when=move || message.get().is_some()>
                <div role="status" data-testid="toast"
                    class="rounded-md bg-slate-900 px-4 py-2 text-sm text-white shadow-lg dark:bg-white dark:text-slate-900">
                    {move || message.get().unwrap_or_default()}
                </div>
            </Show>
        </div>
    }
}

/// After each success of `action`, shows `text` in `toast` for a few seconds.
pub fn notify_on_success<S>(
    action: ServerAction<S>,
    toast: RwSignal<Option<String>>,
    text: &'static str,
) where
    S: leptos::server_fn::ServerFn<Error = crate::api::AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Effect::new(move |_| {
        if matches!(action.value().get(), Some(Ok(_))) {
            toast.set(Some(text.to_owned()));
            set_timeout(move || toast.set(None), std::time::Duration::from_secs(4));
        }
    });
}

/// Copies `text` to the clipboard and says so.
#[component]
pub fn CopyButton(#[prop(into)] text: String, #[prop(into)] label: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let clipboard = window().navigator().clipboard();
            let _ = clipboard.write_text(&text);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
        copied.set(true);
    };
    view! {
        <button type="button" class=BUTTON_QUIET on:click=copy aria-label=label.clone()>
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}

/// A modal dialog drawn over the page; `open` controls it, Escape closes it.
#[component]
pub fn Modal(
    open: RwSignal<bool>,
    #[prop(into)] title: String,
    #[prop(into)] id: String,
    children: ChildrenFn,
) -> impl IntoView {
    let heading = format!("{id}-title");
    view! {
        <Show when=move || open.get()>
            <div class="fixed inset-0 z-40 flex items-center justify-center bg-slate-900/50 p-4"
                on:keydown=move |ev| if ev.key() == "Escape" { open.set(false) }>
                <div role="dialog" aria-modal="true" aria-labelledby=heading.clone() id=id.clone()
                    class=format!("{CARD} w-full max-w-lg")>
                    <h2 id=heading.clone() class="mb-4 text-lg font-semibold">{title.clone()}</h2>
                    {children()}
                </div>
            </div>
        </Show>
    }
}

/// Percent-encodes a query-string value (everything but RFC 3986 unreserved characters).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The error of a server action's last run, if it failed.
pub fn failed<T, S>(value: S) -> Signal<Option<crate::api::AppError>>
where
    S: Get<Value = Option<Result<T, crate::api::AppError>>> + Send + Sync + 'static,
{
    Signal::derive(move || value.get().and_then(|r| r.err()))
}

/// The message of `error` when it concerns the input `name`, for a [`FieldError`].
pub fn field(
    error: Signal<Option<crate::api::AppError>>,
    name: impl Into<String>,
) -> Signal<Option<String>> {
    let name = name.into();
    Signal::derive(move || error.get().and_then(|e| e.for_field(&name)))
}
