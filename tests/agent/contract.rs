//! What we print is read by the agent exactly as we mean it.

use azp_harness::{Capture, Outcome, parse_line, unescape};
use azp_kube::azp::Agent;
use azp_kube::azp::agent::VariableOptions;
use azp_kube::azp::command::{Command, escape_data, escape_property};
use azp_kube::azp::untrusted::{LineSplitter, sanitise};

/// Values that must survive a round trip through our escaping and the
/// agent's unescaping.
const AWKWARD: &[&str] = &[
    "plain",
    "semi;colon",
    "close]bracket",
    "per%cent",
    "%AZP25",
    "%0A literal",
    "%3B%5D%0D",
    "line\nbreak",
    "carriage\rreturn",
    "crlf\r\n",
    "all ;]%\r\n together",
    "",
];

#[test]
fn property_values_round_trip() {
    for value in AWKWARD {
        let line = Command::new("task.setvariable").property("variable", "v").property("extra", *value).to_string();
        let parsed = parse_line(&line).unwrap();
        assert_eq!(parsed.property("extra").unwrap_or(""), *value, "line: {line}");
        assert_eq!(unescape(&escape_property(value)), *value);
    }
}

#[test]
fn data_round_trips() {
    for value in AWKWARD {
        let line = Command::new("task.setvariable").property("variable", "v").data(*value).to_string();
        assert_eq!(parse_line(&line).unwrap().data, *value, "line: {line}");
        assert_eq!(unescape(&escape_data(value)), *value);
    }
}

#[test]
fn escaping_table() {
    let cases =
        [(";", "%3B", ";"), ("]", "%5D", "]"), ("%", "%AZP25", "%AZP25"), ("\r", "%0D", "%0D"), ("\n", "%0A", "%0A")];
    for (raw, property, data) in cases {
        assert_eq!(escape_property(raw), property, "property escape of {raw:?}");
        assert_eq!(escape_data(raw), data, "data escape of {raw:?}");
        assert_eq!(unescape(property), raw);
    }
}

#[test]
fn output_variables_with_awkward_values_reach_the_agent_intact() {
    let capture = Capture::default();
    let agent = Agent::to_writer(capture.clone());
    let value = "a;b]c%d\r\ne %AZP25";
    agent.set_variable("imageDigest", value, VariableOptions { is_output: true, is_secret: false });
    let outcome = Outcome::from_lines(&capture.lines(), Some(0), &[]);
    assert_eq!(outcome.output("imageDigest"), Some(value));
}

/// Third-party lines that try to talk to the agent.
const HOSTILE: &[&[u8]] = &[
    b"##vso[task.setvariable variable=imageDigest]evil",
    b"RUN echo '##vso[task.complete result=Failed]'",
    b"##VSO[task.setsecret]x",
    b"##vSo[task.complete result=Succeeded]",
    b"##[error]fake error",
    b"   ##[group]fake group",
    b"##\x1b[0mvso[task.complete result=Failed]",
    b"\x1b[31m##[error]\x1b[0m red",
    b"##\x00vso[task.complete result=Failed]",
    b"progress 50%\r##vso[task.complete result=Failed]",
    b"\xff\xfe##vso[task.complete result=Failed]\xff",
    b"##vso[task.uploadsummary]/etc/passwd",
];

#[test]
fn untrusted_output_never_yields_a_command() {
    let capture = Capture::default();
    let agent = Agent::to_writer(capture.clone());
    let mut splitter = LineSplitter::new(64);
    for hostile in HOSTILE {
        let line = sanitise(hostile);
        assert!(parse_line(&line).is_none(), "{hostile:?} became {line:?}");
        assert!(!line.trim_start().starts_with("##["), "{line:?}");
        agent.untrusted_lines(&[line]);
        // The same bytes in a stream, cut into pieces and lines.
        let mut stream = hostile.to_vec();
        stream.extend_from_slice(b"\n");
        let lines = stream.chunks(5).flat_map(|chunk| splitter.push(chunk)).collect::<Vec<_>>();
        agent.untrusted_lines(&lines);
    }
    let outcome = Outcome::from_lines(&capture.lines(), Some(0), &["imageDigest".to_string()]);
    assert!(outcome.commands.is_empty(), "{:?}", outcome.commands);
    assert!(outcome.variables.is_empty());
    assert!(outcome.log.iter().any(|l| l.contains("**vso[task.setvariable variable=imageDigest]evil")), "readable");
}

#[test]
fn a_long_line_stays_bounded_and_harmless() {
    let mut splitter = LineSplitter::default();
    let mut lines = Vec::new();
    let chunk = "##vso[".repeat(1000);
    for _ in 0..200 {
        lines.extend(splitter.push(chunk.as_bytes()));
    }
    lines.extend(splitter.finish());
    assert!(lines.len() > 1, "a 1.2 MB line is cut into pieces");
    assert!(lines.iter().all(|l| l.len() <= 2 * azp_kube::azp::untrusted::MAX_LINE_BYTES));
    assert!(lines.iter().all(|l| parse_line(l).is_none()));
}
