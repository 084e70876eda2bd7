//! Audit → Streams: webhook streams of audit events to a SIEM. Auditors and owners see each stream's
//! health and delivery log; owners create, pause, resume, rotate secrets, delete and redeliver.

use crate::api::Viewer;
use crate::api::audit_streams::{
    CreateAuditStream, DeleteAuditStream, FilterChoices, NewSecret, RedeliverAuditDelivery,
    RotateAuditStreamSecret, SetAuditStreamStatus, StreamPage, StreamRow, StreamSettings,
    StreamsPage, UpdateAuditStream, audit_stream_page, audit_streams_page,
};
use crate::components::layout::with_me;
use crate::components::ui::{
    Alert, BUTTON, BUTTON_DANGER, BUTTON_QUIET, CARD, CopyButton, DataTable, FieldError, INPUT,
    LABEL, Modal, PageHeader, StatusBadge, Toast, failed, field, notify_on_success,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

/// Shows a newly created or rotated secret once, in a dialog.
#[component]
fn SecretDialog(secret: RwSignal<Option<NewSecret>>) -> impl IntoView {
    let open = RwSignal::new(false);
    // Each effect writes only on a change, so they do not wake each other forever.
    Effect::new(move |_| {
        if secret.with(Option::is_some) && !open.get_untracked() {
            open.set(true);
        }
    });
    Effect::new(move |_| {
        if !open.get() && secret.with_untracked(Option::is_some) {
            secret.set(None);
        }
    });
    view! {
        <Modal open title="Copy the signing secret now" id="stream-secret-dialog">
            {move || secret.get().map(|s| view! {
                <p class="text-sm">"This is the only time the secret is shown. Your receiver checks each delivery’s Portcullis-Signature header with it (HMAC-SHA256 over “t.body”)."</p>
                <div class="mt-3 flex items-center gap-2">
                    <input class=format!("{INPUT} font-mono") readonly aria-label="Signing secret" data-testid="revealed-value" value=s.secret.clone() />
                    <CopyButton text=s.secret.clone() label="Copy the signing secret" />
                </div>
                <div class="mt-4 flex justify-end gap-2">
                    <a class=BUTTON_QUIET href=format!("/audit/streams/{}", s.stream_id)>"Open the stream"</a>
                    <button type="button" class=BUTTON on:click=move |_| open.set(false)>"Done"</button>
                </div>
            })}
        </Modal>
    }
}

#[component]
pub fn AuditStreamsPage() -> impl IntoView {
    view! {
        <Title text="Audit streams" />
        <p class="text-sm"><a class="text-slate-500 hover:underline" href="/audit">"Audit log"</a></p>
        <PageHeader title="Streams" subtitle="Send audit events to a SIEM as they happen: signed webhook deliveries, in order, retried until acknowledged." />
        {with_me(|me| view! { <Streams me /> })}
    }
}

#[component]
fn Streams(me: Viewer) -> impl IntoView {
    let create = ServerAction::<CreateAuditStream>::new();
    let page = Resource::new(move || create.version().get(), |_| audit_streams_page());
    let secret = RwSignal::new(None::<NewSecret>);
    Effect::new(move |_| {
        if let Some(Ok(s)) = create.value().get() {
            secret.set(Some(s));
        }
    });
    let csrf = StoredValue::new(me.csrf.clone());
    view! {
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Err(e) => view! { <Alert message=e.message /> }.into_any(),
                    Ok(p) => view! { <StreamList p=p.clone() />{p.can_manage.then(|| view! { <NewStream p=p.clone() action=create csrf=csrf.get_value() /> })} }.into_any(),
                }
            })}
        </Suspense>
        <SecretDialog secret />
    }
}

