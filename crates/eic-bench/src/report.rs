//! Statistics, plain-text tables and the targets' summary.

use std::fmt::Write as _;

/// The summary of a set of samples.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stats {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) p99: f64,
}

/// The finite samples of `v` summed up, if there are any.
pub(crate) fn stats(v: &[f64]) -> Option<Stats> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return None;
    }
    let median = if n % 2 == 1 {
        *s.get(n / 2)?
    } else {
        (s.get(n / 2 - 1)? + s.get(n / 2)?) / 2.0
    };
    // Nearest rank.
    let rank = ((0.99 * n as f64).ceil() as usize).clamp(1, n);
    Some(Stats {
        median,
        min: *s.first()?,
        max: *s.last()?,
        p99: *s.get(rank - 1)?,
    })
}

/// The median of `v`.
pub(crate) fn med(v: &[f64]) -> Option<f64> {
    stats(v).map(|s| s.median)
}

/// `123.4 (120.0–130.2)`.
pub(crate) fn spread(v: &[f64], decimals: usize) -> String {
    match stats(v) {
        Some(s) if v.len() > 1 => format!(
            "{:.d$} ({:.d$}–{:.d$})",
            s.median,
            s.min,
            s.max,
            d = decimals
        ),
        Some(s) => format!("{:.d$}", s.median, d = decimals),
        None => "—".into(),
    }
}

/// `PASS` or `FAIL`.
pub(crate) fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

/// A plain-text table: columns as wide as their widest cell.
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with this header row.
    pub(crate) fn new(head: &[&str]) -> Table {
        Table {
            rows: vec![head.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The rows, the header underlined.
    pub(crate) fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width = |c: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        let mut out = String::new();
        for (i, r) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                let w = widths.get(c).copied().unwrap_or(0);
                let _ = write!(line, "{cell:<w$}  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if i == 0 {
                let total: usize = widths.iter().map(|w| w + 2).sum();
                out.push_str(&"-".repeat(total.saturating_sub(2)));
                out.push('\n');
            }
        }
        out
    }
}

/// One target and how it went.
pub(crate) struct Target {
    pub(crate) what: String,
    pub(crate) measured: String,
    pub(crate) pass: bool,
}

/// The closing table: every target met or missed.
pub(crate) fn summary(targets: &[Target], cores: usize) -> String {
    let mut t = Table::new(&["target", "measured", ""]);
    for x in targets {
        t.row(vec![
            x.what.clone(),
            x.measured.clone(),
            verdict(x.pass).into(),
        ]);
    }
    let passed = targets.iter().filter(|x| x.pass).count();
    format!(
        "Targets ({cores} cores): {passed} PASS, {} FAIL\n{}",
        targets.len() - passed,
        t.render()
    )
}
