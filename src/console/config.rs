//! The console's part of `config.toml` (`theme = "name"` and a `[keys]` table) and user theme
//! files in `<config>/themes/`.
//!
//! A broken file is refused with a message that names the file, the line and the key; the
//! console never starts with half a configuration. `server` belongs to the command line's
//! settings and is accepted here without being read.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::keymap::{KeySpec, Keymap};
use super::theme::{SLOTS, Theme};

/// A refusal that points at the offending place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {}{message}", file.display(), key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub key: Option<String>,
    pub message: String,
}

/// The 1-based line of a byte offset.
pub fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

struct Doc<'a> {
    file: &'a Path,
    source: &'a str,
}

impl Doc<'_> {
    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: line_of(self.source, span.start),
            key: (!key.is_empty()).then(|| key.to_string()),
            message: message.into(),
        }
    }

    fn parse(&self) -> Result<DeTable<'_>, ConfigError> {
        DeTable::parse(self.source)
            .map(Spanned::into_inner)
            .map_err(|e| ConfigError {
                file: self.file.to_path_buf(),
                line: e.span().map_or(1, |s| line_of(self.source, s.start)),
                key: None,
                message: format!("not valid TOML: {}", e.message().trim()),
            })
    }
}

/// What `config.toml` says to the console.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub theme: Option<String>,
    /// Command name → keys, as written (checked against the keymap).
    pub keys: BTreeMap<String, Vec<KeySpec>>,
}

/// Everything the console reads from the config dir, checked.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub theme: Theme,
    pub keymap: Keymap,
    pub config: ConsoleConfig,
}

/// Reads `<config_dir>/config.toml` (absent = defaults), the chosen theme and the key overrides.
/// `no_color` (the `NO_COLOR` convention) strips every colour from whatever theme is chosen.
pub fn load(config_dir: &Path, no_color: bool) -> Result<Loaded, ConfigError> {
    let path = config_dir.join("config.toml");
    let config = match std::fs::read_to_string(&path) {
        Ok(source) => parse_config(&path, &source)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConsoleConfig::default(),
        Err(e) => {
            return Err(ConfigError {
                file: path,
                line: 1,
                key: None,
                message: format!("cannot read it: {e}"),
            });
        }
    };
    let keymap = Keymap::with_overrides(&config.keys).map_err(|(key, message)| {
        let source = std::fs::read_to_string(&path).unwrap_or_default();
        let line = find_key_line(&source, &key);
        ConfigError {
            file: path.clone(),
            line,
            key: Some(format!("keys.{key}")),
            message,
        }
    })?;
    let default_name = if no_color { "mono" } else { "default" };
    let name = config.theme.as_deref().unwrap_or(default_name);
    let theme = load_theme(config_dir, name).map_err(|e| match e {
        ThemeLookup::Broken(e) => e,
        ThemeLookup::Unknown(message) => ConfigError {
            file: path.clone(),
            line: find_key_line(&std::fs::read_to_string(&path).unwrap_or_default(), "theme"),
            key: Some("theme".into()),
            message,
        },
    })?;
    let theme = if no_color {
        theme.without_colors()
    } else {
        theme
    };
    Ok(Loaded {
        theme,
        keymap,
        config,
    })
}

/// Writes `theme = "NAME"` into `<config_dir>/config.toml` (`:theme! NAME`), keeping every
/// other line as written: the top-level `theme` line is replaced, or one is put first. The
/// file is replaced whole (written aside, then renamed), never left half-written.
pub fn remember_theme(config_dir: &Path, name: &str) -> std::io::Result<()> {
    let path = config_dir.join("config.toml");
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let line = format!("theme = \"{name}\"");
    let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
    // Top-level keys come before the first [table].
    let top = lines
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .unwrap_or(lines.len());
    let existing = lines[..top].iter().position(|l| {
        let l = l.trim_start();
        l.strip_prefix("theme")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    });
    match existing {
        Some(i) => lines[i] = line,
        None => lines.insert(0, line),
    }
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::create_dir_all(config_dir)?;
    let aside = config_dir.join(".config.toml.new");
    std::fs::write(&aside, text)?;
    std::fs::rename(&aside, &path)
}

/// The line where `key = ` is written (for errors found after parsing).
fn find_key_line(source: &str, key: &str) -> usize {
    source
        .lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(1, |i| i + 1)
}

