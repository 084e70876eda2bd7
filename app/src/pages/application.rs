//! One application, in tabs: Overview, Redirects, Session policy, Roles, Credentials, Sessions,
//! Danger zone. Every form
//! validates on the server and shows its errors next to the field; a success shows a toast. Secrets
//! and keys are shown once, in a dialog, right after they are created.

use crate::api::applications::{
    APP_TYPES, AppDetail, CreateAppKey, CreateAppRole, CreateClientSecret, DeleteAppRole,
    DeleteApplication, KeyRow, PolicyRow, Revealed, RevokeAppKey, RevokeClientSecret,
    RotateClientSecret, SCOPES, SecretRow, SetApplicationStatus, UpdateApplicationOverview,
    UpdateApplicationPolicy, UpdateApplicationRedirects, get_application, type_label,
};
use crate::api::impersonation::{AssignImpersonator, SetImpersonationPolicy, UnassignImpersonator};
use crate::api::users::RevokeUserSession;
use crate::api::{AppError, Viewer};
use crate::components::layout::with_me;
use crate::components::ui::{
    Alert, BUTTON, BUTTON_DANGER, BUTTON_QUIET, CARD, CopyButton, DataTable, FieldError, INPUT,
    LABEL, Modal, StatusBadge, Toast, notify_on_success,
};
use crate::components::ui::{failed, field};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

const TABS: [(&str, &str); 8] = [
    ("overview", "Overview"),
    ("redirects", "Redirects"),
    ("session", "Session policy"),
    ("roles", "Roles"),
    ("credentials", "Credentials"),
    ("sessions", "Sessions"),
    ("impersonation", "Impersonation"),
    ("danger", "Danger zone"),
];

/// Every action of the page, so the detail reloads after any of them.
#[derive(Clone, Copy)]
struct Actions {
    overview: ServerAction<UpdateApplicationOverview>,
    redirects: ServerAction<UpdateApplicationRedirects>,
    policy: ServerAction<UpdateApplicationPolicy>,
    status: ServerAction<SetApplicationStatus>,
    delete: ServerAction<DeleteApplication>,
    new_secret: ServerAction<CreateClientSecret>,
    rotate_secret: ServerAction<RotateClientSecret>,
    revoke_secret: ServerAction<RevokeClientSecret>,
    new_key: ServerAction<CreateAppKey>,
    revoke_key: ServerAction<RevokeAppKey>,
    new_role: ServerAction<CreateAppRole>,
    delete_role: ServerAction<DeleteAppRole>,
    revoke_session: ServerAction<RevokeUserSession>,
    imp_policy: ServerAction<SetImpersonationPolicy>,
    assign: ServerAction<AssignImpersonator>,
    unassign: ServerAction<UnassignImpersonator>,
}

impl Actions {
    fn new() -> Self {
        Self {
            overview: ServerAction::new(),
            redirects: ServerAction::new(),
            policy: ServerAction::new(),
            status: ServerAction::new(),
            delete: ServerAction::new(),
            new_secret: ServerAction::new(),
            rotate_secret: ServerAction::new(),
            revoke_secret: ServerAction::new(),
            new_key: ServerAction::new(),
            revoke_key: ServerAction::new(),
            new_role: ServerAction::new(),
            delete_role: ServerAction::new(),
            revoke_session: ServerAction::new(),
            imp_policy: ServerAction::new(),
            assign: ServerAction::new(),
            unassign: ServerAction::new(),
        }
    }

    fn versions(&self) -> [usize; 15] {
        [
            self.overview.version().get(),
            self.redirects.version().get(),
            self.policy.version().get(),
            self.status.version().get(),
            self.new_secret.version().get(),
            self.rotate_secret.version().get(),
            self.revoke_secret.version().get(),
            self.new_key.version().get(),
            self.revoke_key.version().get(),
            self.new_role.version().get(),
            self.delete_role.version().get(),
            self.revoke_session.version().get(),
            self.imp_policy.version().get(),
            self.assign.version().get(),
            self.unassign.version().get(),
        ]
    }
}

fn general(error: Signal<Option<AppError>>) -> impl Fn() -> Option<AnyView> + Send + Sync {
    move || {
        error
            .get()
            .filter(|e| e.field.is_none())
            .map(|e| view! { <div class="mt-4"><Alert message=e.message /></div> }.into_any())
    }
}

#[component]
pub fn ApplicationPage() -> impl IntoView {
    view! { {with_me(|me| view! { <ApplicationSection me /> })} }
}

