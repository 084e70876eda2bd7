//! Settings: environment-wide defaults — the default session policy, which every application inherits
//! value by value unless it overrides it — the token signing keys, and the mail outbox. Owners change
//! them; operators and auditors read.

use crate::api::Viewer;
use crate::api::applications::{UpdateEnvironmentPolicy, environment_policy};
use crate::api::keys::{RotateSigningKeys, signing_keys};
use crate::components::layout::with_me;
use crate::components::ui::{Alert, BUTTON, CARD, PageHeader, Toast, notify_on_success};
use crate::pages::application::PolicyFields;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Settings" />
        <PageHeader title="Settings" subtitle="Defaults for the whole environment." />
        {with_me(|me| view! {
            <PolicySection me=me.clone() />
            <KeysSection csrf=me.csrf.clone() />
            {me.can_view_outbox.then(|| view! { <OutboxSection /> })}
        })}
    }
}

#[component]
fn PolicySection(me: Viewer) -> impl IntoView {
    let update = ServerAction::<UpdateEnvironmentPolicy>::new();
    let policy = Resource::new(move || update.version().get(), |_| environment_policy());
    let toast = RwSignal::new(None::<String>);
    notify_on_success(update, toast, "Defaults saved.");
    let error = Signal::derive(move || update.value().get().and_then(|r| r.err()));
    let csrf = me.csrf.clone();
    view! {
        <section class=CARD aria-labelledby="policy-heading">
            <h2 id="policy-heading" class="text-lg font-semibold">"Default session policy"</h2>
            <p class="mb-4 mt-1 text-sm text-slate-600 dark:text-slate-400">
                "Applications inherit each value unless they override it. Empty means the built-in default for each application type (shown here for web applications; native apps default to longer lifetimes, single-page apps to shorter ones). Public apps always rotate refresh tokens; machine-to-machine apps never get them."
            </p>
            <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
                {move || {
                    let csrf = csrf.clone();
                    Suspend::new(async move {
                        match policy.await {
                            Err(e) => view! { <Alert message=e.message /> }.into_any(),
                            Ok(p) => view! {
                                <ActionForm action=update attr:class="space-y-4">
                                    <input type="hidden" name="csrf" value=csrf />
                                    <PolicyFields rows=p.rows error editable=p.can_manage layer="Built-in default" />
                                    {p.can_manage.then(|| view! { <button type="submit" class=BUTTON>"Save defaults"</button> })}
                                </ActionForm>
                            }.into_any(),
                        }
                    })
                }}
            </Suspense>
            {move || error.get().filter(|e| e.field.is_none()).map(|e| view! { <div class="mt-4"><Alert message=e.message /></div> })}
        </section>
        <Toast message=toast.into() />
    }
}

/// The signing keys: what the JWKS publishes, and rotation from the dashboard (owners).
#[component]
fn KeysSection(csrf: String) -> impl IntoView {
    let rotate = ServerAction::<RotateSigningKeys>::new();
    let keys = Resource::new(move || rotate.version().get(), |_| signing_keys());
    let toast = RwSignal::new(None::<String>);
    notify_on_success(
        rotate,
        toast,
        "Keys rotated. The next key signs now; the previous one still verifies.",
    );
    let error = Signal::derive(move || rotate.value().get().and_then(|r| r.err()));
    view! {
        <section class=format!("{CARD} mt-6") aria-labelledby="keys-heading">
            <h2 id="keys-heading" class="text-lg font-semibold">"Signing keys"</h2>
            <p class="mb-4 mt-1 text-sm text-slate-600 dark:text-slate-400">
                "Every token is signed with a current key (ES256, or RS256 for applications that ask for it). The JWKS publishes the next key before it signs and the previous one until the tokens it signed expire. Private keys are sealed with the master key and never shown."
            </p>
            <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
                {move || {
                    let csrf = csrf.clone();
                    Suspend::new(async move {
                        match keys.await {
                            Err(e) => view! { <Alert message=e.message /> }.into_any(),
                            Ok(list) => view! {
                                <table class="w-full text-left text-sm" data-testid="signing-keys">
                                    <thead><tr class="text-xs uppercase text-slate-500">
                                        <th class="py-1">"Key ID"</th><th>"Algorithm"</th><th>"Status"</th><th>"Created"</th><th>"Signing since"</th>
                                    </tr></thead>
                                    <tbody>
                                        {list.keys.into_iter().map(|k| {
                                            let status = k.status.clone();
                                            view! {
                                            <tr class="border-t border-slate-200 dark:border-slate-700" data-status=status>
                                                <td class="py-1 font-mono text-xs">{k.kid}</td>
                                                <td>{k.alg}</td>
                                                <td>{k.status}</td>
                                                <td>{k.created_at}</td>
                                                <td>{k.activated_at.unwrap_or_default()}</td>
                                            </tr>
                                        }}).collect_view()}
                                    </tbody>
                                </table>
                                {list.can_rotate.then(|| view! {
                                    <ActionForm action=rotate attr:class="mt-4">
                                        <input type="hidden" name="csrf" value=csrf />
                                        <button type="submit" class=BUTTON>"Rotate keys"</button>
                                    </ActionForm>
                                })}
                            }.into_any(),
                        }
                    })
                }}
            </Suspense>
            {move || error.get().map(|e| view! { <div class="mt-4"><Alert message=e.message /></div> })}
        </section>
        <Toast message=toast.into() />
    }
}

/// The mail outbox: every message Portcullis sent or would send. Without SMTP this is the mailbox,
/// so a fresh install can complete every flow. Owners only: messages carry one-time links.
#[component]
fn OutboxSection() -> impl IntoView {
    let messages = Resource::new(|| (), |_| crate::api::users::outbox());
    view! {
        <section class=format!("{CARD} mt-6") aria-labelledby="outbox-heading">
            <h2 id="outbox-heading" class="text-lg font-semibold">"Outbox"</h2>
            <p class="mb-4 mt-1 text-sm text-slate-600 dark:text-slate-400">
                "Messages to users, newest first. Without an SMTP server (PORTCULLIS_SMTP_URL) they stay here; pass the links on by hand."
            </p>
            <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match messages.await {
                        Err(e) => view! { <Alert message=e.message /> }.into_any(),
                        Ok(rows) if rows.is_empty() => view! { <p class="text-sm">"No messages yet."</p> }.into_any(),
                        Ok(rows) => view! {
                            <ul class="space-y-4" data-testid="outbox">
                                {rows.into_iter().map(|m| view! {
                                    <li class="rounded-md border border-slate-200 p-3 text-sm dark:border-slate-700" data-to=m.to.clone()>
                                        <p class="font-medium">{m.subject.clone()}</p>
                                        <p class="text-xs text-slate-500">{format!("To {} · {} · {}", m.to, m.created_at, m.status)}</p>
                                        <pre class="mt-2 whitespace-pre-wrap break-all font-sans">{m.body.clone()}</pre>
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
