//! Impersonation: the support person's own request or session (start, open the application, end),
//! the request form, approvals for owners and operators, the active sessions with a live countdown
//! and "End now", and the history. The server checks every rule; the page only explains them.

use crate::api::Viewer;
use crate::api::impersonation::{
    DecideImpersonation, EndImpersonation, ImpPage, ImpRow, RequestImpersonation,
    impersonation_page,
};
use crate::api::users::list_users;
use crate::components::layout::with_me;
use crate::components::ui::{
    Alert, BUTTON, BUTTON_DANGER, BUTTON_QUIET, CARD, DataTable, FieldError, INPUT, LABEL,
    PageHeader, StatusBadge, Toast, failed, field, notify_on_success,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

const STATUSES: [(&str, &str); 7] = [
    ("", "Any status"),
    ("pending", "Waiting for approval"),
    ("approved", "Approved, not started"),
    ("active", "Active"),
    ("ended", "Ended"),
    ("denied", "Denied"),
    ("expired", "Expired"),
];

/// Messages for the codes `/auth/impersonations/start` sends back.
fn start_error(code: &str) -> &'static str {
    match code {
        "csrf_failed" => "This form has expired. Reload the page and try again.",
        "not_approved" => "This request is not approved (or has already started).",
        "no_longer_allowed" => {
            "The application's policy, your assignment or the user changed since the request."
        }
        "not_found" => "This impersonation does not exist or is not yours.",
        _ => "The impersonation could not start. Try again.",
    }
}

#[component]
pub fn ImpersonationPage() -> impl IntoView {
    view! {
        <Title text="Impersonation" />
        <PageHeader title="Impersonation" subtitle="See exactly what a user sees in one application: with a reason, a time limit and a full audit trail." />
        {with_me(|me| view! { <ImpersonationSection me /> })}
    }
}

#[derive(Clone, Copy)]
struct Actions {
    request: ServerAction<RequestImpersonation>,
    decide: ServerAction<DecideImpersonation>,
    end: ServerAction<EndImpersonation>,
}

#[component]
fn ImpersonationSection(me: Viewer) -> impl IntoView {
    let query = use_query_map();
    let actions = Actions {
        request: ServerAction::new(),
        decide: ServerAction::new(),
        end: ServerAction::new(),
    };
    let filter = Memo::new(move |_| {
        query.with(|q| {
            (
                q.get("status").unwrap_or_default(),
                q.get("application").unwrap_or_default(),
                q.get("user_id").unwrap_or_default(),
            )
        })
    });
    let page = Resource::new(
        move || {
            (
                filter.get(),
                actions.request.version().get(),
                actions.decide.version().get(),
                actions.end.version().get(),
            )
        },
        |((status, app, user), _, _, _)| impersonation_page(Some(status), Some(app), Some(user)),
    );
    let toast = RwSignal::new(None::<String>);
    notify_on_success(actions.decide, toast, "Decision recorded.");
    notify_on_success(actions.end, toast, "Impersonation ended.");
    let problem = move || {
        [
            actions.decide.value().get().and_then(|r| r.err()),
            actions.end.value().get().and_then(|r| r.err()),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|e| e.message)
    };
    let start_problem = move || query.with(|q| q.get("error")).map(|c| start_error(&c));
    let csrf = StoredValue::new(me.csrf.clone());
    view! {
        {move || start_problem().map(|m| view! { <div class="mb-4"><Alert message=m /></div> })}
        {move || problem().map(|m| view! { <div class="mb-4"><Alert message=m /></div> })}
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Err(e) => view! { <Alert message=e.message /> }.into_any(),
                    Ok(p) => view! { <Sections p actions csrf=csrf.get_value() /> }.into_any(),
                }
            })}
        </Suspense>
        <Toast message=toast.into() />
    }
}

