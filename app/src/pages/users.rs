//! Users: the shared pool every application signs in. The list searches by email or name prefix and
//! filters by status and organization through the URL; a user's page shows their profile,
//! organizations, roles per application, live sessions and recent audit events.

use crate::api::Viewer;
use crate::api::users::{
    AddOrgMember, CreateUser, GrantUserRole, RemoveOrgMember, RevokeUserRole, RevokeUserSession,
    SendUserReset, SetUserStatus, UpdateUserProfile, UserChoices, UserDetail, get_user, list_users,
    user_filters,
};
use crate::components::layout::with_me;
use crate::components::ui::encode;
use crate::components::ui::{
    Alert, BUTTON, BUTTON_QUIET, CARD, DataTable, FieldError, INPUT, LABEL, Modal, PageHeader,
    StatusBadge, Toast, notify_on_success,
};
use crate::components::ui::{failed, field};
use crate::pages::impersonation::ImpTable;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

const SELECT: &str = "rounded-md border border-slate-300 bg-white px-2 py-2 text-sm dark:border-slate-700 dark:bg-slate-900";

#[component]
pub fn UsersPage() -> impl IntoView {
    view! {
        <Title text="Users" />
        {with_me(|me| view! { <UsersSection me /> })}
    }
}

#[component]
fn UsersSection(me: Viewer) -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &'static str| query.with(|q| q.get(k)).unwrap_or_default();
    let filters_key = Memo::new(move |_| {
        (
            get("q"),
            get("status"),
            get("organization"),
            get("role"),
            get("after"),
        )
    });
    let create = ServerAction::<CreateUser>::new();
    let users = Resource::new(
        move || (filters_key.get(), create.version().get()),
        |((q, status, org, role, after), _)| {
            list_users(Some(q), Some(status), Some(org), Some(role), Some(after))
        },
    );
    let filters = Resource::new(|| (), |_| user_filters());
    let open = RwSignal::new(false);
    let csrf = StoredValue::new(me.csrf.clone());
    view! {
        <div class="mb-6 flex flex-wrap items-start justify-between gap-4">
            <PageHeader title="Users" subtitle="One account per person, whichever application they sign in to." />
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    filters.await.ok().filter(|f| f.can_manage).map(|_| view! {
                        <button type="button" class=BUTTON on:click=move |_| open.set(true)>"Create user"</button>
                    })
                })}
            </Suspense>
        </div>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let f = filters.await.unwrap_or(UserChoices { organizations: vec![], roles: vec![], applications: vec![], can_manage: false });
                let (q, status, org, role, _) = filters_key.get_untracked();
                view! {
                    <Form method="GET" action="/users" attr:class="mb-4 flex flex-wrap items-end gap-3" attr:role="search">
                        <div class="min-w-[14rem] flex-1">
                            <label class=LABEL for="user-search">"Search"</label>
                            <input class=INPUT id="user-search" name="q" type="search" value=q placeholder="Email or name (starts with)" />
                        </div>
                        <div>
                            <label class=LABEL for="user-status">"Status"</label>
                            <select class=SELECT id="user-status" name="status">
                                <option value="" selected=status.is_empty()>"Any status"</option>
                                {["active", "invited", "disabled"].into_iter().map(|s| view! {
                                    <option value=s selected=status == s>{s}</option>
                                }).collect_view()}
                            </select>
                        </div>
                        <div>
                            <label class=LABEL for="user-org">"Organization"</label>
                            <select class=SELECT id="user-org" name="organization">
                                <option value="" selected=org.is_empty()>"Any organization"</option>
                                {f.organizations.iter().map(|o| view! {
                                    <option value=o.id.clone() selected=org == o.id>{o.label.clone()}</option>
                                }).collect_view()}
                            </select>
                        </div>
                        <div>
                            <label class=LABEL for="user-role">"Application role"</label>
                            <select class=SELECT id="user-role" name="role">
                                <option value="" selected=role.is_empty()>"Any role"</option>
                                {f.roles.iter().map(|r| view! {
                                    <option value=r.id.clone() selected=role == r.id>{r.label.clone()}</option>
                                }).collect_view()}
                            </select>
                        </div>
                        <button type="submit" class=BUTTON_QUIET>"Apply"</button>
                    </Form>
                    {f.can_manage.then(|| view! { <CreateUserDialog open create csrf=csrf.get_value() apps=f.applications.clone() /> })}
                }
            })}
        </Suspense>
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Err(e) => view! { <Alert message=e.message /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <div class="rounded-lg border border-dashed border-slate-300 p-10 text-center text-sm dark:border-slate-700" data-testid="empty">
                            "No users match. Users appear here when you create or invite them, or when they sign up to an application that allows it."
                        </div>
                    }.into_any(),
                    Ok(page) => {
                        let (q, status, org, role, _) = filters_key.get_untracked();
                        let next = page.next_cursor.map(|c| {
                            format!("/users?q={}&status={status}&organization={org}&role={}&after={c}", encode(&q), encode(&role))
                        });
                        view! {
                            <DataTable headers=vec!["Email", "Name", "Status", "Created", "Last sign-in"] testid="users-table">
                                {page.items.into_iter().map(|u| view! {
                                    <tr data-email=u.email.clone()>
                                        <td class="px-3 py-2"><a class="font-medium text-indigo-700 hover:underline dark:text-indigo-300" href=format!("/users/{}", u.id)>{u.email.clone()}</a></td>
                                        <td class="px-3 py-2">{u.name.clone()}</td>
                                        <td class="px-3 py-2"><StatusBadge status=u.status.clone() /></td>
                                        <td class="px-3 py-2 tabular-nums">{u.created_at.get(..10).unwrap_or_default().to_owned()}</td>
                                        <td class="px-3 py-2 tabular-nums">{u.last_sign_in_at.clone().unwrap_or_else(|| "never".into())}</td>
                                    </tr>
                                }).collect_view()}
                            </DataTable>
                            {next.map(|href| view! { <nav class="mt-4" aria-label="Pages"><a class=BUTTON_QUIET href=href rel="next">"Next page"</a></nav> })}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn CreateUserDialog(
    open: RwSignal<bool>,
    create: ServerAction<CreateUser>,
    csrf: String,
    apps: Vec<crate::api::users::Choice>,
) -> impl IntoView {
    let error = failed(create.value());
    let created = move || create.value().get().and_then(|r| r.ok());
    let csrf = StoredValue::new(csrf);
    let apps = StoredValue::new(apps);
    view! {
        <Modal open title="Create user" id="create-user">
            <ActionForm action=create attr:class="space-y-4">
                <input type="hidden" name="csrf" value=csrf.get_value() />
                <div>
                    <label class=LABEL for="new-user-email">"Email"</label>
                    <input class=INPUT id="new-user-email" name="email" type="email" required aria-describedby="new-user-email-error" />
                    <FieldError id="new-user-email-error" message=field(error, "email") />
                </div>
                <div>
                    <label class=LABEL for="new-user-name">"Name"</label>
                    <input class=INPUT id="new-user-name" name="name" />
                </div>
                <div>
                    <label class=LABEL for="new-user-password">"Password (optional; leave empty to send an invitation)"</label>
                    <input class=INPUT id="new-user-password" name="password" type="password" autocomplete="new-password" aria-describedby="new-user-password-error" />
                    <FieldError id="new-user-password-error" message=field(error, "password") />
                </div>
                <div>
                    <label class=LABEL for="new-user-app">"Invitation returns to"</label>
                    <select class=SELECT id="new-user-app" name="application_id">
                        {apps.get_value().into_iter().map(|a| view! { <option value=a.id>{a.label}</option> }).collect_view()}
                    </select>
                </div>
                <div class="flex justify-end gap-2">
                    <button type="button" class=BUTTON_QUIET on:click=move |_| open.set(false)>"Close"</button>
                    <button type="submit" class=BUTTON>"Create"</button>
                </div>
            </ActionForm>
            {move || created().map(|c| view! {
                <div class="mt-4" data-testid="user-created">
                    <Alert success=true message=match &c.invitation_link {
                        Some(_) => format!("Invited {}. The invitation is in the outbox (and on its way by email when SMTP is set up).", c.email),
                        None => format!("Created {}.", c.email),
                    } />
                    <a class="mt-2 inline-block text-sm underline" href=format!("/users/{}", c.id)>"Open the user"</a>
                </div>
            })}
        </Modal>
    }
}

/// Every action of the user page, so the detail reloads after any of them.
#[derive(Clone, Copy)]
struct Actions {
    profile: ServerAction<UpdateUserProfile>,
    status: ServerAction<SetUserStatus>,
    reset: ServerAction<SendUserReset>,
    revoke_session: ServerAction<RevokeUserSession>,
    grant: ServerAction<GrantUserRole>,
    revoke_role: ServerAction<RevokeUserRole>,
    add_org: ServerAction<AddOrgMember>,
    remove_org: ServerAction<RemoveOrgMember>,
}

#[component]
pub fn UserPage() -> impl IntoView {
    view! { {with_me(|me| view! { <UserSection me /> })} }
}

#[component]
fn UserSection(me: Viewer) -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id")).unwrap_or_default());
    let a = Actions {
        profile: ServerAction::new(),
        status: ServerAction::new(),
        reset: ServerAction::new(),
        revoke_session: ServerAction::new(),
        grant: ServerAction::new(),
        revoke_role: ServerAction::new(),
        add_org: ServerAction::new(),
        remove_org: ServerAction::new(),
    };
    let detail = Resource::new(
        move || {
            (
                id.get(),
                [
                    a.profile.version().get(),
                    a.status.version().get(),
                    a.reset.version().get(),
                    a.revoke_session.version().get(),
                    a.grant.version().get(),
                    a.revoke_role.version().get(),
                    a.add_org.version().get(),
                    a.remove_org.version().get(),
                ],
            )
        },
        |(id, _)| get_user(id),
    );
    let toast = RwSignal::new(None::<String>);
    notify_on_success(a.profile, toast, "Saved.");
    notify_on_success(a.status, toast, "Status changed.");
    notify_on_success(a.reset, toast, "Password reset link sent.");
    notify_on_success(a.revoke_session, toast, "Session ended.");
    notify_on_success(a.grant, toast, "Role granted.");
    notify_on_success(a.revoke_role, toast, "Role revoked.");
    notify_on_success(a.add_org, toast, "Added to the organization.");
    notify_on_success(a.remove_org, toast, "Removed from the organization.");
    let csrf = StoredValue::new(me.csrf.clone());
    view! {
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="User" /><Alert message=e.message /> }.into_any(),
                    Ok(d) => view! { <UserDetailView d a csrf=csrf.get_value() /> }.into_any(),
                }
            })}
        </Suspense>
        <Toast message=toast.into() />
    }
}

