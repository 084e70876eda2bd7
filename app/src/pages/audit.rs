use crate::api::audit::recent_audit;
use crate::components::ui::{Alert, BUTTON_QUIET, DataTable, PageHeader};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AuditPage() -> impl IntoView {
    let before = RwSignal::new(None::<i64>);
    // `?target=<type>:<id>` (a link from an impersonation, say) shows the events about that one thing.
    let query = use_query_map();
    let target = Memo::new(move |_| query.with(|q| q.get("target")).filter(|t| t.contains(':')));
    let events = Resource::new(
        move || (before.get(), target.get()),
        |(before, target)| recent_audit(before, target),
    );
    view! {
        <Title text="Audit log" />
        <PageHeader title="Audit log" subtitle="Every sign-in and change, newest first. Each row is chained to the one before it." />
        {move || target.get().map(|t| view! {
            <p class="mb-4 text-sm" data-testid="audit-filter">
                "Showing events about "<span class="font-mono">{t}</span>" · "
                <a class="underline" href="/audit">"Show all"</a>
            </p>
        })}
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match events.await {
                    Err(e) => view! { <Alert message=e.message /> }.into_any(),
                    Ok(rows) => {
                        let next = rows.last().map(|r| r.seq);
                        let full = rows.len() == 50;
                        view! {
                            <DataTable
                                headers=vec!["#", "Time (UTC)", "Event", "Outcome", "Actor", "Target", "IP", "Detail"]
                                testid="audit-table"
                            >
                                        {rows.into_iter().map(|r| view! {
                                            <tr>
                                                <td class="px-3 py-2 tabular-nums">{r.seq}</td>
                                                <td class="whitespace-nowrap px-3 py-2 tabular-nums">{r.created_at}</td>
                                                <td class="px-3 py-2 font-mono">{r.event}</td>
                                                <td class="px-3 py-2">{r.outcome}</td>
                                                <td class="px-3 py-2">{r.actor}</td>
                                                <td class="px-3 py-2 font-mono text-xs">{r.target.unwrap_or_default()}</td>
                                                <td class="px-3 py-2">{r.ip.unwrap_or_default()}</td>
                                                <td class="max-w-xs truncate px-3 py-2 font-mono text-xs" title=r.detail.clone()>{r.detail.clone()}</td>
                                            </tr>
                                        }).collect_view()}
                            </DataTable>
                            <div class="mt-4 flex gap-2">
                                <Show when=move || before.get().is_some()>
                                    <button type="button" class=BUTTON_QUIET on:click=move |_| before.set(None)>"Newest"</button>
                                </Show>
                                <Show when=move || full>
                                    <button type="button" class=BUTTON_QUIET on:click=move |_| before.set(next)>"Older"</button>
                                </Show>
                            </div>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
