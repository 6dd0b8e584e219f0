//! Runs the cfn-guard rules in `infrastructure/guard/` against the SAM
//! template, and against one broken copy of the template per fixture.
//!
//! A fixture in `infrastructure/guard/fixtures/` names the rule it must break
//! and the edits (JSON Pointer paths into the template) that break it. Each
//! broken copy must fail exactly that rule, so every rule is shown to fail
//! when it should and only then.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use cfn_guard::commands::Executable;
use cfn_guard::commands::validate::{OutputFormatType, ShowSummaryType};
use cfn_guard::utils::reader::{ReadBuffer, Reader};
use cfn_guard::utils::writer::{WriteBuffer, Writer};
use cfn_guard::{CommandBuilder, ValidateBuilder};
use serde_json::Value;

fn infrastructure_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infrastructure")
}

fn template_path() -> PathBuf {
    infrastructure_dir().join("template.yaml")
}

fn rules_path() -> PathBuf {
    infrastructure_dir().join("guard/least-privilege.guard")
}

fn fixtures_dir() -> PathBuf {
    infrastructure_dir().join("guard/fixtures")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()))
}

/// Names of the rules declared in the rules file, from its `rule NAME` lines.
fn declared_rule_names() -> BTreeSet<String> {
    read(&rules_path())
        .lines()
        .filter_map(|line| line.strip_prefix("rule "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Converts a YAML value into JSON, turning CloudFormation short-form tags
/// into their long form the way cfn-guard's own loader does: `!Ref X` becomes
/// `{"Ref": "X"}`, `!GetAtt A.B` becomes `{"Fn::GetAtt": "A.B"}`.
fn yaml_to_json(value: serde_yaml::Value) -> Value {
    match value {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(flag) => Value::Bool(flag),
        serde_yaml::Value::Number(number) => serde_json::to_value(number)
            .unwrap_or_else(|error| panic!("YAML number is not valid JSON: {error}")),
        serde_yaml::Value::String(text) => Value::String(text),
        serde_yaml::Value::Sequence(items) => {
            Value::Array(items.into_iter().map(yaml_to_json).collect())
        }
        serde_yaml::Value::Mapping(mapping) => {
            let mut object = serde_json::Map::new();
            for (key, item) in mapping {
                let key = match key {
                    serde_yaml::Value::String(text) => text,
                    other => panic!("template has a mapping key that is not a string: {other:?}"),
                };
                object.insert(key, yaml_to_json(item));
            }
            Value::Object(object)
        }
        serde_yaml::Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let function = match name {
                "Ref" | "Condition" => name.to_owned(),
                other => format!("Fn::{other}"),
            };
            let mut object = serde_json::Map::new();
            object.insert(function, yaml_to_json(tagged.value));
            Value::Object(object)
        }
    }
}

fn parse_yaml(text: &str, origin: &Path) -> Value {
    let value: serde_yaml::Value = serde_yaml::from_str(text)
        .unwrap_or_else(|error| panic!("{} is not valid YAML: {error}", origin.display()));
    yaml_to_json(value)
}

/// Rule outcome for one document, as cfn-guard reports it.
#[derive(Debug, Default)]
struct GuardReport {
    failed: BTreeSet<String>,
    passed: BTreeSet<String>,
    skipped: BTreeSet<String>,
    /// cfn-guard's full JSON report, printed when an assertion fails.
    raw: String,
}

fn names(report: &Value, key: &str) -> BTreeSet<String> {
    let Some(entries) = report.get(key).and_then(Value::as_array) else {
        return BTreeSet::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            entry
                .as_str()
                .or_else(|| entry.pointer("/Rule/name").and_then(Value::as_str))
        })
        .map(str::to_owned)
        .collect()
}

fn parse_report(raw: String) -> GuardReport {
    let report: Value = serde_json::from_str(&raw)
        .unwrap_or_else(|error| panic!("cfn-guard report is not JSON ({error}):\n{raw}"));
    // The validate command reports a list with one entry per data file.
    let report = match report {
        Value::Array(mut files) => {
            assert_eq!(files.len(), 1, "expected one data file in:\n{raw}");
            files.remove(0)
        }
        single => single,
    };
    GuardReport {
        failed: names(&report, "not_compliant"),
        passed: names(&report, "compliant"),
        skipped: names(&report, "not_applicable"),
        raw,
    }
}

/// Evaluates the rules against a data file exactly as `cfn-guard validate`
/// does, with cfn-guard's own YAML and JSON loader. Returns the exit code and
/// the report.
///
/// The in-memory `cfn_guard::run_checks` of cfn-guard 3.2.1 is not used: it
/// returns only the last 8 KiB of its report, which is not JSON.
fn validate_file(data: &Path) -> (i32, GuardReport) {
    let command = ValidateBuilder::default()
        .rules(vec![rules_path().display().to_string()])
        .data(vec![data.display().to_string()])
        .structured(true)
        .output_format(OutputFormatType::JSON)
        .show_summary(vec![ShowSummaryType::None])
        .try_build()
        .unwrap_or_else(|error| panic!("cannot build the cfn-guard validate command: {error}"));
    let mut writer = Writer::new(WriteBuffer::Vec(Vec::new()))
        .unwrap_or_else(|error| panic!("cannot create a cfn-guard output buffer: {error}"));
    let mut reader = Reader::new(ReadBuffer::Cursor(std::io::Cursor::new(Vec::new())));
    let exit_code = command
        .execute(&mut writer, &mut reader)
        .unwrap_or_else(|error| panic!("cfn-guard validate failed on {}: {error}", data.display()));
    let output = writer
        .into_string()
        .unwrap_or_else(|error| panic!("cfn-guard output is not UTF-8: {error}"));
    (exit_code, parse_report(output))
}

/// Writes a template as JSON under the test's scratch folder, so that a
/// failing fixture can be inspected, and returns its path.
fn write_scratch_template(name: &str, template: &Value) -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("infrastructure-checks");
    fs::create_dir_all(&folder)
        .unwrap_or_else(|error| panic!("failed to create {}: {error}", folder.display()));
    let path = folder.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(template)
        .unwrap_or_else(|error| panic!("cannot serialize template {name}: {error}"));
    fs::write(&path, text)
        .unwrap_or_else(|error| panic!("failed to write {}: {error}", path.display()));
    path
}

