//! The report as one self-contained HTML page: inline CSS and SVG, no
//! script, no file or font fetched, laid out to print on A4. Numbers are
//! written by the formatting module; every figure links to its definition
//! by name (`docs/report.md`).

use std::fmt::Write as _;

use super::figures::{Figures, Row};
use crate::format::count;

/// Text made safe inside HTML and SVG.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Hours and minutes, for times off the library.
fn hours(seconds: u64) -> String {
    let minutes = seconds / 60;
    if minutes == 0 {
        format!("{seconds} s")
    } else if minutes < 60 {
        format!("{minutes} min")
    } else {
        format!("{} h {:02} min", count(minutes / 60), minutes % 60)
    }
}

const STYLE: &str = "
body{font-family:'DejaVu Sans',Arial,sans-serif;color:#1a1a1a;margin:24px;max-width:1000px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:2px solid #1f4e79;padding-bottom:2px;break-after:avoid}
p.scope{margin:0 0 16px;color:#444}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.card{border:1px solid #bbb;border-radius:6px;padding:8px 10px;break-inside:avoid}
.card .v{font-size:24px;font-weight:bold}
.card .l{font-size:12px;color:#444}
.card.bad{border-color:#b00020;background:#fdecee}
.card.good{border-color:#2e7d32;background:#edf7ee}
table{border-collapse:collapse;width:100%;font-size:13px;break-inside:auto}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}
th{background:#eef2f7}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr{break-inside:avoid}
.note{font-size:12px;color:#444}
code{font-size:12px}
svg text{font-family:'DejaVu Sans',Arial,sans-serif}
@page{size:A4;margin:14mm}
@media print{body{margin:0}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
";

/// A horizontal bar chart of labelled values.
fn bars(title: &str, items: &[(String, u64)], colour: &str) -> String {
    if items.is_empty() {
        return format!("<p class=\"note\">{}: none.</p>", esc(title));
    }
    let row = 22;
    let label_w: u128 = 330;
    let bar_w: u128 = 520;
    let height = 26 + row * items.len() as u128;
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(1).max(1);
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"{t}\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"0\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{t}</text>",
        t = esc(title),
        w = label_w + bar_w + 70
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 26 + row * i as u128;
        let w = (u128::from(*v) * bar_w / u128::from(max)).max(1);
        let _ = write!(
            s,
            "<text x=\"{lx}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"end\">{label}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"16\" fill=\"{colour}\"/><text x=\"{vx}\" y=\"{ty}\" font-size=\"12\">{value}</text>",
            lx = label_w - 6,
            ty = y + 12,
            label = esc(label),
            vx = label_w + w + 6,
            value = count(*v)
        );
    }
    s.push_str("</svg>");
    s
}

/// Programmes per day (infusions and boluses stacked), alerts as a dark
/// band at each bar's foot.
fn per_day(f: &Figures) -> String {
    if f.per_day.is_empty() {
        return "<p class=\"note\">No programmes in the period.</p>".to_owned();
    }
    let (left, top, plot_h, width) = (50usize, 30usize, 180usize, 880usize);
    let n = f.per_day.len();
    let slot = (width - left) / n.max(1);
    let bar = slot.saturating_sub(2).max(1);
    // Alerts are counted on their verdict's day, which may hold fewer
    // programmes: the scale takes both.
    let max = f
        .per_day
        .iter()
        .map(|d| (d.infusions + d.boluses).max(d.alerts))
        .max()
        .unwrap_or(1)
        .max(1);
    let scale = |v: u64| (u128::from(v) * plot_h as u128 / u128::from(max)) as usize;
    let height = top + plot_h + 40;
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"Programmes per day\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"0\" y=\"16\" font-size=\"13\" font-weight=\"bold\">Programmes per day: infusions (blue), boluses (orange), alerts (dark band)</text><text x=\"{lx}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"end\">{max}</text><text x=\"{lx}\" y=\"{by}\" font-size=\"11\" text-anchor=\"end\">0</text><line x1=\"{left}\" y1=\"{base}\" x2=\"{width}\" y2=\"{base}\" stroke=\"#888\"/>",
        lx = left - 4,
        ty = top + 10,
        by = top + plot_h,
        base = top + plot_h,
        max = count(max)
    );
    for (i, d) in f.per_day.iter().enumerate() {
        let x = left + i * slot;
        let hi = scale(d.infusions);
        let hb = scale(d.boluses);
        let ha = scale(d.alerts);
        let base = top + plot_h;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{yi}\" width=\"{bar}\" height=\"{hi}\" fill=\"#4f81bd\"><title>{day}: {ni} infusions</title></rect><rect x=\"{x}\" y=\"{yb}\" width=\"{bar}\" height=\"{hb}\" fill=\"#f79646\"><title>{day}: {nb} boluses</title></rect><rect x=\"{x}\" y=\"{ya}\" width=\"{bar}\" height=\"{ha}\" fill=\"#1f2d3d\" opacity=\"0.8\"><title>{day}: {na} alerts</title></rect>",
            yi = base - hi,
            yb = base - hi - hb,
            ya = base - ha,
            day = esc(&d.day),
            ni = count(d.infusions),
            nb = count(d.boluses),
            na = count(d.alerts),
        );
        if n <= 16 || i % n.div_ceil(16) == 0 {
            let _ = write!(
                s,
                "<text x=\"{tx}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"middle\">{label}</text>",
                tx = x + bar / 2,
                ty = base + 14,
                label = esc(d.day.get(5..).unwrap_or(&d.day))
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn card(s: &mut String, value: &str, label: &str, class: &str) {
    let _ = write!(
        s,
        "<div class=\"card {class}\"><div class=\"v\">{}</div><div class=\"l\">{}</div></div>",
        esc(value),
        esc(label)
    );
}

fn rows_table(s: &mut String, rows: &[Row], with_who: bool) {
    s.push_str("<table><tr><th>Drug</th><th>Care area</th><th>Limit</th>");
    if with_who {
        s.push_str("<th>Confirmed by (role)</th><th>Reason given</th>");
    }
    s.push_str("<th>Count</th></tr>");
    for r in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td>",
            esc(&r.drug),
            esc(&r.care_area),
            esc(&r.limit)
        );
        if with_who {
            let _ = write!(
                s,
                "<td>{}</td><td>{}</td>",
                esc(r.role.as_deref().unwrap_or_default()),
                esc(r.reason.as_deref().unwrap_or_default())
            );
        }
        let _ = write!(s, "<td class=\"n\">{}</td></tr>", count(r.count));
    }
    s.push_str("</table>");
}

/// The summary cards.
fn summary(s: &mut String, f: &Figures) {
    s.push_str("<h2>Summary</h2><div class=\"cards\">");
    card(
        s,
        &count(f.programmes.infusions),
        "infusions programmed",
        "",
    );
    card(s, &count(f.programmes.boluses), "boluses programmed", "");
    let ul = &f.under_library;
    card(
        s,
        &format!("{}%", ul.percent),
        &format!(
            "of infusions run under the library ({} of {}; ISMP target 95%: {})",
            count(ul.checked),
            count(ul.total),
            if ul.meets_ismp_95 { "met" } else { "NOT met" }
        ),
        if ul.meets_ismp_95 { "good" } else { "bad" },
    );
    card(
        s,
        &f.alerts.per_100_programmes,
        &format!(
            "alerts per 100 programmes ({} alerts)",
            count(f.alerts.total)
        ),
        "",
    );
    card(s, &count(f.overrides), "soft-limit overrides confirmed", "");
    card(s, &count(f.alerts.hard_limit), "hard-limit stops", "");
    card(
        s,
        &count(f.concentrations_caught.total),
        "wrong concentrations caught at load",
        "",
    );
    card(
        s,
        &format!(
            "{} of {}",
            count(f.boluses_confirmed.by_doctor),
            count(f.boluses_confirmed.confirmed)
        ),
        "boluses confirmed by a doctor",
        "",
    );
    s.push_str("</div>");
}

/// Programmes per day, alerts by kind, and per care area.
fn programmes(s: &mut String, f: &Figures) {
    s.push_str("<h2>Programmes and alerts</h2>");
    s.push_str(&per_day(f));
    let alerts = [
        ("soft limit".to_owned(), f.alerts.soft_limit),
        ("hard limit".to_owned(), f.alerts.hard_limit),
        ("blocked".to_owned(), f.alerts.block),
    ];
    s.push_str(&bars("Alerts by kind", &alerts, "#c0504d"));
    s.push_str("<table><tr><th>Care area</th><th>Programmes (infusions and boluses)</th><th>Checked against the library</th><th>Alerts</th><th>Alerts per 100</th><th>Overrides</th></tr>");
    for a in &f.by_care_area {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&a.care_area),
            count(a.programmes),
            super::figures::percent(a.checked, a.programmes),
            count(a.alerts),
            super::figures::percent(a.alerts, a.programmes),
            count(a.overrides)
        );
    }
    s.push_str("</table>");
}

/// Overrides, the limits overridden most, hard-limit stops.
fn overrides(s: &mut String, f: &Figures) {
    s.push_str("<h2>Soft-limit overrides</h2>");
    let mut by_drug: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for r in &f.overrides_by {
        *by_drug.entry(&r.drug).or_insert(0) += r.count;
    }
    let by_drug: Vec<(String, u64)> = by_drug
        .into_iter()
        .map(|(d, n)| (d.to_owned(), n))
        .collect();
    s.push_str(&bars("Overridden limits by drug", &by_drug, "#f79646"));
    rows_table(s, &f.overrides_by, true);
    s.push_str("<h2>The soft limits overridden most: candidates for revision</h2>");
    s.push_str("<p class=\"note\">A limit overridden again and again is a nuisance alert that teaches people to override. Before changing it, replay the wards' logs against the revised library: <code>pumpgwd library replay REVISED.json --events EXPORT.jsonl...</code> lists every decision that would change (docs/pharmacy.md, step 3).</p>");
    rows_table(s, &f.most_overridden, false);
    s.push_str("<h2>Hard-limit stops</h2>");
    rows_table(s, &f.hard_limit_stops, false);
}

/// The whole page. `source` says where the records came from.
pub fn page(f: &Figures, source: &str, generated_at: &str) -> String {
    let mut s = String::with_capacity(32 * 1024);
    let area = f.scope.care_area.as_deref().unwrap_or("every care area");
    let site = f.scope.site.as_deref().unwrap_or("every site");
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>pumpgw CQI report {from} to {to}</title><style>{STYLE}</style></head><body><h1>Smart-pump safety report (CQI)</h1><p class=\"scope\">From {from} to {to} (UTC, the end excluded) &middot; {site} &middot; {area} &middot; {gw} gateway(s), {rec} records &middot; from {source} &middot; made {gen} by pumpgw. Each figure is defined in docs/report.md.</p>",
        from = esc(&f.scope.from),
        to = esc(&f.scope.to),
        site = esc(site),
        area = esc(area),
        gw = count(f.gateways),
        rec = count(f.records),
        source = esc(source),
        gen = esc(generated_at)
    );
    summary(&mut s, f);
    programmes(&mut s, f);
    overrides(&mut s, f);
    let c = &f.concentrations_caught;
    let _ = write!(
        s,
        "<h2>Concentrations caught at load</h2><table><tr><th>How</th><th>Count</th></tr><tr><td>not a concentration the library allows (blocked)</td><td class=\"n\">{}</td></tr><tr><td>label typed at the terminal differed from the programme</td><td class=\"n\">{}</td></tr><tr><td>differed from the prescriber's order</td><td class=\"n\">{}</td></tr></table>",
        count(c.not_in_library),
        count(c.label_mismatch),
        count(c.order_mismatch)
    );
    s.push_str("<h2>Pumps off the active library</h2>");
    let off: Vec<(String, u64)> = f
        .pumps_off_library
        .iter()
        .map(|p| (format!("{} {}", p.gateway, p.pump), p.seconds / 60))
        .collect();
    s.push_str(&bars(
        "Minutes off the active library, per pump",
        &off,
        "#8064a2",
    ));
    s.push_str("<table><tr><th>Gateway</th><th>Pump</th><th>Times</th><th>Off for</th></tr>");
    for p in &f.pumps_off_library {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&p.gateway),
            esc(&p.pump),
            count(p.episodes),
            hours(p.seconds)
        );
    }
    s.push_str("</table></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_break_out_of_the_page() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn times_off_read_as_hours_and_minutes() {
        assert_eq!(hours(30), "30 s");
        assert_eq!(hours(3_540), "59 min");
        assert_eq!(hours(3_600 * 25 + 60 * 5), "25 h 05 min");
    }
}
