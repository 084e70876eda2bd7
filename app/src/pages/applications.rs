//! Applications: one per product surface over the shared user pool. The list filters through the URL
//! (a plain GET form, so a link reproduces the view and it works before the WASM arrives); operators
//! and owners create applications in a dialog.

use crate::api::Viewer;
use crate::api::applications::{
    APP_TYPES, AppListPage, CreateApplication, list_applications, type_label,
};
use crate::components::layout::with_me;
use crate::components::ui::encode;
use crate::components::ui::{
    Alert, BUTTON, BUTTON_QUIET, DataTable, FieldError, INPUT, LABEL, Modal, PageHeader,
    StatusBadge,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_navigate, use_query_map};

/// The list's filters as they stand in the URL.
#[derive(Clone, Debug, Default, PartialEq)]
struct Filters {
    q: String,
    app_type: String,
    status: String,
    sort: String,
    after: String,
}

impl Filters {
    fn is_filtered(&self) -> bool {
        !(self.q.is_empty() && self.app_type.is_empty() && self.status.is_empty())
    }

    /// The URL of the same view from another cursor.
    fn href_after(&self, after: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("q", &self.q),
            ("type", &self.app_type),
            ("status", &self.status),
            ("sort", &self.sort),
        ] {
            if !value.is_empty() {
                parts.push(format!("{key}={}", encode(value)));
            }
        }
        if let Some(after) = after {
            parts.push(format!("after={}", encode(after)));
        }
        if parts.is_empty() {
            "/applications".to_owned()
        } else {
            format!("/applications?{}", parts.join("&"))
        }
    }
}

#[component]
pub fn ApplicationsPage() -> impl IntoView {
    view! {
        <Title text="Applications" />
        {with_me(|me| view! { <ApplicationsSection me /> })}
    }
}

#[component]
fn ApplicationsSection(me: Viewer) -> impl IntoView {
    let query = use_query_map();
    let filters = Memo::new(move |_| {
        query.with(|q| {
            let get = |k: &str| q.get(k).unwrap_or_default();
            Filters {
                q: get("q"),
                app_type: get("type"),
                status: get("status"),
                sort: get("sort"),
                after: get("after"),
            }
        })
    });
    let create = ServerAction::<CreateApplication>::new();
    let open = RwSignal::new(false);
    let apps = Resource::new(
        move || filters.get(),
        |f| {
            list_applications(
                Some(f.q),
                Some(f.app_type),
                Some(f.status),
                Some(f.sort),
                Some(f.after),
            )
        },
    );
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(app)) = create.value().get() {
            navigate(&format!("/applications/{}", app.id), Default::default());
        }
    });
    let manage = me.can_manage_applications;
    view! {
        <div class="mb-6 flex flex-wrap items-start justify-between gap-4">
            <PageHeader
                title="Applications"
                subtitle="Each product surface — web app, SPA, mobile or desktop app, backend service — is an application over the one user pool."
            />
            {manage.then(|| view! {
                <button type="button" class=BUTTON on:click=move |_| open.set(true)>"Create application"</button>
            })}
        </div>
        <FilterBar filters />
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match apps.await {
                    Err(e) => view! { <Alert message=e.message /> }.into_any(),
                    Ok(page) => view! { <AppTable page filters=filters.get_untracked() manage open /> }.into_any(),
                }
            })}
        </Suspense>
        {manage.then(|| view! { <CreateDialog open create csrf=me.csrf.clone() /> })}
    }
}

#[component]
fn FilterBar(filters: Memo<Filters>) -> impl IntoView {
    let f = filters.get_untracked();
    let select = "rounded-md border border-slate-300 bg-white px-2 py-2 text-sm dark:border-slate-700 dark:bg-slate-900";
    view! {
        <Form method="GET" action="/applications" attr:class="mb-4 flex flex-wrap items-end gap-3" attr:role="search">
            <div class="min-w-[14rem] flex-1">
                <label class=LABEL for="app-search">"Search"</label>
                <input class=INPUT id="app-search" name="q" type="search" value=f.q.clone()
                    placeholder="Name or client ID" />
            </div>
            <div>
                <label class=LABEL for="app-type-filter">"Type"</label>
                <select class=select id="app-type-filter" name="type">
                    <option value="" selected=f.app_type.is_empty()>"All types"</option>
                    {APP_TYPES.into_iter().map(|(value, label, _)| view! {
                        <option value=value selected=f.app_type == value>{label}</option>
                    }).collect_view()}
                </select>
            </div>
            <div>
                <label class=LABEL for="app-status-filter">"Status"</label>
                <select class=select id="app-status-filter" name="status">
                    <option value="" selected=f.status.is_empty()>"Any status"</option>
                    <option value="active" selected=f.status == "active">"Active"</option>
                    <option value="disabled" selected=f.status == "disabled">"Disabled"</option>
                </select>
            </div>
            <div>
                <label class=LABEL for="app-sort">"Sort"</label>
                <select class=select id="app-sort" name="sort">
                    <option value="newest" selected=f.sort.is_empty() || f.sort == "newest">"Newest first"</option>
                    <option value="oldest" selected=f.sort == "oldest">"Oldest first"</option>
                    <option value="name" selected=f.sort == "name">"Name A–Z"</option>
                </select>
            </div>
            <button type="submit" class=BUTTON_QUIET>"Apply"</button>
        </Form>
    }
}