pub fn parse_config(file: &Path, source: &str) -> Result<ConsoleConfig, ConfigError> {
    let doc = Doc { file, source };
    let table = doc.parse()?;
    let mut config = ConsoleConfig::default();
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        match name {
            "server" => {}
            "theme" => match value.get_ref() {
                DeValue::String(s) => config.theme = Some(s.to_string()),
                other => {
                    return Err(doc.err(
                        value.span(),
                        "theme",
                        format!(
                            "expected a theme name in quotes, found {}",
                            other.type_str()
                        ),
                    ));
                }
            },
            "keys" => {
                let DeValue::Table(keys) = value.get_ref() else {
                    return Err(doc.err(key.span(), "keys", "expected a table: [keys]"));
                };
                for (command, spec) in keys.iter() {
                    let command_name = command.get_ref().to_string();
                    let full = format!("keys.{command_name}");
                    let texts: Vec<(String, Range<usize>)> = match spec.get_ref() {
                        DeValue::String(s) => vec![(s.to_string(), spec.span())],
                        DeValue::Array(items) => {
                            let mut out = Vec::new();
                            for item in items.iter() {
                                match item.get_ref() {
                                    DeValue::String(s) => out.push((s.to_string(), item.span())),
                                    other => {
                                        return Err(doc.err(
                                            item.span(),
                                            &full,
                                            format!(
                                                "expected a key such as \"ctrl-r\", found {}",
                                                other.type_str()
                                            ),
                                        ));
                                    }
                                }
                            }
                            out
                        }
                        other => {
                            return Err(doc.err(
                                spec.span(),
                                &full,
                                format!(
                                    "expected a key such as \"X\" or a list of keys, found {}",
                                    other.type_str()
                                ),
                            ));
                        }
                    };
                    if texts.is_empty() {
                        return Err(doc.err(spec.span(), &full, "needs at least one key"));
                    }
                    if super::keymap::command_by_name(&command_name).is_none() {
                        return Err(doc.err(
                            command.span(),
                            &full,
                            format!(
                                "no such command; the commands are: {}",
                                super::keymap::command_names().join(", ")
                            ),
                        ));
                    }
                    let mut keys_for = Vec::new();
                    for (text, span) in texts {
                        let spec =
                            KeySpec::parse(&text).map_err(|m| doc.err(span.clone(), &full, m))?;
                        keys_for.push(spec);
                    }
                    config.keys.insert(command_name, keys_for);
                }
            }
            other => {
                return Err(doc.err(
                    key.span(),
                    other,
                    "unknown setting; config.toml takes server, theme and [keys]",
                ));
            }
        }
    }
    Ok(config)
}

pub enum ThemeLookup {
    Unknown(String),
    Broken(ConfigError),
}

/// The shipped themes, embedded in the binary.
pub const BUILT_IN: [(&str, &str); 4] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

/// The names of every theme on offer: built-in ones, then the user's.
pub fn theme_names(config_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = BUILT_IN.iter().map(|(n, _)| n.to_string()).collect();
    if let Ok(dir) = std::fs::read_dir(config_dir.join("themes")) {
        let mut user: Vec<String> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let p = e.path();
                (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(str::to_string))?
            })
            .filter(|n| !names.contains(n))
            .collect();
        user.sort();
        names.extend(user);
    }
    names
}

/// Finds a theme: `<config>/themes/NAME.toml` first (it may override a built-in), then the
/// built-in ones. A user theme starts from `default` and overrides the styles it names.
pub fn load_theme(config_dir: &Path, name: &str) -> Result<Theme, ThemeLookup> {
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err(ThemeLookup::Unknown(format!(
            "{name:?} is not a theme name (letters, digits, - and _)"
        )));
    }
    let user = config_dir.join("themes").join(format!("{name}.toml"));
    if let Ok(source) = std::fs::read_to_string(&user) {
        let base = builtin_theme("default");
        return parse_theme(&user, &source, name, Some(&base)).map_err(ThemeLookup::Broken);
    }
    match BUILT_IN.iter().find(|(n, _)| *n == name) {
        Some(_) => Ok(builtin_theme(name)),
        None => Err(ThemeLookup::Unknown(format!(
            "no theme named {name:?}; available: {}",
            theme_names(config_dir).join(", ")
        ))),
    }
}

/// A shipped theme (they are checked by a test, so this cannot fail at run time).
pub fn builtin_theme(name: &str) -> Theme {
    let (n, source) = BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or(&BUILT_IN[0]);
    parse_theme(Path::new(&format!("themes/{n}.toml")), source, n, None)
        .expect("shipped themes are valid")
}

