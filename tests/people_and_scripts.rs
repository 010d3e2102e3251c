//! Issue #12 through the binary: `-o value`, the table on terminals (also
//! ones that report 0x0), marks after an edit, and `--diff`. Terminal
//! behaviour is checked on a real pseudo-terminal (`support::pty`).

use serde_json::Value;

use crate::support::{pty, Ims, Sandbox, SEED_ID};

const ESC: &str = "\u{1b}[";

fn on_terminal(ims: Ims, cols: u16) -> pty::PtyRun {
    let (cmd, _home) = ims.command();
    pty::run(cmd, cols, 24)
}

#[test]
fn value_prints_one_line_per_field_in_order() {
    let sb = Sandbox::start();
    let run = sb
        .ims()
        .args(["show", SEED_ID, "-o", "value"])
        .args(["--field", "name", "--field", "nope", "--field", "min_ram"])
        .args(["--field", "tags", "--field", "os_hash_algo"])
        .args(["--field", "__data_origin", "--field", "protected"])
        .run();
    run.ok();
    assert_eq!(run.stdout, "ims_test\n\n0\n[]\nnull\n\nfalse\n");
    assert!(run.stderr.contains("'nope'"), "{}", run.stderr);

    // Without --field: every value, in the table's (sorted) key order.
    let image = sb.image(SEED_ID);
    let mut keys: Vec<&String> = image.as_object().unwrap().keys().collect();
    keys.sort();
    let want: String = keys
        .iter()
        .map(|k| match &image[k.as_str()] {
            Value::String(s) => format!("{s}\n"),
            other => format!("{other}\n"),
        })
        .collect();
    let run = sb.ims().args(["show", SEED_ID, "-o", "value"]).run();
    run.ok();
    assert_eq!(run.stdout, want);

    // An edit prints its result the same way; so does the environment's choice.
    let run = sb
        .ims()
        .env("IMS_PATCH_OUTPUT", "value")
        .args(["rename", SEED_ID, "renamed", "--field", "name"])
        .run();
    run.ok();
    assert_eq!(run.stdout, "renamed\n");
}

#[test]
fn value_is_raw_for_scripts_and_escaped_on_a_terminal() {
    let sb = Sandbox::start();
    sb.ims()
        .args([
            "set-attr",
            SEED_ID,
            "__description:=\"a\\u001b[31mred\\tb\"",
        ])
        .run()
        .ok();
    let args = ["show", SEED_ID, "-o", "value", "--field", "__description"];
    let run = sb.ims().args(args).run();
    assert_eq!(run.stdout, "a\u{1b}[31mred\tb\n");
    let screen = on_terminal(sb.ims().args(args), 80);
    assert_eq!(screen.code, 0, "{}", screen.stderr);
    assert_eq!(screen.screen, "a\\u001b[31mred\\tb\n");
}

#[test]
fn a_terminal_reporting_0x0_gets_columns_or_80_and_whole_property_names() {
    let sb = Sandbox::start();
    let long = "word ".repeat(60);
    sb.ims().args(["describe", SEED_ID, long.trim()]).run().ok();
    let widest = |screen: &str| screen.lines().map(|l| l.chars().count()).max().unwrap();
    for (columns, want) in [(None, 80), (Some("120"), 120), (Some("0"), 80)] {
        let mut ims = sb.ims().args(["show", SEED_ID]);
        if let Some(c) = columns {
            ims = ims.env("COLUMNS", c);
        }
        let run = on_terminal(ims, 0);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            widest(&run.screen),
            want,
            "COLUMNS={columns:?}\n{}",
            run.screen
        );
        // Property names are never broken over lines.
        for key in [
            "__image_source_type",
            "__originalimagename",
            "container_format",
        ] {
            assert!(
                run.screen.lines().any(|l| l.contains(&format!(" {key} "))),
                "{key}\n{}",
                run.screen
            );
        }
    }
    // A size the terminal does report wins; too narrow a one still fits the names.
    let run = on_terminal(sb.ims().env("COLUMNS", "200").args(["show", SEED_ID]), 100);
    assert_eq!(widest(&run.screen), 100, "{}", run.screen);
    let run = on_terminal(sb.ims().args(["show", SEED_ID]), 10);
    assert!(
        run.screen.contains(" __image_source_type "),
        "{}",
        run.screen
    );
}

