//! Many images in one run (issue #10): selection (--images-from, --where,
//! list, apply), retries, Ctrl-C, the undo round trip, per-image results
//! and exit codes, against the sandbox and fault servers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fault::{Fault, Reply};
use crate::support::{Sandbox, SEED_ID};

/// The JSON lines of stdout, each parsed (a script's view).
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Creates `n` images with `__batch=<tag>` and returns their IDs.
fn create_tagged(sb: &Sandbox, tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            sb.create(&json!({
                "name": format!("batch-{tag}-{i}"),
                "disk_format": "raw",
                "container_format": "bare",
                "__batch": tag,
            }))
        })
        .collect()
}

fn image_json(id: &str) -> String {
    json!({"id": id, "name": "ims_test", "status": "active"}).to_string()
}

#[test]
fn where_follows_next_links_across_pages_and_filters_on_a_custom_property() {
    let sb = Sandbox::start();
    let ids = create_tagged(&sb, "pages", 5);
    create_tagged(&sb, "other", 2);
    sb.clear_journal();
    let run = sb
        .ims()
        .args([
            "list",
            "--where",
            "__batch=pages",
            "--where",
            "limit=2",
            "-o",
            "json",
        ])
        .run();
    run.ok();
    let listed: Vec<String> = json_lines(&run.stdout)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    let mut expected = ids.clone();
    expected.sort();
    let mut got = listed.clone();
    got.sort();
    assert_eq!(got, expected);
    let gets = sb.request_lines();
    assert_eq!(gets.len(), 3, "three pages of at most 2: {gets:?}");
    assert!(gets.iter().all(|l| l.starts_with("GET /v2/images?")));

    sb.clear_journal();
    let run = sb
        .ims()
        .args(["set-attr", "--where", "__batch=pages", "--where", "limit=2"])
        .args(["--jobs", "3", "-o", "json", "hw_firmware_type=uefi"])
        .run();
    run.ok();
    let results = json_lines(&run.stdout);
    assert_eq!(results.len(), 5);
    for r in &results {
        assert_eq!(r["result"], "changed", "{r}");
        assert_eq!(r["exit_code"], 0);
        assert_eq!(r["http_status"], 200);
        assert!(r["name"].as_str().unwrap().starts_with("batch-pages-"));
    }
    assert!(run.stderr.contains("5 changed"), "{}", run.stderr);
    for id in &ids {
        assert_eq!(sb.image(id)["hw_firmware_type"], "uefi");
    }
    let patches = sb
        .request_lines()
        .iter()
        .filter(|l| l.starts_with("PATCH"))
        .count();
    assert_eq!(patches, 5);
}

#[test]
fn images_from_reads_ids_and_names_edits_each_image_once() {
    let sb = Sandbox::start();
    let ids = create_tagged(&sb, "from", 3);
    sb.clear_journal();
    let list = format!(
        "# the images\n{}\n\n{}\nbatch-from-0\n{}\n{}\n",
        ids[0], ids[1], ids[2], ids[1]
    );
    let run = sb
        .ims()
        .args(["unset-attr", "--images-from", "-", "-o", "json", "__batch"])
        .stdin(&list)
        .run();
    run.ok();
    let results = json_lines(&run.stdout);
    let changed = results.iter().filter(|r| r["result"] == "changed").count();
    let skipped = results.iter().filter(|r| r["result"] == "skipped").count();
    assert_eq!((changed, skipped), (3, 1), "{}", run.stdout);
    let patches: Vec<String> = sb
        .request_lines()
        .into_iter()
        .filter(|l| l.starts_with("PATCH"))
        .collect();
    assert_eq!(patches.len(), 3, "one PATCH an image: {patches:?}");
    for id in &ids {
        assert!(sb.image(id).get("__batch").is_none());
    }
}