/// Parses a theme file. Without `base`, every style must be given (shipped themes).
pub fn parse_theme(
    file: &Path,
    source: &str,
    name: &str,
    base: Option<&Theme>,
) -> Result<Theme, ConfigError> {
    let doc = Doc { file, source };
    let table = doc.parse()?;
    let mut styles: Vec<Option<Style>> = match base {
        Some(b) => SLOTS.iter().map(|s| Some(b.style(*s))).collect(),
        None => vec![None; SLOTS.len()],
    };
    for (key, value) in table.iter() {
        let top = key.get_ref().as_ref();
        if top != "styles" {
            return Err(doc.err(
                key.span(),
                top,
                "unknown section; a theme has only [styles]",
            ));
        }
        let DeValue::Table(entries) = value.get_ref() else {
            return Err(doc.err(key.span(), "styles", "expected a table: [styles]"));
        };
        for (slot_key, spec) in entries.iter() {
            let slot_name = slot_key.get_ref().as_ref();
            let full = format!("styles.{slot_name}");
            let Some(pos) = SLOTS.iter().position(|s| s.key() == slot_name) else {
                return Err(doc.err(
                    slot_key.span(),
                    &full,
                    format!(
                        "unknown style; the styles are: {}",
                        SLOTS.iter().map(|s| s.key()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            styles[pos] = Some(parse_style(&doc, &full, spec)?);
        }
    }
    if let Some(missing) = SLOTS.iter().zip(&styles).find(|(_, s)| s.is_none()) {
        return Err(ConfigError {
            file: file.to_path_buf(),
            line: 1,
            key: Some(format!("styles.{}", missing.0.key())),
            message: "missing; a shipped theme must define every style".into(),
        });
    }
    Ok(Theme::new(
        name,
        styles.into_iter().map(|s| s.expect("checked")).collect(),
    ))
}

fn parse_style(
    doc: &Doc<'_>,
    key: &str,
    spec: &Spanned<DeValue<'_>>,
) -> Result<Style, ConfigError> {
    let DeValue::Table(fields) = spec.get_ref() else {
        return Err(doc.err(
            spec.span(),
            key,
            "expected an inline table such as { fg = \"cyan\", bold = true }",
        ));
    };
    let mut style = Style::default();
    for (field, value) in fields.iter() {
        let f = field.get_ref().as_ref();
        let full = format!("{key}.{f}");
        match f {
            "fg" | "bg" => {
                let color =
                    parse_color(value.get_ref()).map_err(|m| doc.err(value.span(), &full, m))?;
                style = if f == "fg" {
                    style.fg(color)
                } else {
                    style.bg(color)
                };
            }
            "bold" | "dim" | "italic" | "underline" | "reverse" => {
                let DeValue::Boolean(on) = value.get_ref() else {
                    return Err(doc.err(value.span(), &full, "expected true or false"));
                };
                let m = match f {
                    "bold" => Modifier::BOLD,
                    "dim" => Modifier::DIM,
                    "italic" => Modifier::ITALIC,
                    "underline" => Modifier::UNDERLINED,
                    _ => Modifier::REVERSED,
                };
                if *on {
                    style = style.add_modifier(m);
                }
            }
            _ => {
                return Err(doc.err(
                    field.span(),
                    &full,
                    "unknown field; a style takes fg, bg, bold, dim, italic, underline, reverse",
                ));
            }
        }
    }
    Ok(style)
}

const COLOR_NAMES: [(&str, Color); 17] = [
    ("reset", Color::Reset),
    ("black", Color::Black),
    ("red", Color::Red),
    ("green", Color::Green),
    ("yellow", Color::Yellow),
    ("blue", Color::Blue),
    ("magenta", Color::Magenta),
    ("cyan", Color::Cyan),
    ("gray", Color::Gray),
    ("darkgray", Color::DarkGray),
    ("lightred", Color::LightRed),
    ("lightgreen", Color::LightGreen),
    ("lightyellow", Color::LightYellow),
    ("lightblue", Color::LightBlue),
    ("lightmagenta", Color::LightMagenta),
    ("lightcyan", Color::LightCyan),
    ("white", Color::White),
];

fn parse_color(value: &DeValue<'_>) -> Result<Color, String> {
    match value {
        DeValue::String(s) => {
            let s = s.trim();
            if let Some(hex) = s.strip_prefix('#') {
                if hex.len() == 6
                    && let Ok(v) = u32::from_str_radix(hex, 16)
                {
                    return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
                }
                return Err(format!("{s:?} is not a colour: write #rrggbb"));
            }
            COLOR_NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(s))
                .map(|(_, c)| *c)
                .ok_or_else(|| {
                    format!(
                        "unknown colour {s:?}; use #rrggbb, 0-255 or one of: {}",
                        COLOR_NAMES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
        }
        DeValue::Integer(i) => i
            .as_str()
            .replace('_', "")
            .parse::<u8>()
            .ok()
            .filter(|_| i.radix() == 10)
            .map(Color::Indexed)
            .ok_or(())
            .map_err(|_| format!("colour index {} is not in 0-255", i.as_str())),
        other => Err(format!(
            "expected a colour name, \"#rrggbb\" or 0-255, found {}",
            other.type_str()
        )),
    }
}
