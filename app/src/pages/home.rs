use crate::components::layout::with_me;
use crate::components::ui::{CARD, PageHeader};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="Home" />
        {with_me(|me| {
            view! {
                <PageHeader
                    title="Dashboard"
                    subtitle=format!("Signed in as {} · {}", me.email, me.role_label)
                />
                <div class="grid gap-4 sm:grid-cols-2 lg:grid-cols-3" data-testid="home-cards">
                    <Card href="/applications" title="Applications" text="Each product surface: client IDs, redirects, session policy, credentials." />
                    <Card href="/users" title="Users" text="One shared pool of end users across every application." />
                    <Card href="/impersonation" title="Impersonation" text="Support sessions as a user inside one application, audited." />
                    {me.can_view_audit.then(|| view! {
                        <Card href="/audit" title="Audit log" text="Every sign-in and change, hash-chained." />
                    })}
                    {me.can_view_staff.then(|| view! {
                        <Card href="/staff" title="Staff" text="Who can use this dashboard, and with which role." />
                    })}
                </div>
                <SignInChart />
            }
        })}
    }
}

#[component]
fn Card(href: &'static str, title: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <a href=href class=format!("{CARD} block hover:border-indigo-400 focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-600")>
            <h2 class="font-semibold">{title}</h2>
            <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">{text}</p>
        </a>
    }
}

const COLOURS: [&str; 8] = [
    "#4f46e5", "#0891b2", "#ca8a04", "#16a34a", "#db2777", "#9333ea", "#ea580c", "#64748b",
];

/// Sign-ins per application per day, the last 14 days: grouped bars drawn as SVG on the server.
#[component]
fn SignInChart() -> impl IntoView {
    let data = Resource::new(|| (), |_| crate::api::audit::sign_ins_per_day());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                data.await.ok().map(|d| {
                    const W: f64 = 960.0;
                    const H: f64 = 160.0;
                    let days = d.days.len().max(1);
                    let apps = d.series.len().max(1);
                    let max = d.series.iter().flat_map(|(_, v)| v.iter().copied()).max().unwrap_or(0).max(1) as f64;
                    let slot = W / days as f64;
                    let bar = (slot - 6.0) / apps as f64;
                    let mut rects = Vec::new();
                    for (a, (name, counts)) in d.series.iter().enumerate() {
                        for (day, n) in counts.iter().enumerate() {
                            if *n == 0 {
                                continue;
                            }
                            let h = *n as f64 / max * (H - 20.0);
                            rects.push(view! {
                                <rect x=format!("{:.1}", day as f64 * slot + 3.0 + a as f64 * bar) y=format!("{:.1}", H - 16.0 - h)
                                    width=format!("{:.1}", (bar - 1.0).max(1.0)) height=format!("{h:.1}") fill=COLOURS[a % COLOURS.len()]>
                                    <title>{format!("{name}, {}: {n}", d.days[day])}</title>
                                </rect>
                            });
                        }
                    }
                    let labels = d.days.iter().enumerate().map(|(i, day)| view! {
                        <text x=format!("{:.1}", i as f64 * slot + slot / 2.0) y=format!("{}", H - 3.0) text-anchor="middle" font-size="10" fill="#64748b">{day.clone()}</text>
                    }).collect_view();
                    view! {
                        <figure class=format!("{CARD} mt-8") data-testid="sign-ins-chart">
                            <h2 class="mb-2 font-semibold">"Sign-ins per application per day"</h2>
                            {d.series.is_empty().then(|| view! { <p class="text-sm">"No sign-ins in the last 14 days."</p> })}
                            <svg viewBox=format!("0 0 {W} {H}") class="h-40 w-full" role="img" aria-label="Sign-ins per application per day, last 14 days">
                                {rects}
                                {labels}
                            </svg>
                            <figcaption class="mt-2 flex flex-wrap gap-x-4 text-xs">
                                {d.series.iter().enumerate().map(|(a, (name, counts))| view! {
                                    <span class="inline-flex items-center gap-1">
                                        <svg width="8" height="8" aria-hidden="true"><rect width="8" height="8" rx="1" fill=COLOURS[a % COLOURS.len()] /></svg>
                                        {format!("{name} ({})", counts.iter().sum::<i64>())}
                                    </span>
                                }).collect_view()}
                            </figcaption>
                        </figure>
                    }
                })
            })}
        </Suspense>
    }
}
