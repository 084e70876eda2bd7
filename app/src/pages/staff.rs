//! Staff: who can use the dashboard. Owners invite, change roles, disable and enable; the server checks
//! every one of those, the UI only hides what the role cannot do.

use crate::api::staff::{ChangeStaffRole, InviteStaff, SetStaffEnabled, list_staff};
use crate::api::{ROLES, StaffRow, Viewer};
use crate::components::layout::with_me;
use crate::components::ui::{
    Alert, BUTTON, BUTTON_QUIET, CARD, DataTable, FieldError, INPUT, LABEL, PageHeader,
};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn StaffPage() -> impl IntoView {
    view! {
        <Title text="Staff" />
        <PageHeader title="Staff" subtitle="The people who use this dashboard and their roles." />
        {with_me(|me| view! { <StaffSection me /> })}
    }
}

#[component]
fn StaffSection(me: Viewer) -> impl IntoView {
    let invite = ServerAction::<InviteStaff>::new();
    let change_role = ServerAction::<ChangeStaffRole>::new();
    let set_enabled = ServerAction::<SetStaffEnabled>::new();
    let staff = Resource::new(
        move || {
            (
                invite.version().get(),
                change_role.version().get(),
                set_enabled.version().get(),
            )
        },
        |_| list_staff(),
    );
    let row_error = Signal::derive(move || {
        [change_role.value().get(), set_enabled.value().get()]
            .into_iter()
            .flatten()
            .find_map(|r| r.err())
            .map(|e| e.message)
    });
    let manage = me.can_manage_staff;
    let csrf = me.csrf.clone();
    view! {
        {manage.then(|| view! { <InviteForm invite csrf=csrf.clone() /> })}
        <Show when=move || row_error.get().is_some()>
            <div class="mb-4"><Alert message=row_error.get().unwrap_or_default() /></div>
        </Show>
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || {
                let csrf = csrf.clone();
                Suspend::new(async move {
                    match staff.await {
                        Err(e) => view! { <Alert message=e.message /> }.into_any(),
                        Ok(rows) => view! {
                            <StaffTable rows manage csrf change_role set_enabled />
                        }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn InviteForm(invite: ServerAction<InviteStaff>, csrf: String) -> impl IntoView {
    let result = invite.value();
    let error = move || result.get().and_then(|r| r.err());
    let email_error = Signal::derive(move || error().and_then(|e| e.for_field("email")));
    let role_error = Signal::derive(move || error().and_then(|e| e.for_field("role")));
    let other_error = move || error().filter(|e| e.field.is_none()).map(|e| e.message);
    view! {
        <section class=format!("{CARD} mb-8") aria-labelledby="invite-heading">
            <h2 id="invite-heading" class="mb-4 text-lg font-semibold">"Invite a staff member"</h2>
            <ActionForm action=invite attr:class="grid gap-4 sm:grid-cols-[1fr_14rem_auto] sm:items-start">
                <input type="hidden" name="csrf" value=csrf />
                <div>
                    <label class=LABEL for="invite-email">"Email"</label>
                    <input class=INPUT id="invite-email" name="email" type="email" required
                        aria-describedby="invite-email-error" />
                    <FieldError id="invite-email-error" message=email_error />
                </div>
                <div>
                    <label class=LABEL for="invite-role">"Role"</label>
                    <select class=INPUT id="invite-role" name="role" aria-describedby="invite-role-error">
                        {ROLES.into_iter().map(|(value, label)| view! {
                            <option value=value selected=value == "operator">{label}</option>
                        }).collect_view()}
                    </select>
                    <FieldError id="invite-role-error" message=role_error />
                </div>
                <button type="submit" class=format!("{BUTTON} sm:mt-6") disabled=move || invite.pending().get()>
                    "Send invitation"
                </button>
            </ActionForm>
            {move || other_error().map(|m| view! { <div class="mt-4"><Alert message=m /></div> })}
            {move || result.get().and_then(|r| r.ok()).map(|inv| view! {
                <div class="mt-4 rounded-md border border-emerald-300 bg-emerald-50 p-4 text-sm dark:border-emerald-800 dark:bg-emerald-950" data-testid="invite-result">
                    <p class="font-medium">{format!("Invitation created for {} ({}).", inv.email, inv.role)}</p>
                    <p class="mt-1">"Send them this link. It is shown only once and works until "{inv.expires_at.clone()}"."</p>
                    <input class=format!("{INPUT} font-mono") readonly aria-label="Invitation link" data-testid="invite-link" value=inv.link.clone() />
                </div>
            })}
        </section>
    }
}

#[component]
fn StaffTable(
    rows: Vec<StaffRow>,
    manage: bool,
    csrf: String,
    change_role: ServerAction<ChangeStaffRole>,
    set_enabled: ServerAction<SetStaffEnabled>,
) -> impl IntoView {
    let mut headers = vec!["Email", "Role", "Status", "Since"];
    if manage {
        headers.push("Actions");
    }
    view! {
        <DataTable headers testid="staff-table">
                    {rows.into_iter().map(|row| {
                        let csrf = csrf.clone();
                        let email = row.email.clone();
                        let email_attr = row.email.clone();
                        let role = row.role.clone();
                        let status = row.status.clone();
                        let since = row.created_at.get(..10).unwrap_or_default().to_owned();
                        view! {
                            <tr data-email=email_attr>
                                <td class="px-3 py-2">{email}</td>
                                <td class="px-3 py-2" data-testid="role">{role}</td>
                                <td class="px-3 py-2" data-testid="status">{status}</td>
                                <td class="whitespace-nowrap px-3 py-2 tabular-nums">{since}</td>
                                {manage.then(|| view! { <td class="px-3 py-2"><RowActions row csrf change_role set_enabled /></td> })}
                            </tr>
                        }
                    }).collect_view()}
        </DataTable>
    }
}

#[component]
fn RowActions(
    row: StaffRow,
    csrf: String,
    change_role: ServerAction<ChangeStaffRole>,
    set_enabled: ServerAction<SetStaffEnabled>,
) -> impl IntoView {
    let disabled = row.status == "disabled";
    let select_id = format!("role-{}", row.id);
    let select_label = format!("Role of {}", row.email);
    let (csrf2, id2) = (csrf.clone(), row.id.clone());
    let current_role = row.role.clone();
    view! {
        <div class="flex flex-wrap items-center gap-2">
            <ActionForm action=change_role attr:class="flex items-center gap-2">
                <input type="hidden" name="csrf" value=csrf />
                <input type="hidden" name="staff_id" value=row.id />
                <label class="sr-only" for=select_id.clone()>{select_label}</label>
                <select id=select_id class="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900" name="role">
                    {ROLES.into_iter().map(|(value, label)| view! {
                        <option value=value selected=value == current_role>{label}</option>
                    }).collect_view()}
                </select>
                <button type="submit" class=BUTTON_QUIET>"Change role"</button>
            </ActionForm>
            <ActionForm action=set_enabled>
                <input type="hidden" name="csrf" value=csrf2 />
                <input type="hidden" name="staff_id" value=id2 />
                <input type="hidden" name="enabled" value=if disabled { "true" } else { "false" } />
                <button type="submit" class=BUTTON_QUIET>{if disabled { "Enable" } else { "Disable" }}</button>
            </ActionForm>
        </div>
    }
}