#[component]
fn ApplicationSection(me: Viewer) -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id")).unwrap_or_default());
    let tab = Memo::new(move |_| {
        query
            .with(|q| q.get("tab"))
            .filter(|t| TABS.iter().any(|(v, _)| v == t))
            .unwrap_or_else(|| "overview".to_owned())
    });
    let actions = Actions::new();
    let detail = Resource::new(
        move || (id.get(), actions.versions()),
        |(id, _)| get_application(id),
    );

    let toast = RwSignal::new(None::<String>);
    notify_on_success(actions.overview, toast, "Saved.");
    notify_on_success(actions.redirects, toast, "Redirects saved.");
    notify_on_success(actions.policy, toast, "Session policy saved.");
    notify_on_success(actions.status, toast, "Status changed.");
    notify_on_success(actions.revoke_secret, toast, "Secret revoked.");
    notify_on_success(actions.revoke_key, toast, "API key revoked.");
    notify_on_success(actions.new_role, toast, "Role created.");
    notify_on_success(actions.delete_role, toast, "Role deleted.");
    notify_on_success(actions.revoke_session, toast, "Session ended.");
    notify_on_success(actions.imp_policy, toast, "Impersonation policy saved.");
    notify_on_success(actions.assign, toast, "Assigned.");
    notify_on_success(actions.unassign, toast, "Assignment removed.");

    // A new secret or key: shown once, in a dialog, until it is dismissed.
    let revealed = RwSignal::new(None::<Revealed>);
    let reveal_open = RwSignal::new(false);
    for value in [
        actions.new_secret.value(),
        actions.rotate_secret.value(),
        actions.new_key.value(),
    ] {
        Effect::new(move |_| {
            if let Some(Ok(r)) = value.get() {
                revealed.set(Some(r));
                reveal_open.set(true);
            }
        });
    }
    Effect::new(move |_| {
        if !reveal_open.get() {
            revealed.set(None);
        }
    });

    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = actions.delete.value().get() {
            navigate("/applications?deleted=1", Default::default());
        }
    });

    let csrf = StoredValue::new(me.csrf.clone());
    view! {
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! {
                        <Title text="Application" />
                        <Alert message=if e.code == "not_found" { "This application does not exist (or was deleted).".to_owned() } else { e.message } />
                        <p class="mt-4 text-sm"><a class="underline" href="/applications">"All applications"</a></p>
                    }.into_any(),
                    Ok(d) => view! { <Detail d tab actions csrf=csrf.get_value() /> }.into_any(),
                }
            })}
        </Suspense>
        <Modal open=reveal_open title="Copy it now" id="reveal-dialog">
            {move || revealed.get().map(|r| view! {
                <p class="text-sm">
                    {format!("This is the only time the {} is shown. Store it somewhere safe; Portcullis keeps only a hash.", r.what)}
                </p>
                <div class="mt-3 flex items-center gap-2">
                    <input class=format!("{INPUT} font-mono") readonly aria-label="New credential" data-testid="revealed-value" value=r.value.clone() />
                    <CopyButton text=r.value.clone() label=format!("Copy the {}", r.what) />
                </div>
                <div class="mt-4 flex justify-end">
                    <button type="button" class=BUTTON on:click=move |_| reveal_open.set(false)>"Done"</button>
                </div>
            })}
        </Modal>
        <Toast message=toast.into() />
    }
}

#[component]
fn Detail(d: AppDetail, tab: Memo<String>, actions: Actions, csrf: String) -> impl IntoView {
    let s = d.summary.clone();
    let base = format!("/applications/{}", s.id);
    let tabs = TABS
        .into_iter()
        .map(|(value, label)| {
            let href = format!("{base}?tab={value}");
            view! {
                <a href=href role="tab"
                    aria-selected=move || (tab.get() == value).to_string()
                    class="border-b-2 border-transparent px-3 py-2 text-sm font-medium text-slate-600 hover:text-slate-900 aria-selected:border-indigo-600 aria-selected:text-indigo-700 dark:text-slate-400 dark:aria-selected:text-white">
                    {label}
                </a>
            }
        })
        .collect_view();
    let d = StoredValue::new(d);
    let csrf = StoredValue::new(csrf);
    view! {
        <Title text=s.name.clone() />
        <header class="mb-4">
            <p class="text-sm"><a class="text-slate-500 hover:underline" href="/applications">"Applications"</a></p>
            <div class="mt-1 flex flex-wrap items-center gap-3">
                <h1 class="text-2xl font-semibold tracking-tight">{s.name.clone()}</h1>
                <StatusBadge status=s.status.clone() />
                <span class="text-sm text-slate-600 dark:text-slate-400">{type_label(&s.app_type)}</span>
            </div>
        </header>
        <nav role="tablist" aria-label="Application sections" class="mb-6 flex flex-wrap gap-1 border-b border-slate-200 dark:border-slate-800">
            {tabs}
        </nav>
        {move || {
            let d = d.get_value();
            let csrf = csrf.get_value();
            match tab.get().as_str() {
                "redirects" => view! { <RedirectsTab d csrf action=actions.redirects /> }.into_any(),
                "session" => view! { <PolicyTab d csrf action=actions.policy /> }.into_any(),
                "roles" => view! { <RolesTab d csrf actions /> }.into_any(),
                "credentials" => view! { <CredentialsTab d csrf actions /> }.into_any(),
                "sessions" => view! { <SessionsTab d csrf action=actions.revoke_session /> }.into_any(),
                "impersonation" => view! { <ImpersonationTab d csrf actions /> }.into_any(),
                "danger" => view! { <DangerTab d csrf actions /> }.into_any(),
                _ => view! { <OverviewTab d csrf action=actions.overview /> }.into_any(),
            }
        }}
    }
}