/// A template edit that breaks one rule.
struct Fixture {
    name: String,
    rule: String,
    template: Value,
}

/// Replaces or inserts the value at `pointer`, whose parent must exist. An
/// array index equal to the array's length appends.
fn set_at(document: &mut Value, pointer: &str, value: Value, fixture: &str) {
    let (parent_pointer, key) = pointer
        .rsplit_once('/')
        .unwrap_or_else(|| panic!("{fixture}: set path {pointer:?} is not a JSON Pointer"));
    let parent = document
        .pointer_mut(parent_pointer)
        .unwrap_or_else(|| panic!("{fixture}: set path {pointer:?} has no parent in the template"));
    let key = key.replace("~1", "/").replace("~0", "~");
    match parent {
        Value::Object(object) => {
            object.insert(key, value);
        }
        Value::Array(items) => {
            let index: usize = key
                .parse()
                .unwrap_or_else(|_| panic!("{fixture}: {key:?} in {pointer:?} is not an index"));
            assert!(
                index <= items.len(),
                "{fixture}: index {index} in {pointer:?} is past the end"
            );
            if index == items.len() {
                items.push(value);
            } else {
                items[index] = value;
            }
        }
        _ => panic!("{fixture}: parent of {pointer:?} is neither an object nor an array"),
    }
}

fn remove_at(document: &mut Value, pointer: &str, fixture: &str) {
    let (parent_pointer, key) = pointer
        .rsplit_once('/')
        .unwrap_or_else(|| panic!("{fixture}: remove path {pointer:?} is not a JSON Pointer"));
    let parent = document.pointer_mut(parent_pointer).unwrap_or_else(|| {
        panic!("{fixture}: remove path {pointer:?} has no parent in the template")
    });
    let key = key.replace("~1", "/").replace("~0", "~");
    let removed = match parent {
        Value::Object(object) => object.remove(&key).is_some(),
        Value::Array(items) => match key.parse::<usize>() {
            Ok(index) if index < items.len() => {
                items.remove(index);
                true
            }
            _ => false,
        },
        _ => false,
    };
    assert!(
        removed,
        "{fixture}: remove path {pointer:?} is not in the template"
    );
}

