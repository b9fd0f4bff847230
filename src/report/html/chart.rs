//! The key-age chart: inline SVG, one stacked bar per age bucket, coloured
//! by verdict through the page's CSS variables. No script, no xmlns URL:
//! inline SVG in HTML needs neither.

use std::fmt::Write;

use super::escape;
use crate::audit::KeyRow;
use crate::report::views::{AgeBucket, age_buckets};

/// A stacked bar per age bucket: compliant at the bottom, then exempt, then
/// non-compliant, with the total above and the bucket below.
pub fn render(out: &mut String, keys: &[KeyRow]) {
    const W: usize = 640;
    const H: usize = 250;
    const LEFT: usize = 40;
    const TOP: usize = 40;
    const PLOT: usize = H - TOP - 40;
    let (buckets, unknown) = age_buckets(keys);
    let max = buckets
        .iter()
        .map(AgeBucket::total)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (W - LEFT) / buckets.len();
    out.push_str("<section>\n<h2>Key age</h2>\n");
    let _ = writeln!(
        out,
        "<svg viewBox=\"0 0 {W} {H}\" width=\"100%\" style=\"max-width:{W}px\" role=\"img\" \
         aria-label=\"Access keys by age in days, coloured by verdict\">"
    );
    out.push_str("<title>Access keys by age (days)</title>\n");
    let legend = [
        ("var(--ok)", "compliant"),
        ("var(--exempt)", "exempt"),
        ("var(--bad)", "non-compliant"),
    ];
    for (i, (colour, label)) in legend.iter().enumerate() {
        let x = LEFT + i * 130;
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"4\" width=\"12\" height=\"12\" style=\"fill:{colour}\"/>\
             <text x=\"{}\" y=\"14\">{label}</text>",
            x + 16
        );
    }
    let base = TOP + PLOT;
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{W}\" y2=\"{base}\" style=\"stroke:var(--line)\"/>"
    );
    for (i, b) in buckets.iter().enumerate() {
        let x = LEFT + i * slot + slot / 5;
        let width = slot * 3 / 5;
        let mut y = base;
        let parts = [
            ("var(--ok)", b.compliant, "compliant"),
            ("var(--exempt)", b.exempt, "exempt"),
            ("var(--bad)", b.non_compliant, "non-compliant"),
        ];
        for (colour, n, what) in parts {
            if n == 0 {
                continue;
            }
            let h = (n * PLOT / max).max(2);
            y -= h;
            let _ = writeln!(
                out,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{width}\" height=\"{h}\" style=\"fill:{colour}\">\
                 <title>{} days: {n} {what}</title></rect>",
                escape(b.label)
            );
        }
        let mid = x + width / 2;
        let _ = writeln!(
            out,
            "<text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
             <text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            y - 4,
            b.total(),
            base + 16,
            escape(b.label)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">age (days since creation)</text>\n</svg>",
        LEFT + (W - LEFT) / 2,
        H - 6
    );
    if unknown > 0 {
        let _ = writeln!(
            out,
            "<p class=\"meta\">{unknown} key(s) without a known creation date are not shown.</p>"
        );
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn bars_carry_counts_labels_and_colours() {
        let mut out = String::new();
        render(&mut out, &fixture::report().keys);
        assert!(out.starts_with("<section>") && out.trim_end().ends_with("</section>"));
        assert_eq!(out.matches("<svg").count(), 1);
        for label in ["0–30", "31–90", "91–180", "181–365", "366–730", "&gt;730"] {
            assert!(out.contains(&format!(">{label}</text>")), "{label}");
        }
        assert!(out.contains("<title>91–180 days: 2 non-compliant</title>"));
        assert!(out.contains("<title>&gt;730 days: 1 exempt</title>"));
        assert!(out.contains("fill:var(--ok)") && out.contains("fill:var(--bad)"));
        assert!(!out.contains("http"));
    }

    #[test]
    fn an_empty_audit_draws_empty_axes() {
        let mut out = String::new();
        render(&mut out, &[]);
        assert!(out.contains("</svg>") && !out.contains("<rect x=\"60\""));
    }
}