#[test]
fn an_edit_on_a_terminal_marks_what_it_touched_and_names_what_it_removed() {
    let sb = Sandbox::start();
    let run = on_terminal(
        sb.ims()
            .args(["set-attr", SEED_ID, "__os_bit=32"])
            .args(["--field", "__os_bit", "--field", "name"]),
        80,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bold_row = run.screen.lines().find(|l| l.contains("__os_bit")).unwrap();
    assert!(bold_row.contains(&format!("{ESC}1m")), "{:?}", run.screen);
    let name_row = run.screen.lines().find(|l| l.contains("ims_test")).unwrap();
    assert!(!name_row.contains(ESC), "{:?}", run.screen);

    let run = on_terminal(
        sb.ims()
            .args(["unset-attr", SEED_ID, "__support_kvm", "__os_bit"])
            .args(["--field", "name"]),
        80,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.screen.ends_with("Removed: __support_kvm, __os_bit\n"),
        "{:?}",
        run.screen
    );

    // NO_COLOR: the same table without escape codes.
    let run = on_terminal(
        sb.ims()
            .env("NO_COLOR", "1")
            .args(["set-attr", SEED_ID, "__os_bit=64"]),
        80,
    );
    assert!(run.screen.contains("__os_bit"), "{}", run.screen);
    assert!(!run.screen.contains('\u{1b}'), "{:?}", run.screen);

    // Not a terminal: the table stays as it was, with no marks and no note.
    let run = sb.ims().args(["unset-attr", SEED_ID, "__os_bit"]).run();
    run.ok();
    assert!(!run.stdout.contains('\u{1b}'), "{}", run.stdout);
    assert!(!run.stdout.contains("Removed"), "{}", run.stdout);
    assert!(run.stdout.starts_with("+-"), "{}", run.stdout);
}

#[test]
fn json_output_on_a_terminal_is_the_same_json() {
    let sb = Sandbox::start();
    let piped = sb
        .ims()
        .args(["set-attr", SEED_ID, "__os_bit=32", "-o", "json"])
        .run();
    piped.ok();
    let run = on_terminal(
        sb.ims()
            .args(["set-attr", SEED_ID, "__os_bit=16", "-o", "json"]),
        80,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.screen.contains('\u{1b}'), "{:?}", run.screen);
    let shown: Value = serde_json::from_str(&run.screen).unwrap();
    assert_eq!(shown, sb.image(SEED_ID));
    assert_eq!(
        run.screen.replace("\"16\"", "\"32\"").replace(
            &shown["updated_at"].to_string(),
            &piped.json()["updated_at"].to_string()
        ),
        piped.stdout
    );
}

#[test]
fn diff_reads_first_and_prints_only_the_touched_attributes() {
    let sb = Sandbox::start();
    let run = sb
        .ims()
        .args([
            "set-attr",
            SEED_ID,
            "__os_bit=32",
            "min_ram:=0",
            "__new=x",
            "--diff",
        ])
        .run();
    run.ok();
    assert_eq!(
        run.stdout,
        "__os_bit: \"64\" → \"32\"\nmin_ram: 0 (unchanged)\n__new: (not set) → \"x\"\n"
    );
    assert!(run.stderr.contains("two requests"), "{}", run.stderr);
    assert_eq!(
        sb.request_lines(),
        [
            format!("GET /v2/images/{SEED_ID}"),
            format!("PATCH /v2/images/{SEED_ID}")
        ]
    );

    // By name: the lookup is the read, still two requests.
    sb.clear_journal();
    let run = sb
        .ims()
        .args(["unset-attr", "ims_test", "__new", "--diff", "-o", "json"])
        .run();
    run.ok();
    assert_eq!(run.json(), serde_json::json!({"__new": {"before": "x"}}));
    let lines = sb.request_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("GET /v2/images?name="), "{lines:?}");

    // With --dry-run: what the edit would change, and only the read is sent.
    sb.clear_journal();
    let run = sb
        .ims()
        .args(["rename", SEED_ID, "new-name", "--diff", "--dry-run"])
        .run();
    run.ok();
    assert_eq!(run.stdout, "name: \"ims_test\" → \"new-name\"\n");
    assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    assert_eq!(sb.request_lines(), [format!("GET /v2/images/{SEED_ID}")]);
    assert_eq!(sb.image(SEED_ID)["name"], "ims_test");
}

