//! The console's configuration over folders of valid and invalid files: every valid folder
//! loads (and means what its `expect.toml` says); every invalid one is refused with a message
//! naming the file, the line and the key (its `expect.txt`).

use std::path::{Path, PathBuf};

use ratatui::style::Color;
use steward::console::config::{self, BUILT_IN};
use steward::console::keymap::{KeySpec, command_by_name};
use steward::console::theme::Slot;

fn cases(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "fixtures in {}", dir.display());
    cases
}

#[test]
fn valid_configurations_load() {
    for case in cases("valid") {
        let loaded = config::load(&case, false)
            .unwrap_or_else(|e| panic!("{}: refused: {e}", case.display()));
        let colourless = config::load(&case, true).unwrap();
        assert!(colourless.theme.is_colorless(), "{}", case.display());
        let expect = case.join("expect.toml");
        let Ok(text) = std::fs::read_to_string(&expect) else {
            assert_eq!(loaded.theme.name, "default", "{}", case.display());
            continue;
        };
        let expect: toml::Table = toml::from_str(&text).unwrap();
        if let Some(theme) = expect.get("theme").and_then(|t| t.as_str()) {
            assert_eq!(loaded.theme.name, theme, "{}", case.display());
        }
        if let Some(keys) = expect.get("keys").and_then(|k| k.as_table()) {
            for (command, key) in keys {
                let spec = KeySpec::parse(key.as_str().unwrap()).unwrap();
                assert_eq!(
                    loaded.keymap.lookup(spec, false),
                    command_by_name(command),
                    "{}: {key} should mean {command}",
                    case.display()
                );
            }
        }
    }
}

#[test]
fn user_themes_override_only_what_they_name() {
    let case =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/theme-and-keys");
    let loaded = config::load(&case, false).unwrap();
    let default = config::builtin_theme("default");
    assert_eq!(
        loaded.theme.style(Slot::Header).bg,
        Some(Color::Rgb(0, 0x33, 0x66))
    );
    assert_eq!(
        loaded.theme.style(Slot::Selected).bg,
        Some(Color::Indexed(45))
    );
    assert_eq!(
        loaded.theme.style(Slot::Banner),
        default.style(Slot::Banner)
    );
    // The override moved revoke off X.
    assert_eq!(loaded.keymap.lookup(KeySpec::char('X'), false), None);
}

#[test]
fn invalid_configurations_are_refused_precisely() {
    for case in cases("invalid") {
        let expected = std::fs::read_to_string(case.join("expect.txt")).unwrap();
        let expected = expected.trim();
        let err = match config::load(&case, false) {
            Ok(_) => panic!("{}: accepted a broken configuration", case.display()),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(expected),
            "{}:\n  got:      {err}\n  expected: …{expected}…",
            case.display()
        );
        assert!(
            err.starts_with(case.to_str().unwrap()),
            "names the file: {err}"
        );
    }
}

#[test]
fn shipped_themes_define_every_style() {
    for (name, source) in BUILT_IN {
        let path = PathBuf::from(format!("themes/{name}.toml"));
        let theme =
            config::parse_theme(&path, source, name, None).unwrap_or_else(|e| panic!("{e}"));
        // Selection never relies on colour alone.
        let selected = theme.without_colors().style(Slot::Selected);
        assert!(
            selected
                .add_modifier
                .contains(ratatui::style::Modifier::REVERSED),
            "{name}: the selection must stay visible without colour"
        );
    }
    assert!(config::builtin_theme("mono").is_colorless());
}

/// `:theme! NAME` writes `theme = "NAME"` into config.toml and keeps every other line.
#[test]
fn a_remembered_theme_replaces_only_the_theme_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "# mine\n[keys]\nrevoke = \"ctrl-x\"\n",
    )
    .unwrap();
    config::remember_theme(dir.path(), "light").unwrap();
    config::remember_theme(dir.path(), "mono").unwrap();
    let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert_eq!(text.matches("theme =").count(), 1, "{text}");
    assert!(
        text.contains("# mine") && text.contains("revoke = \"ctrl-x\""),
        "{text}"
    );
    let loaded = config::load(dir.path(), false).unwrap();
    assert_eq!(loaded.theme.name, "mono");
    assert_eq!(
        loaded
            .keymap
            .lookup(KeySpec::parse("ctrl-x").unwrap(), false),
        command_by_name("revoke")
    );
    // No file yet: one is made.
    let empty = tempfile::tempdir().unwrap();
    config::remember_theme(empty.path(), "light").unwrap();
    assert_eq!(
        config::load(empty.path(), false).unwrap().theme.name,
        "light"
    );
}