fn load_fixtures(template: &Value) -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .unwrap_or_else(|error| panic!("failed to list {}: {error}", fixtures_dir().display()))
        .map(|entry| {
            entry
                .expect("directory entry of the fixtures folder")
                .path()
        })
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    paths.sort();

    paths
        .iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            let spec = parse_yaml(&read(path), path);
            let rule = spec
                .get("rule")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{name}: fixture has no `rule` string"))
                .to_owned();

            let mut broken = template.clone();
            let mut edits = 0;
            if let Some(removals) = spec.get("remove") {
                let removals = removals
                    .as_array()
                    .unwrap_or_else(|| panic!("{name}: `remove` must be a list of paths"));
                for pointer in removals {
                    let pointer = pointer
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: `remove` entry is not a string"));
                    remove_at(&mut broken, pointer, &name);
                    edits += 1;
                }
            }
            if let Some(sets) = spec.get("set") {
                let sets = sets
                    .as_object()
                    .unwrap_or_else(|| panic!("{name}: `set` must map paths to values"));
                for (pointer, value) in sets {
                    set_at(&mut broken, pointer, value.clone(), &name);
                    edits += 1;
                }
            }
            assert!(edits > 0, "{name}: fixture changes nothing in the template");
            assert_ne!(
                &broken, template,
                "{name}: fixture leaves the template as it is"
            );

            Fixture {
                name,
                rule,
                template: broken,
            }
        })
        .collect()
}

fn template_json() -> Value {
    parse_yaml(&read(&template_path()), &template_path())
}

#[test]
fn template_passes_every_rule() {
    let rules = declared_rule_names();
    assert!(!rules.is_empty(), "no rules found in the rules file");

    let (exit_code, report) = validate_file(&template_path());

    assert!(
        report.failed.is_empty(),
        "failed rules: {:?}\n{}",
        report.failed,
        report.raw
    );
    assert!(
        report.skipped.is_empty(),
        "rules that did not apply: {:?}\n{}",
        report.skipped,
        report.raw
    );
    assert_eq!(
        report.passed, rules,
        "passed rules differ from declared rules\n{}",
        report.raw
    );
    assert_eq!(exit_code, 0, "cfn-guard validate exit code\n{}", report.raw);
}

#[test]
fn template_as_json_passes_every_rule() {
    // The fixtures are evaluated as JSON made by `yaml_to_json`; this shows
    // that the conversion alone changes no rule's outcome.
    let rules = declared_rule_names();
    let path = write_scratch_template("template", &template_json());

    let (exit_code, report) = validate_file(&path);

    assert!(
        report.failed.is_empty(),
        "failed rules: {:?}\n{}",
        report.failed,
        report.raw
    );
    assert_eq!(
        report.passed, rules,
        "passed rules differ from declared rules\n{}",
        report.raw
    );
    assert_eq!(exit_code, 0, "cfn-guard validate exit code\n{}", report.raw);
}

#[test]
fn each_fixture_fails_only_its_rule() {
    let rules = declared_rule_names();
    let fixtures = load_fixtures(&template_json());
    assert!(
        !fixtures.is_empty(),
        "no fixtures in {}",
        fixtures_dir().display()
    );

    let mut mismatches = Vec::new();
    for fixture in &fixtures {
        assert!(
            rules.contains(&fixture.rule),
            "{}: names rule {} that the rules file does not declare",
            fixture.name,
            fixture.rule
        );
        let path = write_scratch_template(&fixture.name, &fixture.template);
        let (exit_code, report) = validate_file(&path);
        let expected = BTreeSet::from([fixture.rule.clone()]);
        if report.failed == expected && exit_code != 0 {
            println!(
                "fixture {} fails rule {} as expected",
                fixture.name, fixture.rule
            );
        } else {
            mismatches.push(format!(
                "{} should fail only {} but failed {:?} (exit code {exit_code})\n{}",
                fixture.name, fixture.rule, report.failed, report.raw
            ));
        }
    }

    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn every_rule_has_a_fixture_that_breaks_it() {
    let fixtures = load_fixtures(&template_json());
    let broken_rules: BTreeSet<String> = fixtures
        .iter()
        .map(|fixture| fixture.rule.clone())
        .collect();

    let unbroken: Vec<String> = declared_rule_names()
        .into_iter()
        .filter(|rule| !broken_rules.contains(rule))
        .collect();

    assert!(
        unbroken.is_empty(),
        "rules without a fixture that breaks them: {unbroken:?}"
    );
}

#[test]
fn function_code_uri_is_rotation_lambda_crate() {
    let template = template_json();
    let code_uri = template
        .pointer("/Resources/RotationFunction/Properties/CodeUri")
        .and_then(Value::as_str)
        .expect("RotationFunction has a CodeUri string");

    let manifest_path = infrastructure_dir().join(code_uri).join("Cargo.toml");
    let manifest = read(&manifest_path);

    assert!(
        manifest
            .lines()
            .any(|line| line.trim() == r#"name = "rotation-lambda""#),
        "{} does not declare the rotation-lambda package",
        manifest_path.display()
    );
}