#[component]
fn Sections(p: ImpPage, actions: Actions, csrf: String) -> impl IntoView {
    let now = p.now_ms;
    let mine = p.mine.clone();
    view! {
        {match mine {
            Some(row) => view! { <Mine row now actions csrf=csrf.clone() /> }.into_any(),
            None if !p.applications.is_empty() => view! { <NewRequest p=p.clone() action=actions.request csrf=csrf.clone() /> }.into_any(),
            None => view! {
                <p class=format!("{CARD} mb-8 text-sm") data-testid="cannot-impersonate">
                    "You are not assigned to impersonate in any application where impersonation is enabled. An owner assigns support staff on an application's Impersonation tab."
                </p>
            }.into_any(),
        }}
        {(p.can_supervise && !p.pending.is_empty()).then(|| view! {
            <Pending rows=p.pending.clone() action=actions.decide csrf=csrf.clone() />
        })}
        <section class="mb-8" aria-labelledby="active-heading">
            <h2 id="active-heading" class="mb-2 text-lg font-semibold">"Active now"</h2>
            {if p.active.is_empty() {
                view! { <p class="text-sm">"No active impersonations."</p> }.into_any()
            } else {
                let supervise = p.can_supervise;
                view! {
                    <DataTable headers=vec!["Staff", "User", "Application", "Mode", "Time left", ""] testid="active-impersonations">
                        {p.active.iter().map(|r| {
                            let can_end = supervise || r.mine;
                            view! {
                                <tr>
                                    <td class="px-3 py-2">{r.staff_email.clone()}</td>
                                    <td class="px-3 py-2">{r.user_email.clone()}</td>
                                    <td class="px-3 py-2">{r.application_name.clone()}</td>
                                    <td class="px-3 py-2">{r.mode.clone()}</td>
                                    <td class="px-3 py-2">{r.ends_at_ms.map(|e| view! { <Countdown ends_at_ms=e now_ms=now /> })}</td>
                                    <td class="px-3 py-2 text-right">
                                        {can_end.then(|| view! { <EndButton id=r.id.clone() action=actions.end csrf=csrf.clone() label="End now" /> })}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </DataTable>
                }.into_any()
            }}
        </section>
        <History rows=p.history />
    }
}

/// Time left, counting down every second once the page is interactive.
#[component]
fn Countdown(ends_at_ms: i64, now_ms: i64) -> impl IntoView {
    let now = RwSignal::new(now_ms);
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || now.update(|n| *n += 1000),
            std::time::Duration::from_secs(1),
        )
        .ok();
        on_cleanup(move || {
            if let Some(h) = handle {
                h.clear();
            }
        });
    });
    let left = move || {
        let secs = ((ends_at_ms - now.get()) / 1000).max(0);
        if secs == 0 {
            "ending…".to_owned()
        } else {
            format!("{}:{:02}", secs / 60, secs % 60)
        }
    };
    view! { <span class="tabular-nums" data-testid="countdown">{left}</span> }
}

#[component]
fn EndButton(
    id: String,
    action: ServerAction<EndImpersonation>,
    csrf: String,
    label: &'static str,
) -> impl IntoView {
    view! {
        <ActionForm action>
            <input type="hidden" name="csrf" value=csrf />
            <input type="hidden" name="id" value=id />
            <button type="submit" class=BUTTON_DANGER>{label}</button>
        </ActionForm>
    }
}

/// The viewer's own request or session.
#[component]
fn Mine(row: ImpRow, now: i64, actions: Actions, csrf: String) -> impl IntoView {
    let summary = format!(
        "{} in {} · {} min · {} mode",
        row.user_email, row.application_name, row.duration_minutes, row.mode
    );
    let body = match row.status.as_str() {
        "pending" => view! {
            <p class="text-sm">"Waiting for an owner or operator to approve. Requests expire after 30 minutes."</p>
            <div class="mt-4"><EndButton id=row.id.clone() action=actions.end csrf=csrf.clone() label="Withdraw request" /></div>
        }.into_any(),
        "approved" => view! {
            <p class="text-sm">"Approved. Starting signs this browser in to the application as the user (in a separate session) until the time runs out."</p>
            <form method="post" action="/auth/impersonations/start" class="mt-4 flex gap-2">
                <input type="hidden" name="csrf" value=csrf.clone() />
                <input type="hidden" name="id" value=row.id.clone() />
                <button type="submit" class=BUTTON data-testid="start-impersonation">"Start impersonation"</button>
            </form>
            <div class="mt-2"><EndButton id=row.id.clone() action=actions.end csrf=csrf.clone() label="Withdraw request" /></div>
        }.into_any(),
        _ => {
            let open = match &row.launch_url {
                Some(url) => view! {
                    <a class=BUTTON href=url.clone() data-testid="open-application">
                        {format!("Open {} as {}", row.application_name, row.user_email)}
                    </a>
                }.into_any(),
                None => view! {
                    <p class="text-sm">{format!(
                        "Open {} in this browser and sign in: you will be signed in as {} without a password prompt.",
                        row.application_name, row.user_email
                    )}</p>
                }.into_any(),
            };
            view! {
                <p class="text-sm">"Time left: "{row.ends_at_ms.map(|e| view! { <Countdown ends_at_ms=e now_ms=now /> })}</p>
                <div class="mt-4 flex flex-wrap items-center gap-3">
                    {open}
                    <EndButton id=row.id.clone() action=actions.end csrf=csrf.clone() label="End impersonation" />
                </div>
            }.into_any()
        }
    };
    view! {
        <section class=format!("{CARD} mb-8") aria-labelledby="mine-heading" data-testid="my-impersonation" data-status=row.status.clone()>
            <div class="mb-2 flex items-center gap-2">
                <h2 id="mine-heading" class="text-lg font-semibold">"Your impersonation"</h2>
                <StatusBadge status=row.status.clone() />
            </div>
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">{summary}</p>
            <p class="mb-3 text-sm">"Reason: "{row.reason.clone()}{row.ticket.clone().map(|t| format!(" · ticket {t}"))}</p>
            {body}
        </section>
    }
}

#[component]
fn NewRequest(
    p: ImpPage,
    action: ServerAction<RequestImpersonation>,
    csrf: String,
) -> impl IntoView {
    let query = use_query_map();
    let error = failed(action.value());
    let typed = RwSignal::new(query.with_untracked(|q| q.get("user")).unwrap_or_default());
    // Suggestions as the support person types (email or name prefix).
    let suggestions = Resource::new(
        move || typed.get(),
        |q| async move {
            if q.trim().len() < 2 {
                return Vec::new();
            }
            list_users(Some(q), Some("active".to_owned()), None, None, None)
                .await
                .map(|p| p.items.into_iter().map(|u| u.email).take(10).collect())
                .unwrap_or_default()
        },
    );
    let first_max = p.applications.first().map_or(60, |a| a.max_minutes);
    view! {
        <section class=format!("{CARD} mb-8") aria-labelledby="new-heading">
            <h2 id="new-heading" class="mb-4 text-lg font-semibold">"New impersonation"</h2>
            <ActionForm action attr:class="grid gap-4 sm:grid-cols-2">
                <input type="hidden" name="csrf" value=csrf />
                <div>
                    <label class=LABEL for="imp-user">"User (email)"</label>
                    <input class=INPUT id="imp-user" name="user" type="email" required list="imp-user-options"
                        autocomplete="off" prop:value=move || typed.get()
                        on:input=move |ev| typed.set(event_target_value(&ev))
                        aria-describedby="imp-user-error" />
                    <datalist id="imp-user-options">
                        <Suspense fallback=|| ()>
                            {move || Suspend::new(async move {
                                suggestions.await.into_iter().map(|e| view! { <option value=e.clone()></option> }).collect_view()
                            })}
                        </Suspense>
                    </datalist>
                    <FieldError id="imp-user-error" message=field(error, "user") />
                </div>
                <div>
                    <label class=LABEL for="imp-app">"Application"</label>
                    <select class=INPUT id="imp-app" name="application_id" aria-describedby="imp-app-error">
                        {p.applications.iter().map(|a| view! {
                            <option value=a.id.clone()>
                                {format!("{} (up to {} min{})", a.name, a.max_minutes, if a.require_approval { ", needs approval" } else { "" })}
                            </option>
                        }).collect_view()}
                    </select>
                    <FieldError id="imp-app-error" message=field(error, "application_id") />
                </div>
                <div>
                    <label class=LABEL for="imp-minutes">"Duration (minutes)"</label>
                    <input class=INPUT id="imp-minutes" name="minutes" type="number" min="1" required
                        value=first_max.min(60).to_string() aria-describedby="imp-minutes-error" />
                    <FieldError id="imp-minutes-error" message=field(error, "duration_secs") />
                </div>
                <div>
                    <label class=LABEL for="imp-ticket">"Ticket (optional)"</label>
                    <input class=INPUT id="imp-ticket" name="ticket" aria-describedby="imp-ticket-error" />
                    <FieldError id="imp-ticket-error" message=field(error, "ticket") />
                </div>
                <div class="sm:col-span-2">
                    <label class=LABEL for="imp-reason">"Reason (at least 15 characters)"</label>
                    <textarea class=INPUT id="imp-reason" name="reason" rows="2" required minlength="15"
                        aria-describedby="imp-reason-error"></textarea>
                    <FieldError id="imp-reason-error" message=field(error, "reason") />
                </div>
                <div class="sm:col-span-2">
                    <button type="submit" class=BUTTON disabled=move || action.pending().get()>"Request impersonation"</button>
                </div>
            </ActionForm>
            {move || error.get().filter(|e| e.field.is_none()).map(|e| view! { <div class="mt-4"><Alert message=e.message /></div> })}
        </section>
    }
}

#[component]
fn Pending(
    rows: Vec<ImpRow>,
    action: ServerAction<DecideImpersonation>,
    csrf: String,
) -> impl IntoView {
    let csrf = StoredValue::new(csrf);
    view! {
        <section class="mb-8" aria-labelledby="pending-heading">
            <h2 id="pending-heading" class="mb-2 text-lg font-semibold">"Waiting for your decision"</h2>
            <ul class="space-y-3" data-testid="pending-impersonations">
                {rows.into_iter().map(|r| {
                    let comment_id = format!("comment-{}", r.id);
                    view! {
                        <li class=CARD data-staff=r.staff_email.clone()>
                            <p class="text-sm font-medium">
                                {format!("{} asks to impersonate {} in {} for {} min ({} mode)",
                                    r.staff_email, r.user_email, r.application_name, r.duration_minutes, r.mode)}
                            </p>
                            <p class="mt-1 text-sm">"Reason: "{r.reason.clone()}{r.ticket.clone().map(|t| format!(" · ticket {t}"))}</p>
                            <p class="mt-1 text-xs text-slate-500">"Requested "{r.requested_at.clone()}</p>
                            <ActionForm action attr:class="mt-3 flex flex-wrap items-end gap-2">
                                <input type="hidden" name="csrf" value=csrf.get_value() />
                                <input type="hidden" name="id" value=r.id.clone() />
                                <div class="min-w-64 flex-1">
                                    <label class=LABEL for=comment_id.clone()>"Comment (optional)"</label>
                                    <input class=INPUT id=comment_id name="comment" />
                                </div>
                                <button type="submit" name="decision" value="approve" class=BUTTON>"Approve"</button>
                                <button type="submit" name="decision" value="deny" class=BUTTON_QUIET>"Deny"</button>
                            </ActionForm>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}

#[component]
fn History(rows: Vec<ImpRow>) -> impl IntoView {
    let query = use_query_map();
    let status = query
        .with_untracked(|q| q.get("status"))
        .unwrap_or_default();
    view! {
        <section aria-labelledby="history-heading">
            <div class="mb-2 flex flex-wrap items-end justify-between gap-2">
                <h2 id="history-heading" class="text-lg font-semibold">"History"</h2>
                <form method="get" action="/impersonation" class="flex items-end gap-2">
                    <div>
                        <label class=LABEL for="history-status">"Status"</label>
                        <select class=INPUT id="history-status" name="status">
                            {STATUSES.into_iter().map(|(v, l)| view! { <option value=v selected=v == status>{l}</option> }).collect_view()}
                        </select>
                    </div>
                    <button type="submit" class=BUTTON_QUIET>"Filter"</button>
                </form>
            </div>
            <ImpTable rows />
        </section>
    }
}

/// Impersonations as a table, each with a link to its audit trail (also on the user's page).
#[component]
pub fn ImpTable(rows: Vec<ImpRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="text-sm">"No impersonations."</p> }.into_any();
    }
    view! {
        <DataTable headers=vec!["Requested (UTC)", "Staff", "User", "Application", "Status", "Reason", "Ended", ""] testid="impersonation-history">
            {rows.into_iter().map(|r| view! {
                <tr>
                    <td class="whitespace-nowrap px-3 py-2 tabular-nums">{r.requested_at}</td>
                    <td class="px-3 py-2">{r.staff_email}</td>
                    <td class="px-3 py-2"><a class="underline" href=format!("/users/{}", r.user_id)>{r.user_email}</a></td>
                    <td class="px-3 py-2"><a class="underline" href=format!("/applications/{}", r.application_id)>{r.application_name}</a></td>
                    <td class="px-3 py-2"><StatusBadge status=r.status /></td>
                    <td class="max-w-xs px-3 py-2">{r.reason}{r.ticket.map(|t| format!(" · {t}"))}</td>
                    <td class="px-3 py-2 text-xs">{r.ended_at.map(|e| format!("{e} ({})", r.end_reason.unwrap_or_default()))}</td>
                    <td class="px-3 py-2"><a class="underline" href=format!("/audit?target=impersonation:{}", r.id)>"Audit trail"</a></td>
                </tr>
            }).collect_view()}
        </DataTable>
    }
    .into_any()
}
