//! JUnit XML for CI dashboards, for a run (a test case per target, and one for the
//! read-back) and for a comparison (a test case per operation and metric).

use super::compare::{fmt_change, fmt_limit, fmt_p, fmt_spread, fmt_value, method_line};
use crate::gate::compare::{Comparison, FailureKind, Verdict};
use crate::results::Results;

pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML for CI dashboards: one test case per (operation, metric), a failure per
/// regression, `<skipped>` for what could not be judged, and every case's figures (and any
/// warning) in its system-out.
pub fn render_junit(c: &Comparison) -> String {
    // Lost writes and missed targets fail the comparison too: a case each, after the rows.
    let run_failures: Vec<_> = c
        .failures
        .iter()
        .filter(|f| f.kind != FailureKind::Regression)
        .collect();
    let failures = c.count(Verdict::Regressed) + run_failures.len();
    let skipped = c.count(Verdict::Inconclusive);
    let tests = c.rows.len() + run_failures.len();
    let suite = xml_escape(&format!("stepflow-bench compare: {}", c.scenario));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" \
         errors=\"0\" skipped=\"{skipped}\">\n"
    ));
    out.push_str(&format!(
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" \
         errors=\"0\" skipped=\"{skipped}\">\n"
    ));
    out.push_str(&format!(
        "    <properties>\n      <property name=\"verdict\" value=\"{}\"/>\n      \
         <property name=\"headline\" value=\"{}\"/>\n      \
         <property name=\"method\" value=\"{}\"/>\n    </properties>\n",
        xml_escape(&c.verdict),
        xml_escape(&c.headline),
        xml_escape(&method_line(c))
    ));
    for row in &c.rows {
        let figures = format!(
            "baseline {} · candidate {} · change {} · p {} · limit {} · {}",
            fmt_spread(row.metric, &row.baseline),
            fmt_value(row.metric, row.candidate.median),
            fmt_change(row),
            fmt_p(row.p_value),
            fmt_limit(row),
            row.verdict
        );
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n",
            xml_escape(&format!("{}.{}", c.scenario, row.operation)),
            row.metric
        ));
        match row.verdict {
            Verdict::Regressed => out.push_str(&format!(
                "      <failure type=\"regression\" message=\"{}\">{}</failure>\n",
                xml_escape(&row.reason),
                xml_escape(&figures)
            )),
            Verdict::Inconclusive => out.push_str(&format!(
                "      <skipped message=\"inconclusive: {}\"/>\n",
                xml_escape(&row.reason)
            )),
            _ => {}
        }
        let note = if row.verdict == Verdict::Warn {
            format!("WARNING: {}\n{figures}", row.reason)
        } else {
            figures
        };
        out.push_str(&format!(
            "      <system-out>{}</system-out>\n    </testcase>\n",
            xml_escape(&note)
        ));
    }
    for f in run_failures {
        let name = match f.kind {
            FailureKind::LostWrites => "lost_writes",
            _ => "target",
        };
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{name}\" time=\"0\">\n      \
             <failure type=\"{name}\" message=\"{}\"/>\n    </testcase>\n",
            xml_escape(&format!("{}.gate", c.scenario)),
            xml_escape(&f.what)
        ));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// JUnit XML for one run: a test case per target (a failure when missed), one for the
/// read-back of acknowledged writes when there was one (a failure per lost write), and an
/// error when the run was aborted.
pub fn render_junit_results(r: &Results) -> String {
    let suite = xml_escape(&format!("stepflow-bench {}", r.scenario));
    let mut cases = Vec::new();
    for t in &r.targets {
        let figures = format!("measured {} against {}", t.measured_text(), t.target);
        let failure = (!t.passed).then(|| {
            format!(
                "      <failure type=\"target\" message=\"{} missed: {}\"/>\n",
                xml_escape(&t.metric),
                xml_escape(&figures)
            )
        });
        cases.push((t.metric.clone(), failure, figures));
    }
    if let Some(i) = &r.integrity {
        let figures = format!("{} checked, {} lost", i.checked, i.lost_writes);
        let failure = (i.lost_writes > 0).then(|| {
            format!(
                "      <failure type=\"lost_writes\" message=\"{}\">{}</failure>\n",
                xml_escape(&format!(
                    "{} acknowledged writes not read back",
                    i.lost_writes
                )),
                xml_escape(&i.details.join("\n"))
            )
        });
        cases.push(("integrity".to_string(), failure, figures));
    }
    let failures = cases.iter().filter(|c| c.1.is_some()).count();
    let errors = usize::from(r.aborted.is_some());
    let tests = cases.len() + errors;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{:.3}\"",
        r.duration_s
    );
    out.push_str(&format!("<testsuites name=\"{suite}\" {counts}>\n"));
    out.push_str(&format!("  <testsuite name=\"{suite}\" {counts}>\n"));
    out.push_str(&format!(
        "    <properties>\n      <property name=\"target\" value=\"{}\"/>\n      \
         <property name=\"exit_code\" value=\"{}\"/>\n    </properties>\n",
        xml_escape(&r.target),
        r.exit_code
    ));
    let class = xml_escape(&r.scenario);
    for (name, failure, figures) in cases {
        out.push_str(&format!(
            "    <testcase classname=\"{class}\" name=\"{}\" time=\"0\">\n{}      \
             <system-out>{}</system-out>\n    </testcase>\n",
            xml_escape(&name),
            failure.unwrap_or_default(),
            xml_escape(&figures)
        ));
    }
    if let Some(why) = &r.aborted {
        out.push_str(&format!(
            "    <testcase classname=\"{class}\" name=\"run\" time=\"0\">\n      \
             <error type=\"aborted\" message=\"{}\"/>\n    </testcase>\n",
            xml_escape(why)
        ));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::compare::tests::run;
    use crate::results::targets::TargetResult;
    use crate::results::Integrity;

    fn target(metric: &str, passed: bool) -> TargetResult {
        TargetResult {
            metric: metric.into(),
            target: "< 5ms".into(),
            measured: if passed { 1.0 } else { 9.0 },
            unit: "ms".into(),
            passed,
            implied: false,
        }
    }

    #[test]
    fn a_run_has_a_case_per_target_and_for_the_read_back() {
        let mut r = run("st<r>ess", "2024-05-01T10:00:00Z", 1000.0, 700.0, 0);
        r.targets = vec![
            target("totals.p99", true),
            target("get_execution.p99", false),
        ];
        r.integrity = Some(Integrity {
            checked: 10,
            lost_writes: 2,
            details: vec!["execution 7 acknowledged but not stored".into()],
        });
        let xml = render_junit_results(&r);
        assert!(xml.starts_with("<?xml"), "{xml}");
        assert!(
            xml.contains("tests=\"3\" failures=\"2\" errors=\"0\""),
            "{xml}"
        );
        assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
        assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
        assert!(xml.contains("name=\"get_execution.p99\""), "{xml}");
        assert!(xml.contains("2 acknowledged writes not read back"), "{xml}");
        assert!(xml.contains("classname=\"st&lt;r&gt;ess\""), "{xml}");

        // All met and nothing lost: no failure; an aborted run is an error case.
        r.targets = vec![target("totals.p99", true)];
        r.integrity = None;
        let xml = render_junit_results(&r);
        assert!(!xml.contains("<failure"), "{xml}");
        r.aborted = Some("interrupted".into());
        let xml = render_junit_results(&r);
        assert!(xml.contains("errors=\"1\""), "{xml}");
        assert!(
            xml.contains("<error type=\"aborted\" message=\"interrupted\"/>"),
            "{xml}"
        );
    }
}
