//! Bad scenario files: each is refused with its file, line and key, and a message saying
//! what would be accepted.

use super::*;

#[test]
fn bad_files_name_line_and_key() {
    // (case, source, line, key, fragment of the message)
    let cases = [
        (
            "unknown key in [load]",
            file(&format!("{OP}[load]\nconcurency = 32\n")),
            Some(6),
            Some("concurency"),
            "unknown field, expected one of `model`, `concurrency`, `rate`, `stages`",
        ),
        (
            "unknown top-level key",
            file(&format!("durration = \"3s\"\n{OP}")),
            Some(2),
            Some("durration"),
            "unknown field",
        ),
        (
            "unknown key in an operation",
            file(&format!("{OP}wieght = 3\n")),
            Some(5),
            Some("wieght"),
            "unknown field",
        ),
        (
            "bad duration",
            file(&format!("warmup = \"1s\"\nduration = \"10x\"\n{OP}")),
            Some(3),
            Some("duration"),
            "invalid duration \"10x\"",
        ),
        (
            "zero duration",
            file(&format!("duration = \"0s\"\n{OP}")),
            Some(2),
            Some("duration"),
            "must be more than 0",
        ),
        (
            "bad warmup",
            file(&format!("warmup = \"-1\"\n{OP}")),
            Some(2),
            Some("warmup"),
            "a bare number is seconds",
        ),
        (
            "open without rate",
            file(&format!("{OP}[load]\nmodel = \"open\"\n")),
            Some(6),
            Some("rate"),
            "needs `rate`",
        ),
        (
            "closed with rate",
            file(&format!("{OP}[load]\nconcurrency = 4\nrate = 100\n")),
            Some(7),
            Some("rate"),
            "applies only to model = \"open\"",
        ),
        (
            "open with zero rate",
            file(&format!("{OP}[load]\nmodel = \"open\"\nrate = 0\n")),
            Some(7),
            Some("rate"),
            "must be from 0.001 to 10,000,000 requests per second, got 0",
        ),
        (
            "zero concurrency",
            file(&format!("{OP}[load]\nconcurrency = 0\n")),
            Some(6),
            Some("concurrency"),
            "must be from 1 to 100,000, got 0",
        ),
        (
            "unknown model",
            file(&format!("{OP}[load]\nmodel = \"poisson\"\n")),
            Some(6),
            Some("model"),
            "unknown variant `poisson`",
        ),
        (
            "duplicate operation names",
            file(&format!("{OP}{OP}")),
            Some(6),
            Some("name"),
            "\"a\" is used twice",
        ),
        (
            "target naming an unknown operation",
            file(&format!("{OP}[targets]\n\"nope.p99\" = \"< 5ms\"\n")),
            Some(6),
            Some("nope.p99"),
            "no operation is named \"nope\"; expected one of: totals, a",
        ),
        (
            "target with an unknown figure",
            file(&format!("{OP}[targets]\n\"a.p42\" = \"< 5ms\"\n")),
            Some(6),
            Some("a.p42"),
            "unknown figure",
        ),
        (
            "target with a mismatched unit",
            file(&format!("{OP}[targets]\n\"a.p99\" = \">= 10/s\"\n")),
            Some(6),
            Some("a.p99"),
            "does not fit p99",
        ),
        (
            "operation with kind and method",
            file("[[operations]]\nname = \"a\"\nkind = \"health\"\nmethod = \"GET\"\n"),
            Some(5),
            Some("method"),
            "has `kind`, so it is built in",
        ),
        (
            "operation with neither kind nor request",
            file("[[operations]]\nname = \"a\"\nweight = 2\n"),
            Some(3),
            Some("name"),
            "needs `kind`",
        ),
        (
            "method without path",
            file("[[operations]]\nname = \"a\"\nmethod = \"GET\"\n"),
            Some(4),
            Some("method"),
            "no `path`",
        ),
        (
            "path without a leading slash",
            file("[[operations]]\nname = \"a\"\nmethod = \"GET\"\npath = \"api\"\n"),
            Some(5),
            Some("path"),
            "must start with '/'",
        ),
        (
            "expect_status empty",
            file(&format!("{REQ}expect_status = []\n")),
            Some(6),
            Some("expect_status"),
            "at least one status",
        ),
        (
            "expect_status past 599",
            file(&format!("{REQ}expect_status = [200, 600]\n")),
            Some(6),
            Some("expect_status"),
            "600 is not an HTTP status (100 to 599)",
        ),
        (
            "expect_status below 100",
            file(&format!("{REQ}expect_status = [\n  99,\n]\n")),
            Some(7),
            Some("expect_status"),
            "99 is not an HTTP status",
        ),
        (
            "expect_status negative",
            file(&format!("{REQ}expect_status = [-1]\n")),
            Some(6),
            Some("expect_status"),
            "-1 is not an HTTP status",
        ),
        (
            "expect_status as a string",
            file(&format!("{REQ}expect_status = [\"200\"]\n")),
            Some(6),
            Some("expect_status"),
            "invalid type",
        ),
        (
            "expect_status on a built-in",
            file(&format!("{OP}expect_status = [200]\n")),
            Some(5),
            Some("expect_status"),
            "plain requests",
        ),
        (
            "weight zero",
            file(&format!("{OP}weight = 0\n")),
            Some(5),
            Some("weight"),
            "must be from 1 to 1,000,000, got 0",
        ),
        (
            "negative weight",
            file(&format!("{OP}weight = -1\n")),
            Some(5),
            Some("weight"),
            "must be from 1 to 1,000,000, got -1",
        ),
        (
            "unknown operation kind",
            file("[[operations]]\nname = \"a\"\nkind = \"delete_everything\"\n"),
            Some(4),
            Some("kind"),
            "unknown variant `delete_everything`",
        ),
        (
            "limit on the wrong kind",
            file(&format!("{OP}limit = 10\n")),
            Some(5),
            Some("limit"),
            "list_executions",
        ),
        (
            "body on a built-in",
            file(&format!("{OP}body = \"{{}}\"\n")),
            Some(5),
            Some("body"),
            "plain requests",
        ),
        (
            "operation named totals",
            file("[[operations]]\nname = \"totals\"\nkind = \"health\"\n"),
            Some(3),
            Some("name"),
            "reserved",
        ),
        (
            "duration and requests",
            file(&format!("duration = \"1s\"\nrequests = 5\n{OP}")),
            Some(3),
            Some("requests"),
            "not both",
        ),
        (
            "requests on a burst",
            file("kind = \"burst\"\nrequests = 5\n"),
            Some(3),
            Some("requests"),
            "mix",
        ),
        (
            "burst on the open model",
            file("kind = \"burst\"\n[load]\nmodel = \"open\"\nrate = 5\n"),
            Some(4),
            Some("model"),
            "closed",
        ),
        (
            "unknown scenario kind",
            file(&format!("kind = \"soak\"\n{OP}")),
            Some(2),
            Some("kind"),
            "unknown variant `soak`",
        ),
        (
            "flow without [flow]",
            file("kind = \"flow\"\n"),
            Some(2),
            Some("kind"),
            "needs a [flow] table",
        ),
        (
            "[flow] on a mix",
            file(&format!(
                "{OP}[flow]\nexecutions = 1\nsteps = 1\nartifacts = 0\nlog_lines = 0\n"
            )),
            Some(5),
            Some("flow"),
            "only to kind = \"flow\"",
        ),
        (
            "unknown key in [flow]",
            file("kind = \"flow\"\n[flow]\nexecutions = 1\nstep = 1\n"),
            Some(5),
            Some("step"),
            "unknown field",
        ),
        (
            "non-finite gate limit",
            file(&format!("{OP}[gate]\np99 = nan\n")),
            Some(6),
            Some("p99"),
            "must be more than 0 and at most 1,000 percent, got NaN",
        ),
        (
            "unknown gate figure",
            file(&format!("{OP}[gate]\np98 = 10.0\n")),
            Some(6),
            Some("p98"),
            "unknown field",
        ),
        // Hostile numbers (issue 8, item 6): each once panicked or ran out of memory.
        (
            "duration of centuries",
            file(&format!("duration = \"10000000000000000000s\"\n{OP}")),
            Some(2),
            Some("duration"),
            "must be at most 24h, got 10000000000000000000s",
        ),
        (
            "warmup of centuries",
            file(&format!("warmup = \"10000000000000000000s\"\n{OP}")),
            Some(2),
            Some("warmup"),
            "must be at most 1h",
        ),
        (
            "rate too small to schedule",
            file(&format!("{OP}[load]\nmodel = \"open\"\nrate = 1e-300\n")),
            Some(7),
            Some("rate"),
            "must be from 0.001 to 10,000,000 requests per second, got 1e-300",
        ),
        (
            "rate too large",
            file(&format!("{OP}[load]\nmodel = \"open\"\nrate = 1e12\n")),
            Some(7),
            Some("rate"),
            "from 0.001 to 10,000,000",
        ),
        (
            "ten million workers",
            file(&format!("{OP}[load]\nconcurrency = 10000000\n")),
            Some(6),
            Some("concurrency"),
            "must be from 1 to 100,000, got 10000000",
        ),
        (
            "burst of ten million",
            file("kind = \"burst\"\n[load]\nconcurrency = 10000000\n"),
            Some(4),
            Some("concurrency"),
            "from 1 to 100,000",
        ),
        (
            "four billion log lines per request",
            file("[[operations]]\nname = \"a\"\nkind = \"append_logs\"\nlines = 4000000000\n"),
            Some(5),
            Some("lines"),
            "must be from 1 to 10,000, got 4000000000",
        ),
        (
            "four billion flow executions",
            file(
                "kind = \"flow\"\n[flow]\nexecutions = 4000000000\nsteps = 1\n\
                 artifacts = 0\nlog_lines = 0\n",
            ),
            Some(4),
            Some("executions"),
            "must be from 1 to 1,000,000, got 4000000000",
        ),
        (
            "four billion log lines per flow step",
            file(
                "kind = \"flow\"\n[flow]\nexecutions = 1\nsteps = 1\n\
                 artifacts = 0\nlog_lines = 4000000000\n",
            ),
            Some(7),
            Some("log_lines"),
            "at most 10,000",
        ),
        (
            "flow steps past the bound",
            file(
                "kind = \"flow\"\n[flow]\nexecutions = 1\nsteps = 4000000000\n\
                 artifacts = 0\nlog_lines = 0\n",
            ),
            Some(5),
            Some("steps"),
            "at most 1,000",
        ),
        (
            "flow artifacts past the bound",
            file(
                "kind = \"flow\"\n[flow]\nexecutions = 1\nsteps = 1\n\
                 artifacts = 4000000000\nlog_lines = 0\n",
            ),
            Some(6),
            Some("artifacts"),
            "at most 1,000",
        ),
        (
            "a flow of more than a billion requests",
            file(
                "kind = \"flow\"\n[flow]\nexecutions = 1000000\nsteps = 1000\n\
                 artifacts = 0\nlog_lines = 0\n",
            ),
            Some(3),
            Some("flow"),
            "more than 1,000,000,000 requests",
        ),
        (
            "seed of millions",
            file(&format!("seed = 4000000000\n{OP}")),
            Some(2),
            Some("seed"),
            "must be at most 1,000,000, got 4000000000",
        ),
        (
            "requests past a billion",
            file(&format!("requests = 10000000000\n{OP}")),
            Some(2),
            Some("requests"),
            "must be from 1 to 1,000,000,000",
        ),
        (
            "weight past a million",
            file(&format!("{OP}weight = 4000000000\n")),
            Some(5),
            Some("weight"),
            "must be from 1 to 1,000,000",
        ),
        (
            "gate limit past 1000 percent",
            file(&format!("{OP}[gate]\np99 = 1e300\n")),
            Some(6),
            Some("p99"),
            "more than 0 and at most 1,000 percent",
        ),
        (
            "gate error rate past 100 points",
            file(&format!("{OP}[gate]\nerror_rate = 150.0\n")),
            Some(6),
            Some("error_rate"),
            "at most 100 percentage points",
        ),
        (
            "mix without operations",
            file(""),
            None,
            Some("operations"),
            "at least one",
        ),
        (
            "duplicate key",
            file("name = \"again\"\n"),
            Some(2),
            Some("name"),
            "duplicate key",
        ),
        (
            "missing name",
            OP.to_string(),
            Some(1),
            Some("name"),
            "is required",
        ),
        (
            "not TOML at all",
            file("this is not toml\n"),
            Some(2),
            None,
            "expected",
        ),
    ];
    // Collect every mismatch so one run shows them all.
    let mut failures = Vec::new();
    for (case, src, line, key, fragment) in cases {
        match Scenario::from_toml_str(&src, "x.toml") {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(err) => {
                let ok = err.origin == "x.toml"
                    && err.line == line
                    && err.key.as_deref() == key
                    && err.message.contains(fragment);
                if !ok {
                    failures.push(format!("{case}: {err} (line {:?})", err.line));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
