//! The CLI as scripts use it: exit codes per kind of failure, JSON errors on stdout
//! with `--json`, hashes as hex text, quiet ends on closed pipes, completions and the
//! man page without a daemon.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use seedbank_tests::{artifact_id, run_cli as run, seedbank_binary, Daemon, IMPATIENT_FETCHES};

/// A content id of the right form that no node holds.
const UNKNOWN_ID: &str = "sb1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Runs `seedbank --json ARGS`, which must fail with `exit_code` and print exactly one
/// JSON error of `code` on stdout.
fn assert_json_error(data_dir: &Path, args: &[&str], exit_code: i32, code: &str) {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let output = run(data_dir, &with_json);
    let json = output.json();
    assert_eq!(json["error"]["code"], code, "wrong error code:\n{output}");
    assert!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message:\n{output}"
    );
    assert_eq!(output.code, Some(exit_code), "wrong exit code:\n{output}");
    assert!(!output.stderr.contains("panicked"), "{output}");
}

/// An artifact whose `show` output is far larger than a pipe's buffer, so that a reader
/// closing after one line makes the writer meet a closed pipe.
fn add_many_files(daemon: &Daemon, work: &Path) -> String {
    let dir = work.join("many");
    std::fs::create_dir_all(&dir).expect("creating the artifact dir");
    for i in 0..1500 {
        std::fs::write(dir.join(format!("file-{i:05}.txt")), i.to_string())
            .expect("writing a file");
    }
    daemon.add_artifact(&dir)
}

/// Runs `seedbank ARGS`, reads one line of its stdout, closes the pipe, and returns the
/// exit code and stderr.
fn first_line_then_close(data_dir: &Path, args: &[&str]) -> (String, Option<i32>, String) {
    let mut child = Command::new(seedbank_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning seedbank");
    let mut first = String::new();
    {
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        stdout
            .read_line(&mut first)
            .expect("reading the first line");
        // Dropping the reader closes the pipe, as `head -1` does once it has its line.
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("reading stderr");
    let status = child.wait().expect("waiting for seedbank");
    (first, status.code(), stderr)
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let daemon = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let id = add_many_files(&daemon, work.path());
    for args in [
        vec!["show", id.as_str()],
        vec!["--json", "show", id.as_str()],
    ] {
        let (first, code, stderr) = first_line_then_close(daemon.data_dir(), &args);
        assert!(!first.is_empty(), "seedbank {args:?} printed nothing");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "seedbank {args:?} | head -1 complained:\n{stderr}"
        );
        assert_eq!(code, Some(0), "seedbank {args:?} | head -1:\n{stderr}");
    }
}

#[test]
fn each_kind_of_failure_has_its_exit_code_and_a_json_error() {
    let daemon = Daemon::start_configured(IMPATIENT_FETCHES, &[]);
    let dir = daemon.data_dir();
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("config.json"), "{}").unwrap();
    let id = daemon.add_artifact(&model);

    // Not found: 3.
    assert_json_error(dir, &["show", UNKNOWN_ID], 3, "not_found");
    assert_json_error(dir, &["pin", "nosuchname"], 3, "not_found");
    // Bad input: 2, from the daemon and from the command line parser alike.
    assert_json_error(dir, &["fetch", "not-an-id"], 2, "bad_request");
    let out = work.path().join("out");
    let out = out.to_str().unwrap();
    assert_json_error(
        dir,
        &["export", &id, out, "--include", "["],
        2,
        "bad_request",
    );
    assert_json_error(dir, &["show"], 2, "usage");
    // Unreachable: 4 (nobody holds it and this daemon has no peers).
    assert_json_error(dir, &["fetch", UNKNOWN_ID], 4, "unreachable");
    // No daemon for the data dir: 7.
    let empty = tempfile::tempdir().unwrap();
    assert_json_error(empty.path(), &["ls"], 7, "daemon_not_running");

    // Without --json the error is one line on stderr and stdout stays empty.
    let plain = run(dir, &["pin", "nosuchname"]);
    assert_eq!(plain.code, Some(3));
    assert!(plain.stdout.is_empty(), "{}", plain.stdout);
    assert!(plain.stderr.starts_with("error: "), "{}", plain.stderr);
}