#[component]
fn UserDetailView(d: UserDetail, a: Actions, csrf: String) -> impl IntoView {
    let u = d.user.clone();
    let manage = d.can_manage;
    let error = Signal::derive(move || {
        [
            failed(a.profile.value()).get(),
            failed(a.status.value()).get(),
            failed(a.reset.value()).get(),
            failed(a.grant.value()).get(),
            failed(a.add_org.value()).get(),
        ]
        .into_iter()
        .flatten()
        .next()
    });
    let csrf = StoredValue::new(csrf);
    let uid = StoredValue::new(u.id.clone());
    let hidden = move || {
        view! {
            <input type="hidden" name="csrf" value=csrf.get_value() />
            <input type="hidden" name="id" value=uid.get_value() />
        }
    };
    let disabled = u.status == "disabled";
    view! {
        <Title text=u.email.clone() />
        <header class="mb-6">
            <p class="text-sm"><a class="text-slate-500 hover:underline" href="/users">"Users"</a></p>
            <div class="mt-1 flex flex-wrap items-center gap-3">
                <h1 class="text-2xl font-semibold tracking-tight">{u.email.clone()}</h1>
                <StatusBadge status=u.status.clone() />
                <a class=BUTTON_QUIET href=format!("/impersonation?user={}", crate::components::ui::encode(&u.email))>"Impersonate…"</a>
            </div>
        </header>
        {move || error.get().filter(|e| e.field.is_none()).map(|e| view! { <div class="mb-4"><Alert message=e.message /></div> })}
        <div class="grid gap-6 lg:grid-cols-2">
            <section class=CARD aria-labelledby="profile-heading">
                <h2 id="profile-heading" class="mb-4 text-lg font-semibold">"Profile"</h2>
                <dl class="mb-4 grid grid-cols-[9rem_1fr] gap-2 text-sm">
                    <dt class="font-medium">"Email verified"</dt><dd>{if u.email_verified { "yes" } else { "no" }}</dd>
                    <dt class="font-medium">"Created"</dt><dd class="tabular-nums">{u.created_at.clone()}</dd>
                    <dt class="font-medium">"Last sign-in"</dt><dd class="tabular-nums">{u.last_sign_in_at.clone().unwrap_or_else(|| "never".into())}</dd>
                    <dt class="font-medium">"Metadata"</dt><dd class="font-mono text-xs">{d.metadata.clone()}</dd>
                </dl>
                {manage.then(|| view! {
                    <ActionForm action=a.profile attr:class="space-y-3">
                        {hidden()}
                        <div>
                            <label class=LABEL for="user-email">"Email"</label>
                            <input class=INPUT id="user-email" name="email" value=u.email.clone() aria-describedby="user-email-error" />
                            <FieldError id="user-email-error" message=field(error, "email") />
                        </div>
                        <div>
                            <label class=LABEL for="user-name">"Name"</label>
                            <input class=INPUT id="user-name" name="name" value=u.name.clone() />
                        </div>
                        <button type="submit" class=BUTTON>"Save profile"</button>
                    </ActionForm>
                    <div class="mt-4 flex flex-wrap gap-2">
                        <ActionForm action=a.status>
                            {hidden()}
                            <input type="hidden" name="status" value=if disabled { "active" } else { "disabled" } />
                            <button type="submit" class=BUTTON_QUIET>{if disabled { "Enable user" } else { "Disable user" }}</button>
                        </ActionForm>
                    </div>
                    <ActionForm action=a.reset attr:class="mt-4 flex flex-wrap items-end gap-2">
                        {hidden()}
                        <div>
                            <label class=LABEL for="reset-app">"Send a password reset that returns to"</label>
                            <select class=SELECT id="reset-app" name="application_id">
                                {d.applications.iter().map(|c| view! { <option value=c.id.clone()>{c.label.clone()}</option> }).collect_view()}
                            </select>
                        </div>
                        <button type="submit" class=BUTTON_QUIET>"Send reset link"</button>
                    </ActionForm>
                })}
            </section>
            <section class=CARD aria-labelledby="orgs-heading">
                <h2 id="orgs-heading" class="mb-4 text-lg font-semibold">"Organizations"</h2>
                {if d.memberships.is_empty() { Some(view! { <p class="text-sm">"Not in any organization."</p> }) } else { None }}
                <ul class="space-y-2 text-sm" data-testid="memberships">
                    {d.memberships.iter().map(|m| {
                        let (csrf, uid, oid) = (csrf.get_value(), uid.get_value(), m.organization_id.clone());
                        view! {
                            <li class="flex items-center justify-between gap-2">
                                <span><a class="underline" href=format!("/organizations/{}", m.organization_id)>{m.organization.clone()}</a>" · "{m.role.clone()}</span>
                                {manage.then(|| view! {
                                    <ActionForm action=a.remove_org>
                                        <input type="hidden" name="csrf" value=csrf />
                                        <input type="hidden" name="organization_id" value=oid />
                                        <input type="hidden" name="user_id" value=uid />
                                        <button type="submit" class=BUTTON_QUIET>"Remove"</button>
                                    </ActionForm>
                                })}
                            </li>
                        }
                    }).collect_view()}
                </ul>
                {(manage && !d.organizations.is_empty()).then(|| view! {
                    <ActionForm action=a.add_org attr:class="mt-4 flex flex-wrap items-end gap-2">
                        <input type="hidden" name="csrf" value=csrf.get_value() />
                        <input type="hidden" name="user_id" value=uid.get_value() />
                        <div>
                            <label class=LABEL for="add-org">"Organization"</label>
                            <select class=SELECT id="add-org" name="organization_id">
                                {d.organizations.iter().map(|c| view! { <option value=c.id.clone()>{c.label.clone()}</option> }).collect_view()}
                            </select>
                        </div>
                        <div>
                            <label class=LABEL for="add-org-role">"Role"</label>
                            <select class=SELECT id="add-org-role" name="role">
                                <option value="member">"member"</option>
                                <option value="admin">"admin"</option>
                            </select>
                        </div>
                        <button type="submit" class=BUTTON_QUIET>"Add"</button>
                    </ActionForm>
                })}
            </section>
            <section class=CARD aria-labelledby="roles-heading">
                <h2 id="roles-heading" class="mb-4 text-lg font-semibold">"Roles per application"</h2>
                {if d.grants.is_empty() { Some(view! { <p class="text-sm">"No application roles."</p> }) } else { None }}
                <ul class="space-y-2 text-sm" data-testid="grants">
                    {d.grants.iter().map(|g| {
                        let (csrf, uid, app, role) = (csrf.get_value(), uid.get_value(), g.application_id.clone(), g.role_id.clone());
                        view! {
                            <li class="flex items-center justify-between gap-2">
                                <span>{g.application.clone()}" · "<code>{g.role.clone()}</code></span>
                                {manage.then(|| view! {
                                    <ActionForm action=a.revoke_role>
                                        <input type="hidden" name="csrf" value=csrf />
                                        <input type="hidden" name="id" value=uid />
                                        <input type="hidden" name="application_id" value=app />
                                        <input type="hidden" name="role_id" value=role />
                                        <button type="submit" class=BUTTON_QUIET>"Revoke"</button>
                                    </ActionForm>
                                })}
                            </li>
                        }
                    }).collect_view()}
                </ul>
                {(manage && !d.roles.is_empty()).then(|| view! {
                    <ActionForm action=a.grant attr:class="mt-4 flex flex-wrap items-end gap-2">
                        {hidden()}
                        <div>
                            <label class=LABEL for="grant-role">"Role"</label>
                            <select class=SELECT id="grant-role" name="role">
                                {d.roles.iter().map(|c| view! { <option value=c.id.clone()>{c.label.clone()}</option> }).collect_view()}
                            </select>
                        </div>
                        <button type="submit" class=BUTTON_QUIET>"Grant"</button>
                    </ActionForm>
                })}
            </section>
            <section class=CARD aria-labelledby="sessions-heading">
                <h2 id="sessions-heading" class="mb-4 text-lg font-semibold">"Active sign-in sessions"</h2>
                {if d.sessions.is_empty() { Some(view! { <p class="text-sm">"No active sessions."</p> }) } else { None }}
                <ul class="space-y-2 text-sm" data-testid="sessions">
                    {d.sessions.iter().map(|s| {
                        let (csrf, uid, sid) = (csrf.get_value(), uid.get_value(), s.id.clone());
                        view! {
                            <li class="flex items-center justify-between gap-2">
                                <span>
                                    {s.application.clone()}" · "{s.ip.clone()}" · since "{s.created_at.clone()}
                                    {(!s.used_by.is_empty()).then(|| view! { <span class="block text-xs text-slate-500">"Signed in to: "{s.used_by.clone()}</span> })}
                                </span>
                                {d.can_revoke.then(|| view! {
                                    <ActionForm action=a.revoke_session>
                                        <input type="hidden" name="csrf" value=csrf />
                                        <input type="hidden" name="id" value=uid />
                                        <input type="hidden" name="session_id" value=sid />
                                        <button type="submit" class=BUTTON_QUIET>"End session"</button>
                                    </ActionForm>
                                })}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </section>
        </div>
        <section class="mt-6" aria-labelledby="user-imp-heading">
            <h2 id="user-imp-heading" class="mb-2 text-lg font-semibold">"Impersonation history"</h2>
            <ImpTable rows=d.impersonations.clone() />
        </section>
        <section class="mt-6" aria-labelledby="events-heading">
            <h2 id="events-heading" class="mb-2 text-lg font-semibold">"Recent activity"</h2>
            <DataTable headers=vec!["Time (UTC)", "Event", "Outcome", "Actor", "IP"] testid="user-events">
                {d.events.into_iter().map(|r| view! {
                    <tr>
                        <td class="whitespace-nowrap px-3 py-2 tabular-nums">{r.created_at}</td>
                        <td class="px-3 py-2 font-mono">{r.event}</td>
                        <td class="px-3 py-2">{r.outcome}</td>
                        <td class="px-3 py-2">{r.actor}</td>
                        <td class="px-3 py-2">{r.ip.unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </DataTable>
        </section>
    }
}