#[component]
fn StreamList(p: StreamsPage) -> impl IntoView {
    if p.streams.is_empty() {
        return view! { <p class="mb-6 text-sm" data-testid="no-streams">"No streams yet."</p> }
            .into_any();
    }
    view! {
        <div class="mb-6">
            <DataTable headers=vec!["Name", "Endpoint", "Events", "Status", "Delivered through", "Last error"] testid="streams-table">
                {p.streams.into_iter().map(|s| view! {
                    <tr>
                        <td class="px-3 py-2"><a class="underline" href=format!("/audit/streams/{}", s.id)>{s.name.clone()}</a></td>
                        <td class="px-3 py-2 font-mono text-xs">{s.url.clone()}</td>
                        <td class="px-3 py-2">{s.filter.clone()}</td>
                        <td class="px-3 py-2"><StatusBadge status=health(&s) /></td>
                        <td class="px-3 py-2 tabular-nums">{format!("#{} ({} behind)", s.cursor_seq, s.behind)}</td>
                        <td class="px-3 py-2 text-xs">{s.last_error.clone().unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </DataTable>
        </div>
    }
    .into_any()
}

/// `active`, `paused`, or `failing` while a batch is being retried.
fn health(s: &StreamRow) -> String {
    if s.status == "active" && s.attempts > 0 {
        "failing".to_owned()
    } else {
        s.status.clone()
    }
}

/// The fields of a stream (name, endpoint, filter), filled with `current`; shared by the create
/// and edit forms.
#[component]
fn StreamFields(
    choices: FilterChoices,
    current: StreamSettings,
    error: Signal<Option<crate::api::AppError>>,
) -> impl IntoView {
    let options = |first: &'static str, values: Vec<(String, String)>, current: &str| {
        std::iter::once((String::new(), first.to_owned()))
            .chain(values)
            .map(|(v, l)| {
                let selected = v == current;
                view! { <option value=v selected=selected>{l}</option> }
            })
            .collect_view()
    };
    let pairs = |v: &[String]| v.iter().map(|x| (x.clone(), x.clone())).collect::<Vec<_>>();
    let outcomes = vec![
        ("success".to_owned(), "Success".to_owned()),
        ("failure".to_owned(), "Failure".to_owned()),
    ];
    view! {
        <div>
            <label class=LABEL for="stream-name">"Name"</label>
            <input class=INPUT id="stream-name" name="settings[name]" required value=current.name aria-describedby="stream-name-error" />
            <FieldError id="stream-name-error" message=field(error, "name") />
        </div>
        <div>
            <label class=LABEL for="stream-url">"Endpoint URL"</label>
            <input class=INPUT id="stream-url" name="settings[url]" type="url" required value=current.url placeholder="https://siem.example.com/portcullis" aria-describedby="stream-url-error" />
            <FieldError id="stream-url-error" message=field(error, "url") />
        </div>
        <div>
            <label class=LABEL for="stream-category">"Category"</label>
            <select class=INPUT id="stream-category" name="settings[category]" aria-describedby="stream-category-error">{options("Every category", pairs(&choices.categories), &current.category)}</select>
            <FieldError id="stream-category-error" message=field(error, "category") />
        </div>
        <div>
            <label class=LABEL for="stream-event">"Event"</label>
            <select class=INPUT id="stream-event" name="settings[event]" aria-describedby="stream-event-error">{options("Every event", pairs(&choices.events), &current.event)}</select>
            <FieldError id="stream-event-error" message=field(error, "event") />
        </div>
        <div>
            <label class=LABEL for="stream-application">"Application"</label>
            <select class=INPUT id="stream-application" name="settings[application]">{options("Every application", choices.applications.clone(), &current.application)}</select>
        </div>
        <div>
            <label class=LABEL for="stream-outcome">"Outcome"</label>
            <select class=INPUT id="stream-outcome" name="settings[outcome]" aria-describedby="stream-outcome-error">{options("Any outcome", outcomes, &current.outcome)}</select>
            <FieldError id="stream-outcome-error" message=field(error, "outcome") />
        </div>
        {move || error.get().filter(|e| e.field.is_none()).map(|e| view! { <div class="sm:col-span-2"><Alert message=e.message /></div> })}
    }
}

#[component]
fn NewStream(
    p: StreamsPage,
    action: ServerAction<CreateAuditStream>,
    csrf: String,
) -> impl IntoView {
    let error = failed(action.value());
    view! {
        <section class=CARD aria-labelledby="new-stream-heading">
            <h2 id="new-stream-heading" class="mb-4 text-lg font-semibold">"New stream"</h2>
            <ActionForm action attr:class="grid gap-4 sm:grid-cols-2">
                <input type="hidden" name="csrf" value=csrf />
                <StreamFields choices=p.choices current=StreamSettings::default() error />
                <p class="text-xs text-slate-500 sm:col-span-2">"The stream starts with the next event written. Each delivery is a POST of up to 500 events, signed with a secret shown once."</p>
                <div class="sm:col-span-2">
                    <button type="submit" class=BUTTON disabled=move || action.pending().get()>"Create stream"</button>
                </div>
            </ActionForm>
        </section>
    }
}

/// The owner's edit form on a stream's page: name, endpoint and filter. The cursor stays where it
/// is: a changed filter applies to the events after it.
#[component]
fn EditStream(
    p: StreamPage,
    action: ServerAction<UpdateAuditStream>,
    csrf: String,
) -> impl IntoView {
    let error = failed(action.value());
    view! {
        <section class=format!("{CARD} mb-6") aria-labelledby="edit-stream-heading">
            <h2 id="edit-stream-heading" class="mb-4 text-lg font-semibold">"Settings"</h2>
            <ActionForm action attr:class="grid gap-4 sm:grid-cols-2">
                <input type="hidden" name="csrf" value=csrf />
                <input type="hidden" name="id" value=p.stream.id.clone() />
                <StreamFields choices=p.choices current=p.settings error />
                <p class="text-xs text-slate-500 sm:col-span-2">"Changes apply from the next delivery; events already delivered are not sent again."</p>
                <div class="sm:col-span-2">
                    <button type="submit" class=BUTTON disabled=move || action.pending().get()>"Save changes"</button>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn AuditStreamPage() -> impl IntoView {
    view! { {with_me(|me| view! { <StreamDetail me /> })} }
}

#[derive(Clone, Copy)]
struct Actions {
    update: ServerAction<UpdateAuditStream>,
    status: ServerAction<SetAuditStreamStatus>,
    rotate: ServerAction<RotateAuditStreamSecret>,
    delete: ServerAction<DeleteAuditStream>,
    redeliver: ServerAction<RedeliverAuditDelivery>,
}

#[component]
fn StreamDetail(me: Viewer) -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id")).unwrap_or_default());
    let actions = Actions {
        update: ServerAction::new(),
        status: ServerAction::new(),
        rotate: ServerAction::new(),
        delete: ServerAction::new(),
        redeliver: ServerAction::new(),
    };
    let refresh = RwSignal::new(0_u32);
    let page = Resource::new(
        move || {
            (
                id.get(),
                actions.update.version().get(),
                actions.status.version().get(),
                actions.redeliver.version().get(),
                refresh.get(),
            )
        },
        |(id, ..)| audit_stream_page(id),
    );
    let toast = RwSignal::new(None::<String>);
    notify_on_success(actions.update, toast, "Saved.");
    notify_on_success(actions.status, toast, "Saved.");
    notify_on_success(actions.redeliver, toast, "Redelivery queued.");
    let secret = RwSignal::new(None::<NewSecret>);
    Effect::new(move |_| {
        if let Some(Ok(s)) = actions.rotate.value().get() {
            secret.set(Some(s));
        }
    });
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = actions.delete.value().get() {
            navigate("/audit/streams", Default::default());
        }
    });
    let problem = move || {
        [
            actions.status.value().get().and_then(|r| r.err()),
            actions.rotate.value().get().and_then(|r| r.err()),
            actions.delete.value().get().and_then(|r| r.err()),
            actions.redeliver.value().get().and_then(|r| r.err()),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|e| e.message)
    };
    let csrf = StoredValue::new(me.csrf.clone());
    view! {
        {move || problem().map(|m| view! { <div class="mb-4"><Alert message=m /></div> })}
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Err(e) => view! { <Title text="Audit stream" /><Alert message=e.message /> }.into_any(),
                    Ok(p) => view! { <StreamView p actions csrf=csrf.get_value() refresh /> }.into_any(),
                }
            })}
        </Suspense>
        <SecretDialog secret />
        <Toast message=toast.into() />
    }
}