#[test]
fn providers_of_an_unknown_artifact_exit_with_not_found() {
    let daemon = Daemon::start();
    let text = run(daemon.data_dir(), &["providers", UNKNOWN_ID]);
    assert_eq!(text.code, Some(3), "{text}");
    assert!(text.stdout.contains("no providers"), "{}", text.stdout);
    let json = run(daemon.data_dir(), &["--json", "providers", UNKNOWN_ID]);
    assert_eq!(json.code, Some(3));
    assert_eq!(json.json()["providers"], serde_json::json!([]));
}

#[test]
fn json_output_names_hashes_and_ids_as_text() {
    let daemon = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("weights.bin"), vec![7u8; 40_000]).unwrap();
    let added = daemon.ok_json(&["add", model.to_str().unwrap()]);
    let id = artifact_id(&added);
    let text = daemon.ok(&["add", model.to_str().unwrap(), "--name", "again"]);
    assert!(
        text.stdout.contains(", 1 file,"),
        "one file is `1 file`: {}",
        text.stdout
    );

    let detail = daemon.ok_json(&["show", &id]);
    assert_eq!(detail["summary"]["id"], id.as_str());
    let file = &detail["manifest"]["files"][0];
    let hash = file["hash"].as_str().unwrap_or_else(|| {
        panic!("the file hash is not a string: {file}");
    });
    assert_eq!(hash.len(), 64, "{hash}");
    assert!(
        hash.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{hash}"
    );
    assert_eq!(
        hash,
        blake3::hash(&[7u8; 40_000]).to_hex().as_str(),
        "the hash is the file's BLAKE3"
    );
    let verified = daemon.ok_json(&["verify"]);
    assert_eq!(verified["corrupt"], serde_json::json!([]));
}

#[test]
fn completions_and_the_man_page_need_no_daemon() {
    let nowhere = tempfile::tempdir().unwrap();
    let no_data_dir = nowhere.path().join("never-created");
    let bash = run(&no_data_dir, &["completions", "bash"]);
    assert_eq!(bash.code, Some(0), "{}", bash.stderr);
    assert!(bash.stdout.contains("seedbank"), "{}", bash.stdout);
    let script = nowhere.path().join("seedbank.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("running bash -n");
    assert!(
        checked.status.success(),
        "bash refuses the completion script: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = run(&no_data_dir, &["completions", shell]);
        assert_eq!(script.code, Some(0), "{shell}: {}", script.stderr);
        assert!(script.stdout.contains("seedbank"), "{shell}");
    }

    let man = run(&no_data_dir, &["man"]);
    assert_eq!(man.code, Some(0), "{}", man.stderr);
    assert!(man.stdout.starts_with('.'), "not roff: {}", man.stdout);
    assert!(man.stdout.contains(".TH seedbank 1"), "{}", man.stdout);
    assert!(man.stdout.contains("completions"), "subcommands are listed");
    assert!(!no_data_dir.exists(), "nothing is created on disk");
}

#[test]
fn the_daemon_logs_json_lines_with_json() {
    let daemon = Daemon::start_with(&["--json"]);
    daemon.ok(&["status"]);
    let log = std::fs::read_to_string(daemon.data_dir().with_extension("log")).unwrap();
    // Log records are JSON objects; anything else printed (a start-up summary for
    // people) is not a log record.
    let records: Vec<&str> = log.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!records.is_empty(), "no JSON log lines:\n{log}");
    for line in records {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["fields"].is_object(), "{line}");
    }
    assert!(!log.contains('\u{1b}'), "no colour escapes in JSON logs");
}
