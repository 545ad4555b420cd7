//! A grouped horizontal bar chart as a standalone SVG file: one group per test, one bar
//! per engine, whiskers for the standard deviation, values printed at the bar ends.

/// One bar: its value and spread.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub value: f64,
    pub spread: f64,
}

/// A group of bars (one per series) under a label.
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    pub label: String,
    pub bars: Vec<Bar>,
}

const COLORS: [&str; 4] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759"];

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart: `title`, `unit` of the axis, `series` names (legend), `groups`.
pub fn bar_chart(title: &str, unit: &str, series: &[&str], groups: &[BarGroup]) -> String {
    let bar_h = 18.0;
    let gap = 14.0;
    let label_w = 170.0;
    let plot_w = 520.0;
    let top = 60.0;
    let n_series = series.len().max(1) as f64;
    let group_h = bar_h * n_series + gap;
    let height = top + group_h * groups.len() as f64 + 40.0;
    let width = label_w + plot_w + 120.0;
    let max = groups
        .iter()
        .flat_map(|g| g.bars.iter().map(|b| b.value + b.spread))
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let x_of = |v: f64| label_w + plot_w * (v / max).clamp(0.0, 1.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    s += &format!("<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n");
    s += &format!(
        "<text x=\"{}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
        label_w,
        xml_escape(title)
    );
    for (i, name) in series.iter().enumerate() {
        let x = label_w + 150.0 * i as f64;
        s += &format!(
            "<rect x=\"{x}\" y=\"32\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"43\">{}</text>\n",
            COLORS[i % COLORS.len()],
            x + 16.0,
            xml_escape(name)
        );
    }
    for (gi, g) in groups.iter().enumerate() {
        let y0 = top + group_h * gi as f64;
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            label_w - 8.0,
            y0 + bar_h * n_series / 2.0 + 4.0,
            xml_escape(&g.label)
        );
        for (bi, b) in g.bars.iter().enumerate() {
            let y = y0 + bar_h * bi as f64;
            let x1 = x_of(b.value);
            s += &format!(
                "<rect x=\"{label_w}\" y=\"{y}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>\n",
                (x1 - label_w).max(0.0),
                bar_h - 2.0,
                COLORS[bi % COLORS.len()]
            );
            if b.spread > 0.0 {
                let (xa, xb) = (x_of(b.value - b.spread), x_of(b.value + b.spread));
                let ym = y + (bar_h - 2.0) / 2.0;
                s += &format!(
                    "<line x1=\"{xa:.1}\" y1=\"{ym:.1}\" x2=\"{xb:.1}\" y2=\"{ym:.1}\" \
                     stroke=\"black\" stroke-width=\"1\"/>\n"
                );
            }
            s += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
                x_of(b.value + b.spread) + 4.0,
                y + bar_h - 5.0,
                xml_escape(&format!("{:.2}", b.value))
            );
        }
    }
    let axis_y = top + group_h * groups.len() as f64;
    s += &format!(
        "<line x1=\"{label_w}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"black\"/>\n",
        label_w + plot_w
    );
    s += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
        label_w + plot_w / 2.0,
        axis_y + 24.0,
        xml_escape(unit)
    );
    s += "</svg>\n";
    s
}

/// Checks that `text` is well-formed XML in the subset we write: balanced tags, quoted
/// attributes, only the five predefined entities. Returns the first problem.
pub fn check_well_formed(text: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = text;
    let mut roots = 0;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt])?;
        let gt = rest[lt..].find('>').ok_or("unclosed '<'")? + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name = body.split_whitespace().next().ok_or("empty tag")?;
        if stack.is_empty() {
            roots += 1;
        }
        check_attributes(&body[name.len()..])?;
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    check_text(rest)?;
    if !stack.is_empty() {
        return Err(format!("unclosed {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

fn check_text(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(amp) = rest.find('&') {
        let semi = rest[amp..].find(';').ok_or("bare '&'")? + amp;
        let ent = &rest[amp + 1..semi];
        if !matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos") {
            return Err(format!("unknown entity &{ent};"));
        }
        rest = &rest[semi + 1..];
    }
    if t.contains('>') {
        return Err("'>' in text".into());
    }
    Ok(())
}

fn check_attributes(mut a: &str) -> Result<(), String> {
    loop {
        a = a.trim_start();
        if a.is_empty() {
            return Ok(());
        }
        let eq = a
            .find('=')
            .ok_or_else(|| format!("attribute without value: {a}"))?;
        a = &a[eq + 1..];
        if !a.starts_with('"') {
            return Err("unquoted attribute".into());
        }
        let close = a[1..].find('"').ok_or("unterminated attribute")? + 1;
        check_text(&a[1..close])?;
        if a[1..close].contains('<') {
            return Err("'<' in attribute".into());
        }
        a = &a[close + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_is_well_formed() {
        let groups = vec![
            BarGroup {
                label: "pp64 @ 1 thread <&>".into(),
                bars: vec![
                    Bar {
                        value: 30.0,
                        spread: 1.5,
                    },
                    Bar {
                        value: 3.0,
                        spread: 0.0,
                    },
                ],
            },
            BarGroup {
                label: "tg16 @ 2 threads".into(),
                bars: vec![
                    Bar {
                        value: 10.0,
                        spread: 0.5,
                    },
                    Bar {
                        value: 1.0,
                        spread: 0.1,
                    },
                ],
            },
        ];
        let svg = bar_chart("tokens/s \"2B4T\"", "t/s", &["bitnet.cpp", "tern"], &groups);
        check_well_formed(&svg).unwrap();
        assert!(svg.contains("&lt;&amp;&gt;"));
        assert_eq!(svg.matches("<rect").count(), 1 + 2 + 4);
        assert!(bar_chart("empty", "t/s", &[], &[]).starts_with("<svg"));
        check_well_formed(&bar_chart("empty", "t/s", &[], &[])).unwrap();
    }

    #[test]
    fn checker_rejects_broken_xml() {
        for bad in [
            "<svg><g></svg>",
            "<svg>a & b</svg>",
            "<svg x=1></svg>",
            "<svg></svg><svg></svg>",
            "<svg",
            "<svg>&nbsp;</svg>",
        ] {
            assert!(check_well_formed(bad).is_err(), "{bad}");
        }
        check_well_formed("<svg a=\"1\"><g/><text>x &amp; y</text></svg>").unwrap();
    }
}