#[test]
fn an_image_named_twice_is_skipped_with_the_line_it_repeats() {
    let sb = Sandbox::start();
    let ids = create_tagged(&sb, "twice", 2);
    // Line 3 names by name the image line 1 gives by ID.
    let list = format!("{}\n{}\nbatch-twice-0\n", ids[0], ids[1]);
    let run = sb
        .ims()
        .args([
            "set-attr",
            "--images-from",
            "-",
            "--jobs",
            "1",
            "-o",
            "json",
            "k=v",
        ])
        .stdin(&list)
        .run();
    run.ok();
    let results = json_lines(&run.stdout);
    let skipped: Vec<_> = results
        .iter()
        .filter(|r| r["result"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{}", run.stdout);
    assert_eq!(skipped[0]["image"], ids[0].as_str());
    assert_eq!(
        skipped[0]["error"], "the same image as line 1",
        "{}",
        run.stdout
    );
    let run = sb
        .ims()
        .args([
            "set-attr",
            "--images-from",
            "-",
            "--jobs",
            "1",
            "-o",
            "table",
            "k=v",
        ])
        .stdin(&list)
        .run();
    run.ok();
    let row = run
        .stdout
        .lines()
        .find(|l| l.contains("skipped"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(row.contains("the same image as line 1"), "{}", run.stdout);
}

#[test]
fn dry_run_with_json_prints_one_json_object_per_planned_request() {
    let sb = Sandbox::start();
    let ids = create_tagged(&sb, "dryjson", 2);
    sb.clear_journal();
    let run = sb
        .ims()
        .env("IMS_PATCH_TOKEN", "dry-run-secret-token")
        .args([
            "--dry-run",
            "set-attr",
            "--where",
            "__batch=dryjson",
            "-o",
            "json",
            "k=v",
        ])
        .run();
    run.ok();
    let planned = json_lines(&run.stdout);
    assert_eq!(planned.len(), 2, "{}", run.stdout);
    for p in &planned {
        assert_eq!(p["result"], "planned", "{p}");
        assert!(ids.iter().any(|id| p["image"] == id.as_str()), "{p}");
        assert!(
            p["name"].as_str().unwrap().starts_with("batch-dryjson-"),
            "{p}"
        );
        let request = &p["request"];
        assert_eq!(request["method"], "PATCH");
        assert!(
            request["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v2/images/{}", p["image"].as_str().unwrap())),
            "{p}"
        );
        assert_eq!(request["headers"]["X-Auth-Token"], "<redacted>", "{p}");
        assert_eq!(
            request["body"],
            serde_json::json!([{"op": "add", "path": "/k", "value": "v"}]),
            "{p}"
        );
    }
    assert!(!run.stdout.contains("dry-run-secret-token"));
    assert!(
        run.stderr.contains("2 PATCH requests not sent"),
        "{}",
        run.stderr
    );
    assert!(
        !sb.request_lines().iter().any(|l| l.starts_with("PATCH")),
        "nothing sent"
    );
}

#[test]
fn a_selection_matching_nothing_is_exit_5_with_nothing_sent() {
    let sb = Sandbox::start();
    sb.clear_journal();
    let run = sb
        .ims()
        .args(["set-attr", "--where", "__batch=none-such", "a=b"])
        .run();
    run.code(5);
    assert!(
        run.stderr
            .contains("no image matches --where '__batch=none-such'"),
        "{}",
        run.stderr
    );
    assert!(sb.request_lines().iter().all(|l| l.starts_with("GET")));
    let run = sb
        .ims()
        .args(["describe", "--images-from", "-", "text"])
        .stdin("# nothing\n\n")
        .run();
    run.code(5);
    assert!(sb.request_lines().iter().all(|l| l.starts_with("GET")));
}

#[test]
fn exit_codes_of_mixed_failures() {
    let sb = Sandbox::start();
    let ids = create_tagged(&sb, "codes", 2);
    let missing = "00000000-0000-4000-8000-000000000000";
    // A missing image (5) among successes: the run exits 5.
    let run = sb
        .ims()
        .args(["set-attr", "--images-from", "-", "-o", "json", "k=v"])
        .stdin(&format!("{}\n{missing}\n{}\n", ids[0], ids[1]))
        .run();
    run.code(5);
    let results = json_lines(&run.stdout);
    let failed: Vec<&Value> = results.iter().filter(|r| r["result"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["image"], missing);
    assert_eq!(failed[0]["exit_code"], 5);
    assert_eq!(failed[0]["http_status"], 404);
    assert!(run.stderr.contains("2 changed, 1 failed"), "{}", run.stderr);
    // A conflict (6) and a missing image (5): different codes, exit 1.
    let run = sb
        .ims()
        .args(["unset-attr", "--images-from", "-", "--jobs", "1", "nope"])
        .stdin(&format!("{}\n{missing}\n", ids[0]))
        .run();
    run.code(1);
    assert!(run.stdout.contains("failed"), "the table: {}", run.stdout);
    // --fail-fast: the rest is not started, and the failure's code decides.
    let run = sb
        .ims()
        .args([
            "set-attr",
            "--images-from",
            "-",
            "--jobs",
            "1",
            "--fail-fast",
            "-o",
            "json",
            "k=w",
        ])
        .stdin(&format!("{missing}\n{}\n{}\n", ids[0], ids[1]))
        .run();
    run.code(5);
    let results = json_lines(&run.stdout);
    assert_eq!(results[0]["result"], "failed");
    assert!(
        results[1..].iter().all(|r| r["result"] == "not_started"),
        "{}",
        run.stdout
    );
}

#[test]
fn undo_file_round_trip_gives_back_the_original_images() {
    let sb = Sandbox::start();
    let ids = create_tagged(&sb, "undo", 3);
    let before: Vec<Value> = ids.iter().map(|id| sb.image(id)).collect();
    let dir = tempfile::tempdir().unwrap();
    let undo = dir.path().join("undo.jsonl");
    sb.ims()
        .args(["set-attr", "--where", "__batch=undo", "--undo-file"])
        .arg(&undo)
        .args(["__batch=changed", "hw_firmware_type=uefi", "min_ram:=512"])
        .run()
        .ok();
    let text = std::fs::read_to_string(&undo).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    for id in &ids {
        assert_eq!(sb.image(id)["__batch"], "changed");
    }
    let undo2 = dir.path().join("undo2.jsonl");
    let run = sb
        .ims()
        .args(["apply", "-o", "json", "--undo-file"])
        .arg(&undo2)
        .arg(&undo)
        .run();
    run.ok();
    assert_eq!(json_lines(&run.stdout).len(), 3);
    for (id, before) in ids.iter().zip(&before) {
        let mut after = sb.image(id);
        let mut before = before.clone();
        after.as_object_mut().unwrap().remove("updated_at");
        before.as_object_mut().unwrap().remove("updated_at");
        assert_eq!(after, before);
    }
    // The undo of the undo is the edit again.
    assert_eq!(std::fs::read_to_string(&undo2).unwrap().lines().count(), 3);
}

#[test]
fn apply_checks_the_whole_file_before_sending() {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edits.jsonl");
    std::fs::write(
        &file,
        format!("{{\"image\": \"{SEED_ID}\", \"set\": {{\"a\": \"1\"}}}}\n{{\"image\": 5}}\n"),
    )
    .unwrap();
    sb.clear_journal();
    let run = sb.ims().arg("apply").arg(&file).run();
    run.code(2);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
    assert!(sb.request_lines().is_empty());
    // From standard input a bad line fails only itself.
    let run = sb
        .ims()
        .args(["apply", "-", "-o", "json"])
        .stdin(&format!(
            "{{\"image\": \"{SEED_ID}\", \"set\": {{\"a\": \"1\"}}}}\nnot json\n"
        ))
        .run();
    run.code(2);
    let results = json_lines(&run.stdout);
    assert_eq!(results.len(), 2);
    assert_eq!(sb.image(SEED_ID)["a"], "1");
}

#[test]
fn dry_run_prints_each_request_and_the_count_and_sends_no_patch() {
    let sb = Sandbox::start();
    create_tagged(&sb, "dry", 2);
    sb.clear_journal();
    let run = sb
        .ims()
        .args(["--dry-run", "set-attr", "--where", "__batch=dry", "x=y"])
        .run();
    run.ok();
    assert_eq!(run.stdout.matches("PATCH ").count(), 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("2 PATCH requests not sent"),
        "{}",
        run.stderr
    );
    assert!(sb.request_lines().iter().all(|l| l.starts_with("GET")));
}

#[test]
fn a_503_with_retry_after_is_retried_and_verbose_says_so() {
    let fault = Fault::start(vec![
        Reply::unavailable(1),
        Reply::json(200, &image_json(SEED_ID)),
    ]);
    let started = Instant::now();
    let run = fault
        .ims()
        .args(["-v", "unset-attr", SEED_ID, "__support_kvm"])
        .run();
    run.ok();
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(fault.requests().len(), 2);
    assert!(
        run.stderr.contains(
            "attempt 1 of 4 failed: the server answered 503; waiting 1.0 s as the server asked"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn retries_give_up_and_say_how_many_attempts() {
    let fault = Fault::always(Reply::unavailable(0));
    let run = fault
        .ims()
        .args(["--retries", "2", "set-attr", SEED_ID, "a=b"])
        .run();
    run.code(8);
    assert_eq!(fault.requests().len(), 3);
    assert!(
        run.stderr.contains("gave up after 3 attempts"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_dropped_remove_is_not_repeated_and_a_dropped_add_is() {
    let fault = Fault::start(vec![Reply::Hangup, Reply::json(200, &image_json(SEED_ID))]);
    let run = fault.ims().args(["unset-attr", SEED_ID, "k"]).run();
    run.code(1);
    assert_eq!(fault.requests().len(), 1);
    assert!(
        run.stderr
            .contains("not repeated: a remove may already have been applied"),
        "{}",
        run.stderr
    );
    let fault = Fault::start(vec![Reply::Hangup, Reply::json(200, &image_json(SEED_ID))]);
    let run = fault
        .ims()
        .args(["--retry-max-wait", "0.2", "set-attr", SEED_ID, "k=v"])
        .run();
    run.ok();
    assert_eq!(fault.requests().len(), 2);
}

#[test]
fn database_is_locked_500s_are_retried_for_adds_and_reported_when_they_persist() {
    let locked = Reply::json(
        500,
        r#"{"message": "(sqlite3.OperationalError) database is locked", "code": "500 Internal Server Error", "title": "Internal Server Error"}"#,
    );
    let fault = Fault::start(vec![locked.clone(), Reply::json(200, &image_json(SEED_ID))]);
    let run = fault
        .ims()
        .args([
            "--retry-max-wait",
            "0.2",
            "set-attr",
            "--images-from",
            "-",
            "-o",
            "json",
            "k=v",
        ])
        .stdin(&format!("{SEED_ID}\n"))
        .run();
    run.ok();
    assert_eq!(json_lines(&run.stdout)[0]["attempts"], 2);
    let fault = Fault::always(locked);
    let run = fault
        .ims()
        .args([
            "--retry-max-wait",
            "0.1",
            "--retries",
            "1",
            "set-attr",
            "--images-from",
            "-",
            "-o",
            "json",
            "k=v",
        ])
        .stdin(&format!("{SEED_ID}\n"))
        .run();
    run.code(8);
    let result = &json_lines(&run.stdout)[0];
    assert_eq!(result["attempts"], 2);
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("database is locked") && error.contains("gave up after 2 attempts"),
        "{error}"
    );
}

/// A keep-alive server that silently treats a connection idle longer than
/// `idle` as closed: a request arriving on it is read, then the connection
/// is closed without a byte (the close crossed the request, as with uWSGI's
/// http-socket). The first request is answered 503 with `Retry-After`.
struct IdleCloser {
    endpoint: String,
    requests: Arc<AtomicUsize>,
    hangups: Arc<AtomicUsize>,
}

impl IdleCloser {
    fn start(idle: Duration, retry_after: u32) -> IdleCloser {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let hangups = Arc::new(AtomicUsize::new(0));
        let (r, h) = (requests.clone(), hangups.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16) {
                let Ok(stream) = stream else { break };
                let (r, h) = (r.clone(), h.clone());
                std::thread::spawn(move || serve_idle(stream, idle, retry_after, &r, &h));
            }
        });
        IdleCloser {
            endpoint,
            requests,
            hangups,
        }
    }
}

fn serve_idle(
    stream: TcpStream,
    idle: Duration,
    retry_after: u32,
    requests: &AtomicUsize,
    hangups: &AtomicUsize,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let mut last = Instant::now();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let n = requests.fetch_add(1, Ordering::SeqCst);
        if last.elapsed() > idle && n > 0 {
            hangups.fetch_add(1, Ordering::SeqCst);
            let _ = out.shutdown(std::net::Shutdown::Both);
            return;
        }
        let (status, extra, text) = if n == 0 {
            (
                "503 Service Unavailable",
                format!("Retry-After: {retry_after}\r\n"),
                "{}".to_string(),
            )
        } else {
            ("200 OK", String::new(), image_json(SEED_ID))
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
        last = Instant::now();
    }
}

#[test]
fn a_kept_alive_connection_the_server_closed_silently_never_fails_a_remove() {
    // The server drops connections idle for 2.5 s; the retry comes after
    // 3 s, which would land on such a connection if the pool kept it.
    let server = IdleCloser::start(Duration::from_millis(2500), 3);
    let run = crate::support::Ims::new()
        .env("IMS_PATCH_ENDPOINT", &server.endpoint)
        .env("IMS_PATCH_TOKEN", "t")
        .args(["unset-attr", SEED_ID, "__support_kvm"])
        .run();
    run.ok();
    assert_eq!(
        server.hangups.load(Ordering::SeqCst),
        0,
        "a stale connection was reused"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
}

#[test]
fn ctrl_c_finishes_in_flight_reports_the_rest_not_started_and_exits_130() {
    let slow = Reply::json(200, &image_json(SEED_ID)).delay(Duration::from_millis(400));
    let fault = Fault::always(slow);
    let ids: String = (0..20)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}\n"))
        .collect();
    let mut child = fault
        .ims()
        .args([
            "set-attr",
            "--images-from",
            "-",
            "--jobs",
            "2",
            "-o",
            "json",
            "k=v",
        ])
        .stdin(&ids)
        .spawn();
    std::thread::sleep(Duration::from_millis(1000));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    let results = json_lines(&stdout);
    assert_eq!(results.len(), 20, "every image has a line: {stdout}");
    let changed = results.iter().filter(|r| r["result"] == "changed").count();
    let not_started = results
        .iter()
        .filter(|r| r["result"] == "not_started")
        .count();
    assert!(changed >= 2 && not_started >= 10, "{stdout}");
    assert_eq!(
        changed + not_started,
        20,
        "in-flight requests finished: {stdout}"
    );
    assert_eq!(fault.requests().len(), changed);
    assert!(stderr.contains("not started"), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
}

#[test]
fn ctrl_c_while_results_flow_notes_it_at_once_and_the_summary_says_interrupted() {
    // Results arrive every few milliseconds, never 100 ms apart: the note
    // must not wait for a quiet moment, and the summary must say why the
    // rest was not started.
    let quick = Reply::json(200, &image_json(SEED_ID)).delay(Duration::from_millis(20));
    let fault = Fault::always(quick);
    let ids: String = (0..400)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}\n"))
        .collect();
    let mut child = fault
        .ims()
        .args([
            "set-attr",
            "--images-from",
            "-",
            "--jobs",
            "4",
            "-o",
            "json",
            "k=v",
        ])
        .stdin(&ids)
        .spawn();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    for _ in 0..3 {
        std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let results = json_lines(&format!("{first}{rest}"));
    assert_eq!(results.len(), 400);
    assert!(
        results.iter().any(|r| r["result"] == "not_started"),
        "the run was stopped early"
    );
    assert_eq!(
        stderr
            .matches("interrupted: finishing the requests in flight")
            .count(),
        1,
        "{stderr}"
    );
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(summary.contains("not started (interrupted)"), "{stderr}");
}

#[test]
fn undo_file_on_a_single_image_edit_reads_first_and_restores() {
    let sb = Sandbox::start();
    let before = sb.image(SEED_ID);
    let dir = tempfile::tempdir().unwrap();
    let undo = dir.path().join("undo.jsonl");
    sb.clear_journal();
    let run = sb
        .ims()
        .args(["-v", "unset-attr", "--ignore-missing", "--undo-file"])
        .arg(&undo)
        .args([SEED_ID, "__os_version", "__not_set"])
        .run();
    run.ok();
    assert!(
        run.stderr.contains("read before it is edited"),
        "{}",
        run.stderr
    );
    let lines = sb.request_lines();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("GET")).count(),
        1,
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &format!("PATCH /v2/images/{SEED_ID}")
    );
    let line: Value = serde_json::from_str(std::fs::read_to_string(&undo).unwrap().trim()).unwrap();
    assert_eq!(
        line,
        json!({"image": SEED_ID, "patch": [{"op": "add", "path": "/__os_version", "value": before["__os_version"]}]})
    );
    sb.ims().arg("apply").arg(&undo).run().ok();
    let mut after = sb.image(SEED_ID);
    let mut before = before;
    after.as_object_mut().unwrap().remove("updated_at");
    before.as_object_mut().unwrap().remove("updated_at");
    assert_eq!(after, before);
    // An undo file is written once.
    let again = sb
        .ims()
        .args(["set-attr", "--undo-file"])
        .arg(&undo)
        .args([SEED_ID, "a=b"])
        .run();
    again.code(2);
    assert!(again.stderr.contains("written once"), "{}", again.stderr);
}

#[test]
fn a_second_ctrl_c_aborts_at_once() {
    let slow = Reply::json(200, &image_json(SEED_ID)).delay(Duration::from_secs(5));
    let fault = Fault::always(slow);
    let ids: String = (0..4)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}\n"))
        .collect();
    let mut child = fault
        .ims()
        .args([
            "set-attr",
            "--images-from",
            "-",
            "--jobs",
            "1",
            "-o",
            "json",
            "k=v",
        ])
        .stdin(&ids)
        .spawn();
    std::thread::sleep(Duration::from_millis(700));
    let started = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // The request in flight (answered after 5 s) was not waited for.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_image_given_with_a_selection_is_refused_with_a_hint_for_the_selection_form() {
    let sb = Sandbox::start();
    let run = sb
        .ims()
        .args(["set-attr", "--where", "name=ims_test", "ims_test", "a=1"])
        .run();
    run.code(2);
    assert!(
        run.stderr.contains("'ims_test' is not KEY=VALUE"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("with --where or --images-from, every argument is an edit (no IMAGE)"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("set-attr IMAGE"),
        "the one-image example misleads here: {}",
        run.stderr
    );
    assert!(sb.request_lines().is_empty());
}

#[test]
fn an_unreadable_image_list_names_the_option_it_came_from() {
    let sb = Sandbox::start();
    let run = sb
        .ims()
        .args(["set-attr", "--images-from", "/nonexistent/ids.txt", "a=1"])
        .run();
    run.code(2);
    assert!(
        run.stderr
            .contains("cannot read the image list '/nonexistent/ids.txt' (from --images-from)"),
        "{}",
        run.stderr
    );
    assert!(sb.request_lines().is_empty());
}
