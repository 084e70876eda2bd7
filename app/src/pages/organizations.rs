//! Organizations: groups of users with an organization role per member. Members are added from a
//! user's page; the organization's page lists and removes them.

use crate::api::Viewer;
use crate::api::users::{
    CreateOrganization, RemoveOrgMember, get_organization, list_organizations,
};
use crate::components::layout::with_me;
use crate::components::ui::{
    Alert, BUTTON, BUTTON_QUIET, CARD, DataTable, FieldError, INPUT, PageHeader, Toast,
    notify_on_success,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn OrganizationsPage() -> impl IntoView {
    view! {
        <Title text="Organizations" />
        <PageHeader title="Organizations" subtitle="Customers, companies or teams: groups of users, each member with a role." />
        {with_me(|me| view! { <OrganizationsSection me /> })}
    }
}

#[component]
fn OrganizationsSection(me: Viewer) -> impl IntoView {
    let create = ServerAction::<CreateOrganization>::new();
    let orgs = Resource::new(move || create.version().get(), |_| list_organizations());
    let error = Signal::derive(move || create.value().get().and_then(|r| r.err()));
    let name_error = Signal::derive(move || error.get().and_then(|e| e.for_field("name")));
    let toast = RwSignal::new(None::<String>);
    notify_on_success(create, toast, "Organization created.");
    let csrf = StoredValue::new(me.csrf.clone());
    view! {
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match orgs.await {
                    Err(e) => view! { <Alert message=e.message /> }.into_any(),
                    Ok((rows, manage)) => view! {
                        {manage.then(|| view! {
                            <section class=format!("{CARD} mb-6") aria-labelledby="new-org">
                                <h2 id="new-org" class="mb-3 text-lg font-semibold">"New organization"</h2>
                                <ActionForm action=create attr:class="flex flex-wrap items-start gap-3">
                                    <input type="hidden" name="csrf" value=csrf.get_value() />
                                    <div class="min-w-[16rem]">
                                        <label class="sr-only" for="org-name">"Name"</label>
                                        <input class=INPUT id="org-name" name="name" placeholder="Name" aria-describedby="org-name-error" />
                                        <FieldError id="org-name-error" message=name_error />
                                    </div>
                                    <button type="submit" class=format!("{BUTTON} mt-1")>"Create"</button>
                                </ActionForm>
                            </section>
                        })}
                        {if rows.is_empty() {
                            view! { <p class="text-sm" data-testid="empty">"No organizations yet."</p> }.into_any()
                        } else {
                            view! {
                                <DataTable headers=vec!["Name", "Members", "Created"] testid="organizations-table">
                                    {rows.into_iter().map(|o| view! {
                                        <tr>
                                            <td class="px-3 py-2"><a class="font-medium text-indigo-700 hover:underline dark:text-indigo-300" href=format!("/organizations/{}", o.id)>{o.name}</a></td>
                                            <td class="px-3 py-2 tabular-nums">{o.member_count}</td>
                                            <td class="px-3 py-2 tabular-nums">{o.created_at.get(..10).unwrap_or_default().to_owned()}</td>
                                        </tr>
                                    }).collect_view()}
                                </DataTable>
                            }.into_any()
                        }}
                    }.into_any(),
                }
            })}
        </Suspense>
        <Toast message=toast.into() />
    }
}

#[component]
pub fn OrganizationPage() -> impl IntoView {
    view! { {with_me(|me| view! { <OrganizationSection me /> })} }
}

#[component]
fn OrganizationSection(me: Viewer) -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id")).unwrap_or_default());
    let remove = ServerAction::<RemoveOrgMember>::new();
    let detail = Resource::new(
        move || (id.get(), remove.version().get()),
        |(id, _)| get_organization(id),
    );
    let toast = RwSignal::new(None::<String>);
    notify_on_success(remove, toast, "Removed.");
    let csrf = StoredValue::new(me.csrf.clone());
    view! {
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="Organization" /><Alert message=e.message /> }.into_any(),
                    Ok(d) => {
                        let org_id = d.org.id.clone();
                        let mut headers = vec!["Email", "Name", "Role"];
                        if d.can_manage {
                            headers.push("Actions");
                        }
                        view! {
                            <Title text=d.org.name.clone() />
                            <p class="text-sm"><a class="text-slate-500 hover:underline" href="/organizations">"Organizations"</a></p>
                            <h1 class="mb-6 mt-1 text-2xl font-semibold tracking-tight">{d.org.name.clone()}</h1>
                            {if d.members.is_empty() {
                                view! { <p class="text-sm">"No members yet. Add users from their page."</p> }.into_any()
                            } else {
                                view! {
                                    <DataTable headers testid="members-table">
                                        {d.members.into_iter().map(|m| {
                                            let org_id = org_id.clone();
                                            view! {
                                                <tr>
                                                    <td class="px-3 py-2"><a class="underline" href=format!("/users/{}", m.user_id)>{m.email.clone()}</a></td>
                                                    <td class="px-3 py-2">{m.name.clone()}</td>
                                                    <td class="px-3 py-2">{m.role.clone()}</td>
                                                    {d.can_manage.then(|| view! {
                                                        <td class="px-3 py-2">
                                                            <ActionForm action=remove>
                                                                <input type="hidden" name="csrf" value=csrf.get_value() />
                                                                <input type="hidden" name="organization_id" value=org_id />
                                                                <input type="hidden" name="user_id" value=m.user_id.clone() />
                                                                <button type="submit" class=BUTTON_QUIET>"Remove"</button>
                                                            </ActionForm>
                                                        </td>
                                                    })}
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </DataTable>
                                }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
        <Toast message=toast.into() />
    }
}
