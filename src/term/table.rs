//! Plain text tables: columns padded to their widest cell, two spaces apart.

/// The rows (the header first) as aligned lines, without trailing spaces.
pub fn render(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths.get(c).copied().unwrap_or(0) - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
            line.trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_to_the_widest_cell() {
        let rows = vec![
            vec!["ID".into(), "NAME".into(), "STATE".into()],
            vec!["i-1".into(), "web-server".into(), "running".into()],
            vec!["i-0002".into(), "".into(), "stopped".into()],
        ];
        assert_eq!(
            render(&rows),
            vec![
                "ID      NAME        STATE",
                "i-1     web-server  running",
                "i-0002              stopped",
            ]
        );
    }
}