#[component]
fn AppTable(
    page: AppListPage,
    filters: Filters,
    manage: bool,
    open: RwSignal<bool>,
) -> impl IntoView {
    if page.items.is_empty() {
        return if filters.is_filtered() {
            view! {
                <div class="rounded-lg border border-dashed border-slate-300 p-10 text-center text-sm dark:border-slate-700" data-testid="empty">
                    <p class="font-medium">"No applications match these filters."</p>
                    <a class="mt-2 inline-block underline" href="/applications">"Clear filters"</a>
                </div>
            }
            .into_any()
        } else {
            view! {
                <div class="rounded-lg border border-dashed border-slate-300 p-10 text-center text-sm dark:border-slate-700" data-testid="empty">
                    <p class="font-medium">"No applications yet"</p>
                    <p class="mx-auto mt-2 max-w-prose text-slate-600 dark:text-slate-400">
                        "An application is one surface of your product — a web app, a single-page app, a mobile or desktop app, a CLI or a backend service. Each gets its own client ID, redirect URIs, token lifetimes and credentials, while every application signs in the same users."
                    </p>
                    {manage.then(|| view! {
                        <button type="button" class=format!("{BUTTON} mt-4") on:click=move |_| open.set(true)>"Create your first application"</button>
                    })}
                </div>
            }
            .into_any()
        };
    }
    let next = page
        .next_cursor
        .as_deref()
        .map(|c| filters.href_after(Some(c)));
    let first = (!filters.after.is_empty()).then(|| filters.href_after(None));
    let total = page.total;
    view! {
        <p class="mb-2 text-sm text-slate-600 dark:text-slate-400" data-testid="app-count">
            {format!("{total} application{}", if total == 1 { "" } else { "s" })}
        </p>
        <DataTable headers=vec!["Name", "Type", "Client ID", "Status", "Created"] testid="applications-table">
            {page.items.into_iter().map(|a| {
                let href = format!("/applications/{}", a.id);
                let created = a.created_at.get(..10).unwrap_or_default().to_owned();
                view! {
                    <tr data-name=a.name.clone()>
                        <td class="px-3 py-2">
                            <a class="font-medium text-indigo-700 hover:underline dark:text-indigo-300" href=href>{a.name.clone()}</a>
                            {a.is_default.then(|| view! { <span class="ml-2 text-xs text-slate-500">"default"</span> })}
                        </td>
                        <td class="px-3 py-2">{type_label(&a.app_type)}</td>
                        <td class="px-3 py-2 font-mono text-xs">{a.client_id.clone()}</td>
                        <td class="px-3 py-2"><StatusBadge status=a.status.clone() /></td>
                        <td class="whitespace-nowrap px-3 py-2 tabular-nums">{created}</td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
        <nav class="mt-4 flex gap-2" aria-label="Pages">
            {first.map(|href| view! { <a class=BUTTON_QUIET href=href>"First page"</a> })}
            {next.map(|href| view! { <a class=BUTTON_QUIET href=href rel="next">"Next page"</a> })}
        </nav>
    }
    .into_any()
}

#[component]
fn CreateDialog(
    open: RwSignal<bool>,
    create: ServerAction<CreateApplication>,
    csrf: String,
) -> impl IntoView {
    let error = move || create.value().get().and_then(|r| r.err());
    let name_error = Signal::derive(move || error().and_then(|e| e.for_field("name")));
    let type_error = Signal::derive(move || error().and_then(|e| e.for_field("type")));
    let other_error = move || error().filter(|e| e.field.is_none()).map(|e| e.message);
    let csrf = StoredValue::new(csrf);
    view! {
        <Modal open title="Create application" id="create-application">
            <ActionForm action=create attr:class="space-y-4">
                <input type="hidden" name="csrf" value=csrf.get_value() />
                <div>
                    <label class=LABEL for="new-app-name">"Name"</label>
                    <input class=INPUT id="new-app-name" name="name" required maxlength="80"
                        aria-describedby="new-app-name-error" />
                    <FieldError id="new-app-name-error" message=name_error />
                </div>
                <fieldset>
                    <legend class=LABEL>"Type"</legend>
                    <p class="text-xs text-slate-500 dark:text-slate-400">"Fixed once the application exists."</p>
                    <div class="mt-2 space-y-2">
                        {APP_TYPES.into_iter().map(|(value, label, explanation)| {
                            let for_id = format!("new-app-type-{value}");
                            let id = for_id.clone();
                            view! {
                                <label for=for_id class="flex cursor-pointer gap-3 rounded-md border border-slate-200 p-3 text-sm has-[:checked]:border-indigo-500 dark:border-slate-700">
                                    <input type="radio" id=id name="app_type" value=value checked=value == "web" />
                                    <span>
                                        <span class="font-medium">{label}</span>
                                        <span class="block text-slate-600 dark:text-slate-400">{explanation}</span>
                                    </span>
                                </label>
                            }
                        }).collect_view()}
                    </div>
                    <FieldError id="new-app-type-error" message=type_error />
                </fieldset>
                <div>
                    <label class=LABEL for="new-app-description">"Description (optional)"</label>
                    <textarea class=INPUT id="new-app-description" name="description" rows="2" maxlength="1000"></textarea>
                </div>
                {move || other_error().map(|m| view! { <Alert message=m /> })}
                <div class="flex justify-end gap-2">
                    <button type="button" class=BUTTON_QUIET on:click=move |_| open.set(false)>"Cancel"</button>
                    <button type="submit" class=BUTTON disabled=move || create.pending().get()>"Create"</button>
                </div>
            </ActionForm>
        </Modal>
    }
}