#[component]
fn OverviewTab(
    d: AppDetail,
    csrf: String,
    action: ServerAction<UpdateApplicationOverview>,
) -> impl IntoView {
    let s = d.summary.clone();
    let explanation = APP_TYPES
        .iter()
        .find(|(v, _, _)| *v == s.app_type)
        .map(|(_, _, e)| *e)
        .unwrap_or_default();
    let error = failed(action.value());
    view! {
        <section class=CARD aria-label="Overview">
            <dl class="grid gap-4 text-sm sm:grid-cols-[12rem_1fr]">
                <dt class="font-medium">"Client ID"</dt>
                <dd class="flex flex-wrap items-center gap-2">
                    <code class="rounded bg-slate-100 px-2 py-1 font-mono dark:bg-slate-800" data-testid="client-id">{s.client_id.clone()}</code>
                    <CopyButton text=s.client_id.clone() label="Copy the client ID" />
                </dd>
                <dt class="font-medium">"Type"</dt>
                <dd>{type_label(&s.app_type)}<span class="block text-slate-600 dark:text-slate-400">{explanation}</span></dd>
                <dt class="font-medium">"Status"</dt>
                <dd><StatusBadge status=s.status.clone() /></dd>
                <dt class="font-medium">"Created"</dt>
                <dd class="tabular-nums">{s.created_at.clone()}</dd>
                <dt class="font-medium">"Last changed"</dt>
                <dd class="tabular-nums">{d.updated_at.clone()}</dd>
            </dl>
            {s.is_default.then(|| view! {
                <p class="mt-4 text-sm text-slate-600 dark:text-slate-400">"This is the default application; it cannot be deleted."</p>
            })}
        </section>
        {d.can_manage.then(|| view! {
            <section class=format!("{CARD} mt-6") aria-labelledby="overview-edit">
                <h2 id="overview-edit" class="mb-4 text-lg font-semibold">"Name and description"</h2>
                <ActionForm action attr:class="space-y-4">
                    <input type="hidden" name="csrf" value=csrf />
                    <input type="hidden" name="id" value=s.id.clone() />
                    <div>
                        <label class=LABEL for="app-name">"Name"</label>
                        <input class=INPUT id="app-name" name="name" value=s.name.clone() aria-describedby="app-name-error" />
                        <FieldError id="app-name-error" message=field(error, "name") />
                    </div>
                    <div>
                        <label class=LABEL for="app-description">"Description"</label>
                        <textarea class=INPUT id="app-description" name="description" rows="2">{d.description.clone()}</textarea>
                        <FieldError id="app-description-error" message=field(error, "description") />
                    </div>
                    <input type="hidden" name="app_type" value=s.app_type.clone() />
                    {(s.app_type != "m2m").then(|| view! {
                        <label class="flex items-center gap-2 text-sm" for="allow-sign-up">
                            <input type="checkbox" id="allow-sign-up" name="allow_sign_up" value="on" checked=d.allow_sign_up />
                            "Let people sign up to this application themselves (hosted sign-up page)"
                        </label>
                    })}
                    <button type="submit" class=BUTTON>"Save"</button>
                </ActionForm>
                {general(error)}
            </section>
        })}
    }
}

