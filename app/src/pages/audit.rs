//! The audit log for security reviewers: filters that live in the URL (a link reproduces the view),
//! keyset pages newest first, one event's page with its before/after diff and related views, the
//! chain verification, and the event catalog. Read-only for everyone: nothing here changes events.

use crate::api::audit::{
    AuditFilter, AuditOptions, VerifyAudit, audit_choices, audit_event, recent_audit,
};
use crate::components::ui::{
    Alert, BUTTON, BUTTON_QUIET, CARD, DataTable, FieldError, INPUT, LABEL, PageHeader, failed,
    field,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

const RANGES: [(&str, &str); 5] = [
    ("", "Any time (or the dates below)"),
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
];

const ACTORS: [(&str, &str); 7] = [
    ("", "Anyone"),
    ("staff", "Staff"),
    ("user", "End user"),
    ("api_key", "API key"),
    ("client", "Application (client)"),
    ("system", "System"),
    ("anonymous", "Anonymous"),
];

fn filter_from_query(get: impl Fn(&str) -> Option<String>) -> AuditFilter {
    let v = |k: &str| get(k).unwrap_or_default();
    AuditFilter {
        range: v("range"),
        from: v("from"),
        to: v("to"),
        actor_type: v("actor_type"),
        actor: v("actor"),
        category: v("category"),
        event: v("event"),
        application: v("application"),
        user: v("user"),
        outcome: v("outcome"),
        ip: v("ip"),
        q: v("q"),
        target: v("target"),
        request: v("request"),
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| query.with(|q| filter_from_query(|k| q.get(k))));
    let before = Memo::new(move |_| {
        query
            .with(|q| q.get("before"))
            .and_then(|b| b.parse::<i64>().ok())
    });
    let events = Resource::new(
        move || (filter.get(), before.get()),
        |(f, b)| recent_audit(Some(f), b),
    );
    let choices = Resource::new(|| (), |_| audit_choices());
    let chart = Resource::new(
        move || filter.get(),
        |f| crate::api::audit::audit_chart(Some(f)),
    );
    view! {
        <Title text="Audit log" />
        <PageHeader title="Audit log" subtitle="Every sign-in and change, newest first. Each row is chained to the one before it." />
        <p class="mb-4 flex flex-wrap gap-4 text-sm">
            <a class="underline" href="/audit/catalog">"Event catalog"</a>
            <a class="underline" href="/audit/streams">"Streams (SIEM webhooks)"</a>
        </p>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                choices.await.ok().map(|c| {
                    let retention = match (c.retention_days, c.checkpoint.clone()) {
                        (0, _) => "Events are kept forever.".to_owned(),
                        (days, None) => format!("Events are kept for {days} days; none have been purged yet."),
                        (days, Some((seq, at))) => format!(
                            "Events are kept for {days} days. Events up to #{seq} were purged ({at}); a signed checkpoint records the chain head there."
                        ),
                    };
                    view! {
                        <Filters c f=filter.get_untracked() />
                        <p class="mb-4 text-xs text-slate-500" data-testid="retention">{retention}</p>
                    }
                })
            })}
        </Suspense>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                chart.await.ok().map(|c| view! { <EventsChart c /> })
            })}
        </Suspense>
        <Verify />
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match events.await {
                    Err(e) => view! { <Alert message=e.message /> }.into_any(),
                    Ok(rows) => {
                        let base = filter.get_untracked().query();
                        let older = (rows.len() == 50).then(|| rows.last().map(|r| r.seq)).flatten().map(|seq| {
                            let sep = if base.is_empty() { "" } else { "&" };
                            format!("/audit?{base}{sep}before={seq}")
                        });
                        let newest = before.get_untracked().map(|_| format!("/audit?{base}"));
                        view! {
                            <DataTable
                                headers=vec!["#", "Time (UTC)", "Event", "Outcome", "Actor", "Target", "IP", "Detail"]
                                testid="audit-table"
                            >
                                {rows.into_iter().map(|r| view! {
                                    <tr>
                                        <td class="px-3 py-2 tabular-nums"><a class="underline" href=format!("/audit/events/{}", r.seq)>{r.seq}</a></td>
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
                            <div class="mt-4 flex flex-wrap items-center gap-2">
                                {newest.map(|h| view! { <a class=BUTTON_QUIET href=h>"Newest"</a> })}
                                {older.map(|h| view! { <a class=BUTTON_QUIET href=h data-testid="older">"Older"</a> })}
                                <span class="ml-auto text-sm">"Export this view (oldest first):"</span>
                                <a class=BUTTON_QUIET href=format!("/audit/export?format=csv&{base}") download="">"CSV"</a>
                                <a class=BUTTON_QUIET href=format!("/audit/export?format=ndjson&{base}") download="">"NDJSON"</a>
                            </div>
                            <form method="get" action="/audit/export/signature" class="mt-3 flex flex-wrap items-end gap-2 text-sm" aria-label="Signature of an export">
                                {hidden_filters(&filter.get_untracked())}
                                <div>
                                    <label class=LABEL for="sig-format">"Format"</label>
                                    <select class=INPUT id="sig-format" name="format">
                                        <option value="csv">"CSV"</option>
                                        <option value="ndjson">"NDJSON"</option>
                                    </select>
                                </div>
                                <div>
                                    <label class=LABEL for="sig-through">"Export’s number (audit-N.csv)"</label>
                                    <input class=INPUT id="sig-through" name="through" inputmode="numeric" required />
                                </div>
                                <button type="submit" class=BUTTON_QUIET>"Get its signature"</button>
                            </form>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// The current filters as hidden inputs (the signature form regenerates the same export).
fn hidden_filters(f: &AuditFilter) -> impl IntoView + use<> {
    f.pairs()
        .into_iter()
        .map(|(k, v)| view! { <input type="hidden" name=k value=v /> })
        .collect_view()
}

/// The filter form: a plain GET, so the URL carries the view and it works without JavaScript.
#[component]
fn Filters(c: AuditOptions, f: AuditFilter) -> impl IntoView {
    let select = |id: &'static str,
                  label: &'static str,
                  name: &'static str,
                  current: String,
                  options: Vec<(String, String)>| {
        view! {
            <div>
                <label class=LABEL for=id>{label}</label>
                <select class=INPUT id=id name=name>
                    {options.into_iter().map(|(v, l)| {
                        let selected = v == current;
                        view! { <option value=v selected=selected>{l}</option> }
                    }).collect_view()}
                </select>
            </div>
        }
    };
    let text = |id: &'static str,
                label: &'static str,
                name: &'static str,
                value: String,
                kind: &'static str| {
        view! {
            <div>
                <label class=LABEL for=id>{label}</label>
                <input class=INPUT id=id name=name type=kind value=value />
            </div>
        }
    };
    let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    let mut categories = vec![(String::new(), "Any category".to_owned())];
    categories.extend(c.categories.iter().map(|x| (x.clone(), x.clone())));
    let mut events = vec![(String::new(), "Any event".to_owned())];
    events.extend(c.catalog.iter().map(|e| (e.name.clone(), e.name.clone())));
    let mut apps = vec![(String::new(), "Any application".to_owned())];
    apps.extend(c.applications.iter().cloned());
    let outcomes = owned(&[
        ("", "Any outcome"),
        ("success", "Success"),
        ("failure", "Failure"),
    ]);
    view! {
        <form method="get" action="/audit" class=format!("{CARD} mb-6 grid gap-4 sm:grid-cols-2 lg:grid-cols-4") aria-label="Filter the audit log" data-testid="audit-filters">
            {select("f-range", "Time", "range", f.range.clone(), owned(&RANGES))}
            {text("f-from", "From (UTC)", "from", f.from.clone(), "datetime-local")}
            {text("f-to", "To (UTC)", "to", f.to.clone(), "datetime-local")}
            {select("f-actor-type", "Actor", "actor_type", f.actor_type.clone(), owned(&ACTORS))}
            {text("f-actor", "Actor id", "actor", f.actor.clone(), "text")}
            {select("f-category", "Category", "category", f.category.clone(), categories)}
            {select("f-event", "Event", "event", f.event.clone(), events)}
            {select("f-application", "Application", "application", f.application.clone(), apps)}
            {text("f-user", "End user id", "user", f.user.clone(), "text")}
            {select("f-outcome", "Outcome", "outcome", f.outcome.clone(), outcomes)}
            {text("f-ip", "IP address", "ip", f.ip.clone(), "text")}
            {text("f-q", "Text in details", "q", f.q.clone(), "search")}
            {(!f.target.is_empty()).then(|| view! { <input type="hidden" name="target" value=f.target.clone() /> })}
            {(!f.request.is_empty()).then(|| view! { <input type="hidden" name="request" value=f.request.clone() /> })}
            <div class="flex items-end gap-2 sm:col-span-2 lg:col-span-4">
                <button type="submit" class=BUTTON>"Apply filters"</button>
                <a class=BUTTON_QUIET href="/audit">"Reset"</a>
                {(!f.target.is_empty()).then(|| view! {
                    <span class="text-sm" data-testid="audit-filter">"About "<span class="font-mono">{f.target.clone()}</span></span>
                })}
                {(!f.request.is_empty()).then(|| view! {
                    <span class="text-sm">"Request "<span class="font-mono">{f.request.clone()}</span></span>
                })}
            </div>
        </form>
    }
}

/// Recomputes the hash chain over a range of events and says whether it is intact.
#[component]
fn Verify() -> impl IntoView {
    let action = ServerAction::<VerifyAudit>::new();
    let error = failed(action.value());
    view! {
        <section class=format!("{CARD} mb-6") aria-labelledby="verify-heading">
            <h2 id="verify-heading" class="mb-2 text-lg font-semibold">"Verify the chain"</h2>
            <ActionForm action attr:class="flex flex-wrap items-end gap-3">
                <div>
                    <label class=LABEL for="verify-from">"From #"</label>
                    <input class=INPUT id="verify-from" name="from" inputmode="numeric" placeholder="first" aria-describedby="verify-from-error" />
                    <FieldError id="verify-from-error" message=field(error, "from") />
                </div>
                <div>
                    <label class=LABEL for="verify-to">"To #"</label>
                    <input class=INPUT id="verify-to" name="to" inputmode="numeric" placeholder="newest" aria-describedby="verify-to-error" />
                    <FieldError id="verify-to-error" message=field(error, "to") />
                </div>
                <button type="submit" class=BUTTON_QUIET disabled=move || action.pending().get()>"Verify"</button>
            </ActionForm>
            <div class="mt-3 text-sm" data-testid="verify-result" role="status">
                {move || action.value().get().and_then(|r| r.ok()).map(|v| match (v.first_broken, v.checkpoint_problem) {
                    (None, _) => {
                        let from = v.checkpoint.map(|cp| format!(" (from the signed retention checkpoint after #{cp})")).unwrap_or_default();
                        view! { <p class="font-medium text-emerald-700 dark:text-emerald-400">{format!("Intact: {} events checked{from}.", v.checked)}</p> }.into_any()
                    }
                    (Some(_), Some(problem)) => view! {
                        <p class="font-medium text-red-700 dark:text-red-400">{format!("Broken: the retention checkpoint cannot be trusted ({problem}).")}</p>
                    }.into_any(),
                    (Some(seq), None) => view! {
                        <p class="font-medium text-red-700 dark:text-red-400">
                            {format!("Broken at #{seq} ({} events checked before it). ", v.checked)}
                            <a class="underline" href=format!("/audit/events/{seq}")>"Open it"</a>
                        </p>
                    }.into_any(),
                })}
            </div>
        </section>
    }
}

#[component]
pub fn AuditEventPage() -> impl IntoView {
    let params = use_params_map();
    let seq = Memo::new(move |_| {
        params
            .with(|p| p.get("seq"))
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    });
    let event = Resource::new(move || seq.get(), audit_event);
    view! {
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match event.await {
                    Err(e) => view! { <Title text="Audit event" /><Alert message=e.message /> }.into_any(),
                    Ok(d) => {
                        let r = d.row.clone();
                        view! {
                            <Title text=format!("#{} {}", r.seq, r.event) />
                            <p class="text-sm"><a class="text-slate-500 hover:underline" href="/audit">"Audit log"</a></p>
                            <h1 class="mb-1 mt-1 font-mono text-2xl font-semibold">{format!("#{} {}", r.seq, r.event)}</h1>
                            <p class="mb-6 text-sm text-slate-600 dark:text-slate-400">{d.description.clone()}</p>
                            <div class="grid gap-6 lg:grid-cols-2">
                                <section class=CARD aria-label="Fields">
                                    <dl class="grid grid-cols-[9rem_1fr] gap-2 text-sm" data-testid="event-fields">
                                        <dt class="font-medium">"Time (UTC)"</dt><dd class="tabular-nums">{r.created_at.clone()}</dd>
                                        <dt class="font-medium">"Category"</dt><dd>{d.category.clone()}</dd>
                                        <dt class="font-medium">"Outcome"</dt><dd>{r.outcome.clone()}</dd>
                                        <dt class="font-medium">"Actor"</dt><dd>{r.actor.clone()}</dd>
                                        <dt class="font-medium">"Target"</dt><dd class="font-mono text-xs">{r.target.clone().unwrap_or_default()}</dd>
                                        <dt class="font-medium">"IP"</dt><dd>{r.ip.clone().unwrap_or_default()}</dd>
                                        <dt class="font-medium">"User agent"</dt><dd class="text-xs">{d.user_agent.clone().unwrap_or_default()}</dd>
                                        <dt class="font-medium">"Request"</dt><dd class="font-mono text-xs">{d.request_id.clone().unwrap_or_default()}</dd>
                                        <dt class="font-medium">"Event id"</dt><dd class="font-mono text-xs">{d.event_id.clone()}</dd>
                                        <dt class="font-medium">"Hash"</dt><dd class="break-all font-mono text-xs">{d.hash.clone()}</dd>
                                        <dt class="font-medium">"Previous hash"</dt><dd class="break-all font-mono text-xs">{d.prev_hash.clone()}</dd>
                                    </dl>
                                </section>
                                <section class=CARD aria-label="Links">
                                    <h2 class="mb-2 text-lg font-semibold">"Links"</h2>
                                    <ul class="mb-4 space-y-1 text-sm">
                                        {d.links.iter().map(|l| view! { <li><a class="underline" href=l.href.clone()>{l.label.clone()}</a></li> }).collect_view()}
                                    </ul>
                                    <h2 class="mb-2 text-lg font-semibold">"Show related"</h2>
                                    <ul class="space-y-1 text-sm" data-testid="related">
                                        {d.related.iter().map(|l| view! { <li><a class="underline" href=l.href.clone()>{l.label.clone()}</a></li> }).collect_view()}
                                    </ul>
                                </section>
                            </div>
                            {(!d.changes.is_empty()).then(|| view! {
                                <section class="mt-6" aria-labelledby="diff-heading">
                                    <h2 id="diff-heading" class="mb-2 text-lg font-semibold">"What changed"</h2>
                                    <DataTable headers=vec!["Field", "Before", "After"] testid="event-diff">
                                        {d.changes.iter().map(|c| {
                                            let changed = c.before != c.after;
                                            view! {
                                                <tr data-changed=changed.to_string()>
                                                    <td class="px-3 py-2 font-mono">{c.field.clone()}</td>
                                                    <td class=if changed { "px-3 py-2 font-mono text-xs bg-red-50 dark:bg-red-950" } else { "px-3 py-2 font-mono text-xs" }>{c.before.clone().unwrap_or_else(|| "—".into())}</td>
                                                    <td class=if changed { "px-3 py-2 font-mono text-xs bg-emerald-50 dark:bg-emerald-950" } else { "px-3 py-2 font-mono text-xs" }>{c.after.clone().unwrap_or_else(|| "—".into())}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </DataTable>
                                </section>
                            })}
                            <section class="mt-6" aria-labelledby="detail-heading">
                                <h2 id="detail-heading" class="mb-2 text-lg font-semibold">"Detail"</h2>
                                <pre class=format!("{CARD} overflow-x-auto text-xs") data-testid="event-detail">{d.detail_pretty.clone()}</pre>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Every event Portcullis writes: the catalog reviewers read the log with.
#[component]
pub fn AuditCatalogPage() -> impl IntoView {
    let choices = Resource::new(|| (), |_| audit_choices());
    view! {
        <Title text="Event catalog" />
        <PageHeader title="Event catalog" subtitle="Every audit event: its category, what it means, what it is about, and the fields of its detail." />
        <Suspense fallback=|| view! { <p class="text-sm">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match choices.await {
                    Err(e) => view! { <Alert message=e.message /> }.into_any(),
                    Ok(c) => view! {
                        <DataTable headers=vec!["Event", "Category", "v", "About", "Meaning", "Detail fields"] testid="event-catalog">
                            {c.catalog.into_iter().map(|e| view! {
                                <tr>
                                    <td class="px-3 py-2 font-mono"><a class="underline" href=format!("/audit?event={}", e.name)>{e.name.clone()}</a></td>
                                    <td class="px-3 py-2">{e.category}</td>
                                    <td class="px-3 py-2 tabular-nums">{e.version}</td>
                                    <td class="px-3 py-2">{e.target.unwrap_or_default()}</td>
                                    <td class="px-3 py-2">{e.description}</td>
                                    <td class="px-3 py-2 font-mono text-xs">{e.fields.join(", ")}</td>
                                </tr>
                            }).collect_view()}
                        </DataTable>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// One colour per catalog category (Tailwind 600s), in the catalog's order.
const COLOURS: [&str; 13] = [
    "#4f46e5", "#0891b2", "#ca8a04", "#16a34a", "#64748b", "#db2777", "#9333ea", "#ea580c",
    "#0d9488", "#2563eb", "#dc2626", "#65a30d", "#78716c",
];

/// Events over time by category, stacked bars drawn on the server as SVG (no JavaScript needed).
#[component]
fn EventsChart(c: crate::api::audit::Chart) -> impl IntoView {
    const W: f64 = 960.0;
    const H: f64 = 140.0;
    let buckets = c.series.first().map_or(0, |(_, v)| v.len());
    let totals: Vec<i64> = (0..buckets)
        .map(|i| c.series.iter().map(|(_, v)| v[i]).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar = if buckets == 0 { W } else { W / buckets as f64 };
    let colour = |category: &str| {
        let i = crate::api::audit::CATEGORY_ORDER
            .iter()
            .position(|c| *c == category)
            .unwrap_or(0);
        COLOURS[i % COLOURS.len()]
    };
    let mut rects = Vec::new();
    for i in 0..buckets {
        let mut y = H;
        for (category, counts) in &c.series {
            let n = counts[i];
            if n == 0 {
                continue;
            }
            let h = n as f64 / max * (H - 4.0);
            y -= h;
            rects.push(view! {
                <rect x=format!("{:.1}", i as f64 * bar + 1.0) y=format!("{y:.1}") width=format!("{:.1}", (bar - 2.0).max(1.0))
                    height=format!("{h:.1}") fill=colour(category)>
                    <title>{format!("{category}: {n}")}</title>
                </rect>
            });
        }
    }
    let total: i64 = totals.iter().sum();
    let label = format!(
        "{total} events from {} to {} (UTC), {} min per bar",
        c.from, c.to, c.bucket_minutes
    );
    view! {
        <figure class=format!("{CARD} mb-6") data-testid="audit-chart">
            <svg viewBox=format!("0 0 {W} {H}") class="h-36 w-full" role="img" aria-label=label.clone() preserveAspectRatio="none">
                {rects}
            </svg>
            <figcaption class="mt-2 flex flex-wrap gap-x-4 gap-y-1 text-xs">
                <span class="text-slate-500">{label}</span>
                {c.series.iter().map(|(category, counts)| view! {
                    <span class="inline-flex items-center gap-1">
                        <svg width="8" height="8" aria-hidden="true"><rect width="8" height="8" rx="1" fill=colour(category) /></svg>
                        {format!("{category} ({})", counts.iter().sum::<i64>())}
                    </span>
                }).collect_view()}
            </figcaption>
        </figure>
    }
}
