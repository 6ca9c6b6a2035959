//! One exporter interface for every output format (hyperfine's `Exporter`): each format
//! renders a run's results and a comparison, so that a new format (HTML) is one more
//! implementation, and the command line picks one by `Format`.

use super::{compare, html, junit, markdown, table, Format};
use crate::gate::compare::Comparison;
use crate::results::Results;

/// Renders results and comparisons in one format.
pub trait Exporter {
    fn results(&self, results: &Results) -> String;
    fn comparison(&self, comparison: &Comparison) -> String;
}

/// The terminal table (comfy-table).
pub struct TableExporter;
/// Markdown, for pull requests and job summaries.
pub struct MarkdownExporter;
/// The results JSON contract, and the comparison as JSON.
pub struct JsonExporter;
/// JUnit XML for CI dashboards.
pub struct JunitExporter;
/// One self-contained HTML page with static SVG charts.
pub struct HtmlExporter;

impl Exporter for TableExporter {
    fn results(&self, results: &Results) -> String {
        table::render_table(results)
    }
    fn comparison(&self, comparison: &Comparison) -> String {
        compare::render_compare_table(comparison)
    }
}

impl Exporter for MarkdownExporter {
    fn results(&self, results: &Results) -> String {
        markdown::render_markdown(results)
    }
    fn comparison(&self, comparison: &Comparison) -> String {
        compare::render_compare_markdown(comparison)
    }
}

impl Exporter for JsonExporter {
    fn results(&self, results: &Results) -> String {
        crate::results::io::to_json(results)
    }
    fn comparison(&self, comparison: &Comparison) -> String {
        serde_json::to_string_pretty(comparison).expect("comparison serializes") + "\n"
    }
}

impl Exporter for JunitExporter {
    fn results(&self, results: &Results) -> String {
        junit::render_junit_results(results)
    }
    fn comparison(&self, comparison: &Comparison) -> String {
        junit::render_junit(comparison)
    }
}

impl Exporter for HtmlExporter {
    fn results(&self, results: &Results) -> String {
        html::render_html(&[results])
    }
    fn comparison(&self, comparison: &Comparison) -> String {
        html::render_compare_html(comparison)
    }
}

/// The exporter of a format.
pub fn exporter(format: Format) -> &'static dyn Exporter {
    match format {
        Format::Table => &TableExporter,
        Format::Markdown => &MarkdownExporter,
        Format::Json => &JsonExporter,
        Format::Junit => &JunitExporter,
        Format::Html => &HtmlExporter,
    }
}