#[component]
fn RedirectsTab(
    d: AppDetail,
    csrf: String,
    action: ServerAction<UpdateApplicationRedirects>,
) -> impl IntoView {
    if d.summary.app_type == "m2m" {
        return view! {
            <section class=CARD><p class="text-sm">"Machine-to-machine applications sign in as themselves and have no redirect or return URLs."</p></section>
        }
        .into_any();
    }
    let error = failed(action.value());
    let readonly = !d.can_manage;
    let list = move |name: &'static str,
                     label: &'static str,
                     help: &'static str,
                     values: &[String]| {
        let error_id = format!("{name}-error");
        view! {
            <div>
                <label class=LABEL for=name>{label}</label>
                <p class="text-xs text-slate-500 dark:text-slate-400">{help}</p>
                <textarea class=format!("{INPUT} font-mono") id=name name=format!("urls[{name}]") rows="3" readonly=readonly
                    aria-describedby=error_id.clone()>{values.join("\n")}</textarea>
                <FieldError id=error_id message=field(error, name) />
            </div>
        }
    };
    let single = move |name: &'static str,
                       label: &'static str,
                       help: &'static str,
                       value: &Option<String>| {
        let error_id = format!("{name}-error");
        view! {
            <div>
                <label class=LABEL for=name>{label}</label>
                <p class="text-xs text-slate-500 dark:text-slate-400">{help}</p>
                <input class=format!("{INPUT} font-mono") id=name name=format!("urls[{name}]") readonly=readonly
                    value=value.clone().unwrap_or_default() aria-describedby=error_id.clone() />
                <FieldError id=error_id message=field(error, name) />
            </div>
        }
    };
    view! {
        <section class=CARD aria-label="Redirects">
            <ActionForm action attr:class="space-y-5">
                <input type="hidden" name="csrf" value=csrf />
                <input type="hidden" name="id" value=d.summary.id.clone() />
                {list("redirect_uris", "Sign-in redirect URIs",
                    "One per line. Absolute, https (http only on 127.0.0.1, [::1] or localhost), no fragments or wildcards; matched exactly.",
                    &d.redirect_uris)}
                {single("default_redirect_uri", "Default redirect URI",
                    "One of the URIs above; the first one when left empty.", &d.default_redirect_uri)}
                {list("post_logout_redirect_uris", "Post-logout redirect URIs",
                    "Where users may be sent after signing out; one per line.", &d.post_logout_redirect_uris)}
                {single("initiate_login_uri", "Initiate-login URI",
                    "An https endpoint of the application that starts a sign-in (OpenID Connect third-party initiated login).", &d.initiate_login_uri)}
                {single("backchannel_logout_uri", "Back-channel logout URI",
                    "Web applications only: Portcullis posts a logout token here when a session ends.", &d.backchannel_logout_uri)}
                {single("return_url", "Password-reset and invitation return URL",
                    "Where hosted pages send the user back to after a reset or an accepted invitation.", &d.return_url)}
                {(!readonly).then(|| view! { <button type="submit" class=BUTTON>"Save redirects"</button> })}
            </ActionForm>
            {general(error)}
        </section>
        {(!d.logouts.is_empty()).then(|| view! {
            <section class=format!("{CARD} mt-6") aria-labelledby="logouts-heading">
                <h2 id="logouts-heading" class="mb-2 text-lg font-semibold">"Back-channel logout deliveries"</h2>
                <ul class="space-y-1 text-sm" data-testid="logout-deliveries">
                    {d.logouts.iter().map(|l| view! {
                        <li>
                            {l.created_at.clone()}" · "<span class="font-medium">{l.status.clone()}</span>
                            {format!(" · {} attempt(s)", l.attempts)}
                            {l.last_error.clone().map(|e| format!(" · {e}"))}
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        })}
    }
    .into_any()
}

/// The live sign-in sessions that signed in to this application, each with "End session" (which
/// ends it everywhere and sends back-channel logout to every application of that session).
#[component]
fn SessionsTab(
    d: AppDetail,
    csrf: String,
    action: ServerAction<RevokeUserSession>,
) -> impl IntoView {
    let error = failed(action.value());
    let can_revoke = d.can_revoke_sessions;
    view! {
        <section class=CARD aria-labelledby="app-sessions-heading">
            <h2 id="app-sessions-heading" class="mb-1 text-lg font-semibold">"Active sign-in sessions"</h2>
            <p class="mb-4 text-sm text-slate-600 dark:text-slate-400">
                "Sessions that started here or signed in here through single sign-on, newest first (up to 50). Ending one signs the user out of every application of that session."
            </p>
            {d.sessions.is_empty().then(|| view! { <p class="text-sm">"No active sessions."</p> })}
            {(!d.sessions.is_empty()).then(|| view! {
                <DataTable headers=vec!["User", "IP", "Started (UTC)", "Last seen (UTC)", ""] testid="app-sessions">
                    {d.sessions.iter().map(|s| {
                        let (csrf, uid, sid) = (csrf.clone(), s.user_id.clone(), s.id.clone());
                        view! {
                            <tr>
                                <td class="px-3 py-2"><a class="underline" href=format!("/users/{}", s.user_id)>{s.email.clone()}</a></td>
                                <td class="px-3 py-2">{s.ip.clone()}</td>
                                <td class="px-3 py-2 tabular-nums">{s.created_at.clone()}</td>
                                <td class="px-3 py-2 tabular-nums">{s.last_seen_at.clone()}</td>
                                <td class="px-3 py-2 text-right">
                                    {can_revoke.then(|| view! {
                                        <ActionForm action>
                                            <input type="hidden" name="csrf" value=csrf />
                                            <input type="hidden" name="id" value=uid />
                                            <input type="hidden" name="session_id" value=sid />
                                            <button type="submit" class=BUTTON_QUIET>"End session"</button>
                                        </ActionForm>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </DataTable>
            })}
            {general(error)}
        </section>
    }
}

/// Who may impersonate here and under which rules. Operators and owners edit the policy; owners
/// assign staff.
#[component]
fn ImpersonationTab(d: AppDetail, csrf: String, actions: Actions) -> impl IntoView {
    let s = d.impersonation.clone();
    let error = Signal::derive(move || {
        [
            failed(actions.imp_policy.value()).get(),
            failed(actions.assign.value()).get(),
            failed(actions.unassign.value()).get(),
        ]
        .into_iter()
        .flatten()
        .next()
    });
    let disabled = !s.can_edit;
    let id = StoredValue::new(d.summary.id.clone());
    let csrf = StoredValue::new(csrf);
    let m2m = d.summary.app_type == "m2m";
    let check = move |name: &'static str, label: &'static str, help: &'static str, on: bool| {
        view! {
            <label class="flex items-start gap-2 text-sm">
                <input type="checkbox" name=name checked=on disabled=disabled class="mt-1" />
                <span><span class="font-medium">{label}</span><span class="block text-slate-500">{help}</span></span>
            </label>
        }
    };
    view! {
        <section class=CARD aria-labelledby="imp-policy-heading">
            <h2 id="imp-policy-heading" class="mb-1 text-lg font-semibold">"Impersonation policy"</h2>
            {m2m.then(|| view! { <p class="mb-3 text-sm">"Machine-to-machine applications have no users to impersonate."</p> })}
            <ActionForm action=actions.imp_policy attr:class="space-y-4">
                <input type="hidden" name="csrf" value=csrf.get_value() />
                <input type="hidden" name="id" value=id.get_value() />
                {check("enabled", "Enabled", "Assigned support staff may sign in as a user of this application.", s.enabled)}
                {check("require_approval", "Approval required", "Another owner or operator approves each request (two-person rule).", s.require_approval)}
                {check("notify_user", "Notify the user", "Email the user when an impersonation of their account ends.", s.notify_user)}
                <div class="grid gap-4 sm:grid-cols-2">
                    <div>
                        <label class=LABEL for="imp-max">"Maximum duration (minutes, up to 480)"</label>
                        <input class=INPUT id="imp-max" name="max_minutes" type="number" min="1" max="480"
                            value=s.max_minutes.to_string() disabled=disabled aria-describedby="imp-max-error" />
                        <FieldError id="imp-max-error" message=field(error, "max_duration_secs") />
                    </div>
                    <div>
                        <label class=LABEL for="imp-mode">"Mode (carried in the tokens)"</label>
                        <select class=INPUT id="imp-mode" name="mode" disabled=disabled>
                            <option value="full" selected=s.mode == "full">"Full: act as the user"</option>
                            <option value="read_only" selected=s.mode == "read_only">"Read only: the application should refuse changes"</option>
                        </select>
                    </div>
                </div>
                {s.can_edit.then(|| view! { <button type="submit" class=BUTTON>"Save impersonation policy"</button> })}
            </ActionForm>
        </section>
        <section class=format!("{CARD} mt-6") aria-labelledby="imp-assign-heading">
            <h2 id="imp-assign-heading" class="mb-1 text-lg font-semibold">"Who may impersonate here"</h2>
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Owners and operators need an assignment too; auditors never impersonate."</p>
            {s.assigned.is_empty().then(|| view! { <p class="text-sm">"Nobody is assigned."</p> })}
            <ul class="mb-4 space-y-2 text-sm" data-testid="imp-assigned">
                {s.assigned.clone().into_iter().map(|(staff, label)| view! {
                    <li class="flex items-center justify-between gap-2">
                        <span>{label}</span>
                        {s.can_assign.then(|| view! {
                            <ActionForm action=actions.unassign>
                                <input type="hidden" name="csrf" value=csrf.get_value() />
                                <input type="hidden" name="id" value=id.get_value() />
                                <input type="hidden" name="staff_id" value=staff />
                                <button type="submit" class=BUTTON_QUIET>"Remove"</button>
                            </ActionForm>
                        })}
                    </li>
                }).collect_view()}
            </ul>
            {(s.can_assign && !s.candidates.is_empty()).then(|| view! {
                <ActionForm action=actions.assign attr:class="flex flex-wrap items-end gap-2">
                    <input type="hidden" name="csrf" value=csrf.get_value() />
                    <input type="hidden" name="id" value=id.get_value() />
                    <div class="min-w-64">
                        <label class=LABEL for="imp-staff">"Staff member"</label>
                        <select class=INPUT id="imp-staff" name="staff_id" aria-describedby="imp-staff-error">
                            {s.candidates.iter().map(|(v, l)| view! { <option value=v.clone()>{l.clone()}</option> }).collect_view()}
                        </select>
                        <FieldError id="imp-staff-error" message=field(error, "staff_id") />
                    </div>
                    <button type="submit" class=BUTTON_QUIET>"Assign"</button>
                </ActionForm>
            })}
            {general(error)}
        </section>
    }
}

/// The policy table with one input per value: shared by the application page and Settings.
#[component]
pub fn PolicyFields(
    rows: Vec<PolicyRow>,
    error: Signal<Option<AppError>>,
    editable: bool,
    layer: &'static str,
) -> impl IntoView {
    view! {
        <DataTable headers=vec!["Setting", "In force", "From", "Set here"] testid="policy-table">
            {rows.into_iter().map(|row| {
                let name = format!("policy[{}]", row.key);
                let input_id = format!("policy-{}", row.key);
                let error_id = format!("policy-{}-error", row.key);
                let disabled = !editable || row.fixed;
                let input = if row.is_switch {
                    view! {
                        <select id=input_id.clone() name=name disabled=disabled aria-describedby=error_id.clone()
                            class="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900">
                            <option value="" selected=row.own.is_empty()>{layer}</option>
                            <option value="on" selected=row.own == "on">"On"</option>
                            <option value="off" selected=row.own == "off">"Off"</option>
                        </select>
                    }.into_any()
                } else {
                    view! {
                        <input id=input_id.clone() name=name type="number" inputmode="numeric" disabled=disabled
                            value=row.own.clone() placeholder=layer aria-describedby=error_id.clone()
                            class="w-40 rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900" />
                        <span class="ml-1 text-xs text-slate-500">"seconds"</span>
                    }.into_any()
                };
                view! {
                    <tr data-key=row.key.clone()>
                        <td class="px-3 py-2"><label for=input_id>{row.label.clone()}</label></td>
                        <td class="px-3 py-2 tabular-nums" data-testid="effective">{row.effective.clone()}</td>
                        <td class="px-3 py-2 text-slate-600 dark:text-slate-400" data-testid="source">{row.source.clone()}</td>
                        <td class="px-3 py-2">
                            {input}
                            <FieldError id=error_id message=field(error, row.key.clone()) />
                        </td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
}

#[component]
fn PolicyTab(
    d: AppDetail,
    csrf: String,
    action: ServerAction<UpdateApplicationPolicy>,
) -> impl IntoView {
    let error = failed(action.value());
    view! {
        <section class=CARD aria-label="Session policy">
            <p class="mb-4 text-sm text-slate-600 dark:text-slate-400">
                "Each value comes from this application when set here, otherwise from the environment default (Settings), otherwise from the built-in default for this type. Empty inherits."
            </p>
            <ActionForm action attr:class="space-y-4">
                <input type="hidden" name="csrf" value=csrf />
                <input type="hidden" name="id" value=d.summary.id.clone() />
                <PolicyFields rows=d.policy.clone() error editable=d.can_manage layer="Inherit" />
                {d.can_manage.then(|| view! { <button type="submit" class=BUTTON>"Save session policy"</button> })}
            </ActionForm>
            {general(error)}
        </section>
    }
}

#[component]
fn CredentialsTab(d: AppDetail, csrf: String, actions: Actions) -> impl IntoView {
    let id = d.summary.id.clone();
    view! {
        {d.confidential.then(|| view! {
            <SecretsSection secrets=d.secrets.clone() id=id.clone() csrf=csrf.clone() manage=d.can_manage actions />
        })}
        {(!d.confidential).then(|| view! {
            <section class=format!("{CARD} mb-6")>
                <h2 class="text-lg font-semibold">"Client secrets"</h2>
                <p class="mt-2 text-sm">"Public clients (single-page and native apps) cannot keep a secret, so they never get one; they use PKCE instead."</p>
            </section>
        })}
        <KeysSection keys=d.keys.clone() id csrf manage=d.can_manage actions />
    }
}

#[component]
fn SecretsSection(
    secrets: Vec<SecretRow>,
    id: String,
    csrf: String,
    manage: bool,
    actions: Actions,
) -> impl IntoView {
    let error = Signal::derive(move || {
        [
            failed(actions.new_secret.value()).get(),
            failed(actions.rotate_secret.value()).get(),
            failed(actions.revoke_secret.value()).get(),
        ]
        .into_iter()
        .flatten()
        .next()
    });
    let mut headers = vec!["Secret", "Status", "Created", "Expires", "Last used"];
    if manage {
        headers.push("Actions");
    }
    let (id2, csrf2) = (id.clone(), csrf.clone());
    view! {
        <section class=format!("{CARD} mb-6") aria-labelledby="secrets-heading">
            <div class="mb-4 flex items-center justify-between">
                <h2 id="secrets-heading" class="text-lg font-semibold">"Client secrets"</h2>
                {manage.then(|| view! {
                    <ActionForm action=actions.new_secret>
                        <input type="hidden" name="csrf" value=csrf2 />
                        <input type="hidden" name="id" value=id2 />
                        <button type="submit" class=BUTTON>"New secret"</button>
                    </ActionForm>
                })}
            </div>
            <p class="mb-4 text-sm text-slate-600 dark:text-slate-400">"Up to two active at once: rotate to create a new one and let the old one expire a day later."</p>
            {if secrets.is_empty() {
                view! { <p class="text-sm">"No secrets yet."</p> }.into_any()
            } else {
                view! {
                    <DataTable headers testid="secrets-table">
                        {secrets.into_iter().map(|s| {
                            let (csrf, csrf2, id, id2, sid, sid2) = (csrf.clone(), csrf.clone(), id.clone(), id.clone(), s.id.clone(), s.id.clone());
                            view! {
                                <tr>
                                    <td class="px-3 py-2 font-mono text-xs">{s.display.clone()}</td>
                                    <td class="px-3 py-2"><StatusBadge status=if s.active { "active" } else { "inactive" } /></td>
                                    <td class="px-3 py-2 tabular-nums">{s.created_at.clone()}</td>
                                    <td class="px-3 py-2 tabular-nums">{s.expires_at.clone().unwrap_or_else(|| "never".into())}</td>
                                    <td class="px-3 py-2 tabular-nums">{s.last_used_at.clone().unwrap_or_else(|| "never".into())}</td>
                                    {(manage && s.active).then(|| view! {
                                        <td class="flex gap-2 px-3 py-2">
                                            <ActionForm action=actions.rotate_secret>
                                                <input type="hidden" name="csrf" value=csrf />
                                                <input type="hidden" name="id" value=id />
                                                <input type="hidden" name="secret_id" value=sid />
                                                <button type="submit" class=BUTTON_QUIET>"Rotate"</button>
                                            </ActionForm>
                                            <ActionForm action=actions.revoke_secret>
                                                <input type="hidden" name="csrf" value=csrf2 />
                                                <input type="hidden" name="id" value=id2 />
                                                <input type="hidden" name="secret_id" value=sid2 />
                                                <button type="submit" class=BUTTON_QUIET>"Revoke"</button>
                                            </ActionForm>
                                        </td>
                                    })}
                                </tr>
                            }
                        }).collect_view()}
                    </DataTable>
                }.into_any()
            }}
            {general(error)}
        </section>
    }
}

#[component]
fn KeysSection(
    keys: Vec<KeyRow>,
    id: String,
    csrf: String,
    manage: bool,
    actions: Actions,
) -> impl IntoView {
    let create_error = failed(actions.new_key.value());
    let revoke_error = failed(actions.revoke_key.value());
    let mut headers = vec!["Name", "Key", "Scopes", "Status", "Expires", "Last used"];
    if manage {
        headers.push("Actions");
    }
    let (id2, csrf2) = (id.clone(), csrf.clone());
    view! {
        <section class=CARD aria-labelledby="keys-heading">
            <h2 id="keys-heading" class="text-lg font-semibold">"API keys"</h2>
            <p class="mb-4 mt-1 text-sm text-slate-600 dark:text-slate-400">
                "For this application's backend to call the management API. A key only ever reaches this application, within its scopes."
            </p>
            {if keys.is_empty() {
                view! { <p class="mb-4 text-sm">"No API keys yet."</p> }.into_any()
            } else {
                view! {
                    <DataTable headers testid="keys-table">
                        {keys.into_iter().map(|k| {
                            let (csrf, id, kid) = (csrf.clone(), id.clone(), k.id.clone());
                            view! {
                                <tr data-name=k.name.clone()>
                                    <td class="px-3 py-2">{k.name.clone()}</td>
                                    <td class="px-3 py-2 font-mono text-xs">{format!("{}…", k.prefix)}</td>
                                    <td class="px-3 py-2 text-xs">{if k.scopes.is_empty() { "none".to_owned() } else { k.scopes.join(", ") }}</td>
                                    <td class="px-3 py-2"><StatusBadge status=if k.active { "active" } else { "inactive" } /></td>
                                    <td class="px-3 py-2 tabular-nums">{k.expires_at.clone().unwrap_or_else(|| "never".into())}</td>
                                    <td class="px-3 py-2 tabular-nums">{k.last_used.clone().unwrap_or_else(|| "never".into())}</td>
                                    {(manage && k.active).then(|| view! {
                                        <td class="px-3 py-2">
                                            <ActionForm action=actions.revoke_key>
                                                <input type="hidden" name="csrf" value=csrf />
                                                <input type="hidden" name="id" value=id />
                                                <input type="hidden" name="key_id" value=kid />
                                                <button type="submit" class=BUTTON_QUIET>"Revoke"</button>
                                            </ActionForm>
                                        </td>
                                    })}
                                </tr>
                            }
                        }).collect_view()}
                    </DataTable>
                }.into_any()
            }}
            {general(revoke_error)}
            {manage.then(|| view! {
                <h3 class="mb-2 mt-6 font-semibold">"New API key"</h3>
                <ActionForm action=actions.new_key attr:class="grid gap-4 sm:grid-cols-2">
                    <input type="hidden" name="csrf" value=csrf2 />
                    <input type="hidden" name="id" value=id2 />
                    <div>
                        <label class=LABEL for="key-name">"Key name"</label>
                        <input class=INPUT id="key-name" name="name" aria-describedby="key-name-error" />
                        <FieldError id="key-name-error" message=field(create_error, "name") />
                    </div>
                    <div>
                        <label class=LABEL for="key-expiry">"Expires in (days, optional)"</label>
                        <input class=INPUT id="key-expiry" name="expires_in_days" type="number" min="1" aria-describedby="key-expiry-error" />
                        <FieldError id="key-expiry-error" message=field(create_error, "expires_in_secs") />
                    </div>
                    <fieldset class="sm:col-span-2">
                        <legend class=LABEL>"Scopes"</legend>
                        <div class="mt-1 grid gap-1 sm:grid-cols-2">
                            {SCOPES.into_iter().map(|(value, label)| {
                                let for_id = format!("scope-{}", value.replace(':', "-"));
                                let id = for_id.clone();
                                view! {
                                    <label class="flex items-center gap-2 text-sm" for=for_id>
                                        <input type="checkbox" id=id name=format!("scopes[{value}]") value="on" />
                                        <span><code class="text-xs">{value}</code>" — "{label}</span>
                                    </label>
                                }
                            }).collect_view()}
                        </div>
                        <FieldError id="key-scopes-error" message=field(create_error, "scopes") />
                    </fieldset>
                    <div class="sm:col-span-2"><button type="submit" class=BUTTON>"Create API key"</button></div>
                </ActionForm>
                {general(create_error)}
            })}
        </section>
    }
}

#[component]
fn DangerTab(d: AppDetail, csrf: String, actions: Actions) -> impl IntoView {
    let s = d.summary.clone();
    if !d.can_manage {
        return view! {
            <section class=CARD><p class="text-sm">"Only operators and owners can disable or delete applications."</p></section>
        }
        .into_any();
    }
    let disabled = s.status == "disabled";
    let delete_error = failed(actions.delete.value());
    let status_error = failed(actions.status.value());
    let (csrf2, id2) = (csrf.clone(), s.id.clone());
    view! {
        <section class="rounded-lg border border-red-300 bg-white p-6 shadow-sm dark:border-red-900 dark:bg-slate-900" aria-label="Danger zone">
            <h2 class="text-lg font-semibold">{if disabled { "Enable this application" } else { "Disable this application" }}</h2>
            <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">
                {if disabled {
                    "Sign-ins and token issuance for this application resume."
                } else {
                    "Stops every sign-in and token issuance for this application, and its API keys stop working, until it is enabled again."
                }}
            </p>
            <ActionForm action=actions.status attr:class="mt-3">
                <input type="hidden" name="csrf" value=csrf.clone() />
                <input type="hidden" name="id" value=s.id.clone() />
                <input type="hidden" name="status" value=if disabled { "active" } else { "disabled" } />
                <button type="submit" class=if disabled { BUTTON } else { BUTTON_DANGER }>
                    {if disabled { "Enable application" } else { "Disable application" }}
                </button>
            </ActionForm>
            {general(status_error)}
            <hr class="my-6 border-slate-200 dark:border-slate-800" />
            <h2 class="text-lg font-semibold">"Delete this application"</h2>
            {if s.is_default {
                view! { <p class="mt-1 text-sm">"The default application cannot be deleted."</p> }.into_any()
            } else {
                view! {
                    <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">
                        "Its client ID is never reused. Its audit history stays. Type its name to confirm."
                    </p>
                    <ActionForm action=actions.delete attr:class="mt-3 flex flex-wrap items-start gap-3">
                        <input type="hidden" name="csrf" value=csrf2 />
                        <input type="hidden" name="id" value=id2 />
                        <div class="min-w-[16rem]">
                            <label class="sr-only" for="confirm-name">"Application name"</label>
                            <input class=INPUT id="confirm-name" name="confirm_name" placeholder=s.name.clone() aria-describedby="confirm-name-error" />
                            <FieldError id="confirm-name-error" message=field(delete_error, "confirm_name") />
                        </div>
                        <button type="submit" class=format!("{BUTTON_DANGER} mt-1")>"Delete application"</button>
                    </ActionForm>
                    {general(delete_error)}
                }.into_any()
            }}
        </section>
    }
    .into_any()
}

#[component]
fn RolesTab(d: AppDetail, csrf: String, actions: Actions) -> impl IntoView {
    let error = failed(actions.new_role.value());
    let id = StoredValue::new(d.summary.id.clone());
    let csrf = StoredValue::new(csrf);
    let mut headers = vec!["Role", "Description", "Permissions"];
    if d.can_manage {
        headers.push("Actions");
    }
    view! {
        <section class=CARD aria-label="Roles">
            <p class="mb-4 text-sm text-slate-600 dark:text-slate-400">
                "Roles of this application only: a role here means nothing in another application. Grant them from a user's page."
            </p>
            {if d.roles.is_empty() {
                view! { <p class="mb-4 text-sm">"No roles yet."</p> }.into_any()
            } else {
                view! {
                    <DataTable headers testid="roles-table">
                        {d.roles.into_iter().map(|r| view! {
                            <tr>
                                <td class="px-3 py-2 font-mono">{r.name.clone()}</td>
                                <td class="px-3 py-2">{r.description.clone()}</td>
                                <td class="px-3 py-2 font-mono text-xs">{r.permissions.join(", ")}</td>
                                {d.can_manage.then(|| view! {
                                    <td class="px-3 py-2">
                                        <ActionForm action=actions.delete_role>
                                            <input type="hidden" name="csrf" value=csrf.get_value() />
                                            <input type="hidden" name="id" value=id.get_value() />
                                            <input type="hidden" name="role_id" value=r.id.clone() />
                                            <button type="submit" class=BUTTON_QUIET>"Delete"</button>
                                        </ActionForm>
                                    </td>
                                })}
                            </tr>
                        }).collect_view()}
                    </DataTable>
                }.into_any()
            }}
            {d.can_manage.then(|| view! {
                <h3 class="mb-2 mt-6 font-semibold">"New role"</h3>
                <ActionForm action=actions.new_role attr:class="grid gap-4 sm:grid-cols-3">
                    <input type="hidden" name="csrf" value=csrf.get_value() />
                    <input type="hidden" name="id" value=id.get_value() />
                    <div>
                        <label class=LABEL for="role-name">"Role name"</label>
                        <input class=INPUT id="role-name" name="name" aria-describedby="role-name-error" />
                        <FieldError id="role-name-error" message=field(error, "name") />
                    </div>
                    <div>
                        <label class=LABEL for="role-description">"Description"</label>
                        <input class=INPUT id="role-description" name="description" />
                    </div>
                    <div>
                        <label class=LABEL for="role-permissions">"Permissions (comma-separated)"</label>
                        <input class=INPUT id="role-permissions" name="permissions" aria-describedby="role-permissions-error" />
                        <FieldError id="role-permissions-error" message=field(error, "permissions") />
                    </div>
                    <div class="sm:col-span-3"><button type="submit" class=BUTTON>"Create role"</button></div>
                </ActionForm>
                {general(error)}
            })}
        </section>
    }
}
