//! `--junit FILE`: a command's checks as JUnit XML, so that a CI system shows each check as
//! a test case (written with `quick-junit`, the serializer cargo-nextest uses).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

/// How one check ended.
pub enum Status {
    /// It held.
    Passed,
    /// It did not hold; the message says how.
    Failed(String),
    /// It could not be run or reach a verdict (an error, not a finding).
    Error(String),
    /// It was not exercised; the message says why.
    Skipped(String),
}

/// One check of a run.
pub struct Case {
    /// The check's name.
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// Wall-clock seconds it took, where known.
    pub seconds: Option<f64>,
    /// Details (figures, the counterexample) shown with the case.
    pub detail: Option<String>,
}

impl Case {
    /// A case without timing or detail.
    pub fn new(name: impl Into<String>, status: Status) -> Case {
        Case {
            name: name.into(),
            status,
            seconds: None,
            detail: None,
        }
    }

    /// Sets the seconds it took.
    pub fn seconds(mut self, s: f64) -> Case {
        self.seconds = Some(s);
        self
    }

    /// Sets the detail text.
    pub fn detail(mut self, d: impl Into<String>) -> Case {
        self.detail = Some(d.into());
        self
    }
}

/// The JUnit XML of one suite `suite` (named `physalia <command>`) holding `cases`.
pub fn render(suite: &str, cases: &[Case]) -> Result<String> {
    let mut report = Report::new(format!("physalia {suite}"));
    let mut ts = TestSuite::new(suite);
    let mut total = 0.0;
    for c in cases {
        let status = match &c.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Failed(m) | Status::Error(m) => {
                let kind = if matches!(c.status, Status::Failed(_)) {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(m.as_str());
                if let Some(d) = &c.detail {
                    s.set_description(d.as_str());
                }
                s
            }
            Status::Skipped(m) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(m.as_str());
                s
            }
        };
        let mut tc = TestCase::new(c.name.as_str(), status);
        tc.set_classname(format!("physalia.{suite}"));
        if let Some(secs) = c.seconds {
            tc.set_time(Duration::from_secs_f64(secs.max(0.0)));
            total += secs.max(0.0);
        }
        if let (Status::Passed, Some(d)) = (&c.status, &c.detail) {
            tc.set_system_out(d.as_str());
        }
        ts.add_test_case(tc);
    }
    ts.set_time(Duration::from_secs_f64(total));
    report.add_test_suite(ts);
    report.to_string().context("serialising the JUnit report")
}

/// Writes the JUnit XML of `cases` to `path`.
pub fn write(path: &Path, suite: &str, cases: &[Case]) -> Result<()> {
    let xml = render(suite, cases)?;
    std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_becomes_its_junit_element() {
        let cases = [
            Case::new("held", Status::Passed).seconds(1.5),
            Case::new("broke <a & b>", Status::Failed("violated".into())).detail("path"),
            Case::new("crashed", Status::Error("TLC died".into())),
            Case::new("not run", Status::Skipped("no clients".into())),
        ];
        let xml = render("verify", &cases).unwrap();
        assert!(xml.contains(r#"tests="4""#), "{xml}");
        assert!(xml.contains(r#"failures="1""#), "{xml}");
        assert!(xml.contains(r#"errors="1""#), "{xml}");
        assert!(
            xml.contains(r#"disabled="1""#) && xml.contains("<skipped"),
            "{xml}"
        );
        assert!(
            xml.contains("broke &lt;a &amp; b&gt;"),
            "names are escaped: {xml}"
        );
        assert!(xml.contains(r#"<failure message="violated""#), "{xml}");
        assert!(xml.contains(r#"time="1.5"#), "{xml}");
    }
}
