//! Load stages in scenario files and on the command line: parsed in both models, refused
//! with the file, line and key.

use super::*;

const STAGED: &str = "[load]\nmodel = \"open\"\n[[load.stages]]\nduration = \"10s\"\ntarget = 1000\n[[load.stages]]\nduration = \"0s\"\ntarget = 5000\n[[load.stages]]\nduration = \"20s\"\ntarget = 5000\n";

#[test]
fn stages_parse_in_both_models() {
    let open = Scenario::from_toml_str(&file(&format!("{OP}{STAGED}")), "s.toml").unwrap();
    let secs = Duration::from_secs;
    assert_eq!(
        open.stages,
        vec![
            Stage {
                duration: secs(10),
                target: 1000.0
            },
            Stage {
                duration: secs(0),
                target: 5000.0
            },
            Stage {
                duration: secs(20),
                target: 5000.0
            },
        ]
    );
    assert_eq!(
        open.load,
        LoadModel::Open {
            rate_per_s: 5000.0,
            max_in_flight: None
        },
        "the load holds the shape's peak"
    );
    assert_eq!(open.length, None, "the stages are the length");
    assert_eq!(open.shape().unwrap().duration(), secs(30));
    let closed = Scenario::from_toml_str(
        &file(&format!(
            "{OP}[load]\n[[load.stages]]\nduration = \"5s\"\ntarget = 50\n[[load.stages]]\nduration = \"5s\"\ntarget = 0\n"
        )),
        "c.toml",
    )
    .unwrap();
    assert_eq!(
        closed.load,
        LoadModel::Closed {
            concurrency: Some(50)
        }
    );
    assert_eq!(closed.stages.len(), 2);
}

#[test]
fn bad_stages_name_line_and_key() {
    let stage = |d: &str, t: &str| format!("[[load.stages]]\nduration = {d}\ntarget = {t}\n");
    // (case, source, line, key, fragment)
    let cases = [
        (
            "a negative rate",
            file(&format!(
                "{OP}[load]\nmodel = \"open\"\n{}",
                stage("\"1s\"", "-5")
            )),
            Some(9),
            Some("target"),
            "must be from 0 to 10,000,000 requests per second",
        ),
        (
            "fractional workers",
            file(&format!("{OP}[load]\n{}", stage("\"1s\"", "2.5"))),
            Some(8),
            Some("target"),
            "whole number of workers",
        ),
        (
            "too many workers",
            file(&format!("{OP}[load]\n{}", stage("\"1s\"", "1000000"))),
            Some(8),
            Some("target"),
            "must be at most 100,000",
        ),
        (
            "a stage over a day",
            file(&format!("{OP}[load]\n{}", stage("\"25h\"", "5"))),
            Some(7),
            Some("duration"),
            "must be at most 24h",
        ),
        (
            "stages adding up past a day",
            file(&format!(
                "{OP}[load]\n{}{}",
                stage("\"23h\"", "5"),
                stage("\"2h\"", "5")
            )),
            None,
            Some("stages"),
            "the stages' total length must be at most 24h",
        ),
        (
            "only steps: nothing runs",
            file(&format!("{OP}[load]\n{}", stage("\"0s\"", "5"))),
            None,
            Some("stages"),
            "the stages' total length must be more than 0",
        ),
        (
            "all zero",
            file(&format!("{OP}[load]\n{}", stage("\"5s\"", "0"))),
            None,
            Some("stages"),
            "offers no load",
        ),
        (
            "stages with a rate",
            file(&format!(
                "{OP}[load]\nmodel = \"open\"\nrate = 5\n{}",
                stage("\"1s\"", "5")
            )),
            Some(7),
            Some("rate"),
            "drop `rate`",
        ),
        (
            "closed stages with concurrency",
            file(&format!(
                "{OP}[load]\nconcurrency = 5\n{}",
                stage("\"1s\"", "5")
            )),
            Some(6),
            Some("concurrency"),
            "drop `concurrency`",
        ),
        (
            "stages with a duration",
            file(&format!(
                "duration = \"5s\"\n{OP}[load]\n{}",
                stage("\"1s\"", "5")
            )),
            Some(2),
            Some("duration"),
            "set the run's length",
        ),
        (
            "stages in a burst",
            file(&format!(
                "kind = \"burst\"\n[load]\n{}",
                stage("\"1s\"", "5")
            )),
            Some(4),
            Some("load.stages"),
            "apply to kind = \"mix\" only",
        ),
        (
            "an unknown stage key",
            file(&format!(
                "{OP}[load]\n[[load.stages]]\nduration = \"1s\"\ntarget = 5\nramp = 1\n"
            )),
            Some(9),
            Some("ramp"),
            "unknown field",
        ),
    ];
    for (case, src, line, key, fragment) in cases {
        let err = Scenario::from_toml_str(&src, "t.toml").unwrap_err();
        if line.is_some() {
            assert_eq!(err.line, line, "{case}: {err}");
        }
        assert_eq!(err.key.as_deref(), key, "{case}: {err}");
        assert!(err.message.contains(fragment), "{case}: {err}");
    }
}

#[test]
fn stages_flag_parses_and_refuses() {
    let (stages, rates) = parse_stages("10s:1000/s,0s:5000/s,20s:5000/s").unwrap();
    assert!(rates);
    assert_eq!(stages.len(), 3);
    assert_eq!(
        stages[1],
        Stage {
            duration: Duration::ZERO,
            target: 5000.0
        }
    );
    let (_, rates) = parse_stages("5s:10, 5s:0").unwrap();
    assert!(!rates);
    for (spec, fragment) in [
        ("10s", "is not DURATION:TARGET"),
        ("10s:x", "is not a number"),
        ("10s:-1", "must be 0 or more"),
        ("10q:5", "stage 1 duration"),
        ("10s:5/s,5s:5", "as a rate (1000/s) or none"),
        ("0s:5", "total length must be more than 0"),
        ("5s:0", "offers no load"),
        ("25h:5", "must be at most 24h"),
        ("", "is not DURATION:TARGET"),
    ] {
        let err = parse_stages(spec).unwrap_err();
        assert!(err.contains(fragment), "{spec:?}: {err}");
    }
    // Workers must be whole numbers; a flag on a closed scenario checks that.
    let mut s = Scenario::from_toml_str(&file(OP), "t.toml").unwrap();
    let flags = LoadFlags {
        stages: Some(parse_stages("5s:2.5").unwrap()),
        ..LoadFlags::default()
    };
    let err = s.apply_flags(&flags).unwrap_err();
    assert!(
        err.contains("whole number") && err.contains("1000/s"),
        "{err}"
    );
    let flags = LoadFlags {
        stages: Some(parse_stages("5s:20,5s:5").unwrap()),
        ..LoadFlags::default()
    };
    s.length = Some(Length::Duration(Duration::from_secs(30)));
    s.apply_flags(&flags).unwrap();
    assert_eq!(
        s.load,
        LoadModel::Closed {
            concurrency: Some(20)
        }
    );
    assert_eq!(s.length, None);
    s.check_stages().unwrap();
    s.warmup = Duration::from_secs(10);
    assert!(s.check_stages().unwrap_err().contains("the warm-up"));
    s.warmup = Duration::ZERO;
    s.length = Some(Length::Duration(Duration::from_secs(3)));
    assert!(s.check_stages().unwrap_err().contains("drop --duration"));
}