#[component]
fn StreamView(
    p: StreamPage,
    actions: Actions,
    csrf: String,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    let s = p.stream.clone();
    let csrf = StoredValue::new(csrf);
    let sid = StoredValue::new(s.id.clone());
    let hidden = move || {
        view! {
            <input type="hidden" name="csrf" value=csrf.get_value() />
            <input type="hidden" name="id" value=sid.get_value() />
        }
    };
    let manage = p.can_manage.then(|| {
        let next = if s.status == "paused" {
            "active"
        } else {
            "paused"
        };
        let label = if s.status == "paused" {
            "Resume"
        } else {
            "Pause"
        };
        view! {
            <div class="mt-4 flex flex-wrap gap-2">
                <ActionForm action=actions.status>
                    {hidden()}
                    <input type="hidden" name="status" value=next />
                    <button type="submit" class=BUTTON_QUIET>{label}</button>
                </ActionForm>
                <ActionForm action=actions.rotate>
                    {hidden()}
                    <button type="submit" class=BUTTON_QUIET>"Rotate secret"</button>
                </ActionForm>
                <ActionForm action=actions.delete>
                    {hidden()}
                    <button type="submit" class=BUTTON_DANGER>"Delete stream"</button>
                </ActionForm>
            </div>
        }
    });
    let retry = (s.attempts > 0).then(|| {
        format!(
            "Retrying: {} failed attempt(s), next at {} — {}",
            s.attempts,
            s.next_attempt_at,
            s.last_error.clone().unwrap_or_default()
        )
    });
    let can_manage = p.can_manage;
    let edit = can_manage.then(|| {
        view! { <EditStream p=p.clone() action=actions.update csrf=csrf.get_value() /> }
    });
    view! {
        <Title text=format!("Stream {}", s.name) />
        <p class="text-sm"><a class="text-slate-500 hover:underline" href="/audit/streams">"Streams"</a></p>
        <h1 class="mb-4 mt-1 text-2xl font-semibold">{s.name.clone()}</h1>
        <section class=format!("{CARD} mb-6") aria-label="Stream">
            <dl class="grid grid-cols-[10rem_1fr] gap-2 text-sm" data-testid="stream-fields">
                <dt class="font-medium">"Status"</dt><dd><StatusBadge status=health(&s) /></dd>
                <dt class="font-medium">"Endpoint"</dt><dd class="font-mono text-xs">{s.url.clone()}</dd>
                <dt class="font-medium">"Events"</dt><dd>{s.filter.clone()}</dd>
                <dt class="font-medium">"Secret"</dt><dd class="font-mono text-xs">{format!("whsec_…{}", s.secret_hint)}</dd>
                <dt class="font-medium">"Delivered through"</dt><dd class="tabular-nums">{format!("#{} ({} newer events not yet considered)", s.cursor_seq, s.behind)}</dd>
                <dt class="font-medium">"Last success"</dt><dd class="tabular-nums">{s.last_success_at.clone().unwrap_or_else(|| "never".to_owned())}</dd>
            </dl>
            {retry.map(|r| view! { <p class="mt-3 text-sm text-red-700 dark:text-red-400" data-testid="stream-retry">{r}</p> })}
            {manage}
        </section>
        {edit}
        <div class="mb-2 flex items-center gap-3">
            <h2 class="text-lg font-semibold">"Deliveries"</h2>
            <button type="button" class=BUTTON_QUIET on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
        </div>
        <DataTable headers=vec!["Time (UTC)", "Kind", "Events", "Attempt", "Result", "Took", ""] testid="deliveries-table">
            {p.deliveries.into_iter().map(|d| {
                let result = match (d.status.as_str(), d.status_code, d.error.clone()) {
                    ("delivered", Some(code), _) => format!("delivered (HTTP {code})"),
                    (_, _, Some(e)) => format!("{}: {e}", d.status),
                    (status, ..) => status.to_owned(),
                };
                let redeliver = (can_manage && d.status != "pending" && d.status != "sending").then(|| view! {
                    <ActionForm action=actions.redeliver>
                        <input type="hidden" name="csrf" value=csrf.get_value() />
                        <input type="hidden" name="stream_id" value=sid.get_value() />
                        <input type="hidden" name="delivery_id" value=d.id.clone() />
                        <button type="submit" class=BUTTON_QUIET>"Redeliver"</button>
                    </ActionForm>
                });
                view! {
                    <tr>
                        <td class="whitespace-nowrap px-3 py-2 tabular-nums">{d.created_at.clone()}</td>
                        <td class="px-3 py-2">{d.requested_by.clone().map_or(d.kind.clone(), |by| format!("{} by {by}", d.kind))}</td>
                        <td class="px-3 py-2 tabular-nums">
                            <a class="underline" href=format!("/audit?before={}", d.last_seq + 1)>{format!("#{}–#{}", d.first_seq, d.last_seq)}</a>
                            {format!(" ({})", d.events)}
                        </td>
                        <td class="px-3 py-2 tabular-nums">{d.attempt}</td>
                        <td class="px-3 py-2">{result}</td>
                        <td class="px-3 py-2 tabular-nums">{d.duration_ms.map(|ms| format!("{ms} ms")).unwrap_or_default()}</td>
                        <td class="px-3 py-2">{redeliver}</td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
}