#[test]
fn value_for_list_and_batch_results() {
    let sb = Sandbox::start();
    // list: ID, name and status of each image, one per line; or the fields.
    let run = sb
        .ims()
        .args(["list", "--where", "name=ims_test", "-o", "value"])
        .run();
    run.ok();
    assert_eq!(run.stdout, format!("{SEED_ID}\nims_test\nactive\n"));
    let run = sb
        .ims()
        .args(["list", "-o", "value", "--field", "name"])
        .run();
    run.ok();
    let mut names: Vec<&str> = run.stdout.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "centos-7-legacy",
            "debian-12",
            "ims_test",
            "windows-server-2022"
        ]
    );
    // A batch edit: each image's result record, its members one per line.
    let run = sb
        .ims()
        .args(["set-attr", "--where", "name=ims_test", "__os_bit=32"])
        .args(["-o", "value", "--field", "image", "--field", "result"])
        .run();
    run.ok();
    assert_eq!(run.stdout, format!("{SEED_ID}\nchanged\n"));
    // --diff is for one image.
    let run = sb
        .ims()
        .args([
            "set-attr",
            "--where",
            "name=ims_test",
            "__os_bit=16",
            "--diff",
        ])
        .run();
    run.code(2);
    assert!(run.stderr.contains("--diff"), "{}", run.stderr);
    assert_eq!(sb.image(SEED_ID)["__os_bit"], "32");
}

#[test]
fn diff_dry_run_of_a_remove_that_would_be_refused_fails_as_the_edit_would() {
    let sb = Sandbox::start();
    // The real edit is refused (409, exit 6): the review must not say it is fine.
    let real = sb
        .ims()
        .args(["unset-attr", SEED_ID, "__nope", "--diff"])
        .run();
    real.code(6);
    sb.clear_journal();
    let run = sb
        .ims()
        .args([
            "unset-attr",
            SEED_ID,
            "__os_bit",
            "__nope",
            "--diff",
            "--dry-run",
        ])
        .run();
    run.code(6);
    assert!(run.stderr.contains("'__nope' is not set"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    assert!(run.stderr.contains("--ignore-missing"), "{}", run.stderr);
    assert_eq!(sb.request_lines(), [format!("GET /v2/images/{SEED_ID}")]);
    // With --ignore-missing the review shows what would be removed.
    let run = sb
        .ims()
        .args([
            "unset-attr",
            SEED_ID,
            "__os_bit",
            "__nope",
            "--diff",
            "--dry-run",
        ])
        .arg("--ignore-missing")
        .run();
    run.ok();
    assert_eq!(run.stdout, "__os_bit: \"64\" → (not set)\n");
}

#[test]
fn list_and_batch_result_tables_fit_the_terminal() {
    let sb = Sandbox::start();
    let widest = |screen: &str| screen.lines().map(|l| l.chars().count()).max().unwrap();
    let run = on_terminal(
        sb.ims().args([
            "list",
            "--field",
            "__os_version",
            "--field",
            "__description",
        ]),
        60,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(widest(&run.screen) <= 60, "{}", run.screen);
    // A failure's long error is wrapped inside its cell, not past the edge.
    let run = on_terminal(
        sb.ims().args([
            "unset-attr",
            "--where",
            "name=ims_test",
            "__not_set_anywhere",
        ]),
        100,
    );
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(widest(&run.screen) <= 100, "{}", run.screen);
    assert!(run.screen.contains("failed"), "{}", run.screen);
    assert!(
        run.screen.contains(&format!(" {SEED_ID} ")),
        "{}",
        run.screen
    );
}
