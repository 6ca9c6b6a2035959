//! The HTML report as a person sees it: a real run writes `--html`, headless Chromium (Debian's
//! `chromium`) loads the file with every network request refused, every chart is in the
//! rendered DOM with something drawn, and the screenshot is not blank. `report` overlays
//! existing results and `compare --html` draws a comparison.
//!
//! Set STEPFLOW_HTML_SCREENSHOT=PATH to keep the screenshot (results/reference/ keeps one).

mod common;

use common::{read_results, run_bench, Finished};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Chromium's flags for a page that must not reach the network: every host resolves to
/// nothing, and nothing runs in the background.
fn offline(chromium: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chromium);
    c.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-extensions",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=127.0.0.1:9",
        "--window-size=1000,2600",
        "--hide-scrollbars",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// The page as Chromium rendered it, and its screenshot.
fn render(page: &Path, dir: &Path) -> Option<(String, Vec<u8>)> {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: no chromium here (apt-get install chromium)");
        return None;
    };
    let url = format!("file://{}", page.display());
    let dom = offline(&chromium, &dir.join("profile-dom"))
        .args(["--dump-dom", &url])
        .output()
        .expect("run chromium --dump-dom");
    assert!(
        dom.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let shot = dir.join("page.png");
    let out = offline(&chromium, &dir.join("profile-shot"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("run chromium --screenshot");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    Some((String::from_utf8_lossy(&dom.stdout).into_owned(), png))
}

/// The chart with `id` from a DOM dump, checked to have something drawn.
fn assert_drawn(dom: &str, id: &str) {
    let chart = dom
        .split(&format!("id=\"{id}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no chart {id} in the rendered page"));
    let chart = chart.split("</svg>").next().unwrap_or_default();
    let drawn = chart.matches("d=\"M").count() + chart.matches("class=\"bar\"").count();
    assert!(drawn > 0, "chart {id} drew nothing: {chart}");
    assert!(!chart.contains("NaN"), "chart {id} has NaN: {chart}");
}

fn ok(fin: &Finished, what: &str) {
    assert!(
        fin.code == 0 || fin.code == 1,
        "{what}: exit {}; stderr: {}",
        fin.code,
        fin.stderr
    );
}

#[test]
fn a_run_writes_a_page_that_chromium_draws_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, page) = (dir.path().join("r.json"), dir.path().join("r.html"));
    let fin = run_bench(
        dir.path(),
        &[
            "run",
            "ci",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--no-progress",
            "--out",
            path_arg(&out),
            "--html",
            path_arg(&page),
        ],
        RUN_TIMEOUT,
    );
    ok(&fin, "run ci --html");
    assert!(
        fin.stderr.contains("HTML report written to"),
        "{}",
        fin.stderr
    );
    let results = read_results(&out);
    // The bundled monitor was sampled each second, and its files measured at the end.
    let samples = results["server"]["timeseries"]
        .as_array()
        .expect("server.timeseries");
    assert!(
        samples.iter().any(|p| p["phase"] == "measured"),
        "{samples:?}"
    );
    assert!(
        samples.iter().all(|p| p["rss_bytes"].as_u64() > Some(0)),
        "{samples:?}"
    );
    let storage = &results["server"]["storage"];
    assert!(storage["db_bytes"].as_u64() > Some(0), "{storage}");
    assert!(storage["executions"].as_u64() > Some(0), "{storage}");
    let html = std::fs::read_to_string(&page).expect("the page");
    // Self-contained: nothing in it would fetch anything (an address in the text, such as
    // the target's, fetches nothing).
    for fetch in [
        "<script", " src=", "href=", "url(", "@import", "<link", "<img", "<iframe",
    ] {
        assert!(!html.contains(fetch), "{fetch} in the page");
    }
    // Every operation of the run is named in the page.
    for name in results["operations"]
        .as_object()
        .expect("operations")
        .keys()
    {
        assert!(html.contains(name.as_str()), "{name} missing from the page");
    }
    assert!(html.contains("Memory by phase") && html.contains("Storage efficiency"));
    let Some((dom, png)) = render(&page, dir.path()) else {
        return;
    };
    for id in [
        "throughput",
        "latency",
        "spectrum",
        "distribution",
        "server-memory",
        "server-cpu",
        "server-writer",
    ] {
        assert_drawn(&dom, id);
    }
    // A blank or failed page compresses to a few kilobytes.
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if let Some(keep) = std::env::var_os("STEPFLOW_HTML_SCREENSHOT") {
        std::fs::write(&keep, &png).expect("keep the screenshot");
        std::fs::copy(&page, PathBuf::from(&keep).with_extension("html")).expect("keep the page");
    }

    // The same results rendered again, twice overlaid, and compared with themselves.
    let again = dir.path().join("again.html");
    let fin = run_bench(
        dir.path(),
        &[
            "report",
            path_arg(&out),
            path_arg(&out),
            "--html",
            path_arg(&again),
        ],
        RUN_TIMEOUT,
    );
    ok(&fin, "report");
    let overlay = std::fs::read_to_string(&again).expect("report --html");
    assert!(
        overlay.contains("run 1 (ci)") && overlay.contains("run 2 (ci)"),
        "two runs"
    );
    let cmp = dir.path().join("compare.html");
    let fin = run_bench(
        dir.path(),
        &[
            "compare",
            path_arg(&out),
            path_arg(&out),
            "--html",
            path_arg(&cmp),
        ],
        RUN_TIMEOUT,
    );
    assert!(matches!(fin.code, 0 | 3), "compare: {}", fin.stderr);
    let cpage = std::fs::read_to_string(&cmp).expect("compare --html");
    assert!(cpage.contains("class=\"chart strip\""), "no rows drawn");
    if let Some((dom, _)) = render(&cmp, dir.path()) {
        assert!(
            dom.contains("class=\"verdict"),
            "no verdict in the rendered comparison"
        );
    }
}

#[test]
fn an_unwritable_html_path_is_refused_before_any_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fin = run_bench(
        dir.path(),
        &[
            "run",
            "ci",
            "--duration",
            "1s",
            "--no-progress",
            "--html",
            "/proc/r.html",
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(fin.code, 2, "{}", fin.stderr);
    assert!(fin.stderr.contains("--html /proc/r.html"), "{}", fin.stderr);
    assert!(
        fin.elapsed < Duration::from_secs(10),
        "took {:?}",
        fin.elapsed
    );
}
