//! Rules for text that crosses a trust boundary.
//!
//! The registry refuses names and reasons that carry control characters, escape sequences or
//! bidirectional overrides; the console strips them again before drawing anything it received,
//! because a registry can be old, compromised or fed by discovery scans.

use std::borrow::Cow;

/// Characters that reorder or hide text on screen: the Arabic letter mark, zero-width marks and
/// joiners, bidi embeddings, overrides and isolates, invisible operators, tag characters, the
/// line and paragraph separators and the byte-order mark.
fn is_invisible_trick(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{2029}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

fn is_forbidden(c: char) -> bool {
    c.is_control() || is_invisible_trick(c)
}

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError(pub String);

impl std::fmt::Display for TextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a one-line field (a name, an email, a team): not empty, at most `max` characters,
/// no control characters or invisible formatting characters.
pub fn check_line(field: &str, value: &str, max: usize) -> Result<(), TextError> {
    if value.trim().is_empty() {
        return Err(TextError(format!("{field} must not be empty")));
    }
    check_free_text(field, value, max)?;
    if value.contains('\n') {
        return Err(TextError(format!("{field} must be a single line")));
    }
    Ok(())
}

/// Checks free text (a description, a reason): at most `max` characters, no control characters
/// other than newline and tab, no invisible formatting characters.
pub fn check_free_text(field: &str, value: &str, max: usize) -> Result<(), TextError> {
    let count = value.chars().count();
    if count > max {
        return Err(TextError(format!(
            "{field} is {count} characters long; at most {max} are allowed"
        )));
    }
    if let Some((pos, c)) = value
        .chars()
        .enumerate()
        .find(|&(_, c)| c != '\n' && c != '\t' && is_forbidden(c))
    {
        return Err(TextError(format!(
            "{field} contains the control or formatting character U+{:04X} at position {}; \
             control characters and escape sequences are not allowed",
            c as u32,
            pos + 1
        )));
    }
    Ok(())
}

/// Checks a scope such as `crm.orders:read` or `s3.finance-reports/2026:write`.
pub fn check_scope(scope: &str) -> Result<(), TextError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "._-:/*".contains(c);
    if scope.is_empty() || scope.len() > 128 {
        return Err(TextError(
            "a scope must be 1 to 128 characters long".to_string(),
        ));
    }
    if !scope.chars().all(ok_char) {
        return Err(TextError(format!(
            "scope {:?} may contain only letters, digits and . _ - : / *",
            strip_for_terminal(scope)
        )));
    }
    if !scope.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(TextError(format!(
            "scope {scope:?} must start with a letter or digit"
        )));
    }
    Ok(())
}

/// Checks an email address enough to catch typos; the directory is the real authority.
pub fn check_email(email: &str) -> Result<(), TextError> {
    check_line("email", email, 254)?;
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(TextError(format!("{email:?} is not an email address")))
    }
}

/// Removes escape sequences, control characters and invisible formatting characters so that
/// untrusted text can be drawn on a terminal. Newlines and tabs become spaces.
pub fn strip_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_forbidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape_sequence(&mut chars),
            // C1 control sequence introducer and string introducers: skip what they carry.
            '\u{9b}' => skip_csi_body(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{9e}' | '\u{9f}' => skip_string_body(&mut chars),
            '\n' | '\t' | '\r' => out.push(' '),
            c if is_forbidden(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_escape_sequence(chars: &mut Chars<'_>) {
    match chars.peek().copied() {
        Some('[') => {
            chars.next();
            skip_csi_body(chars);
        }
        // OSC, DCS, SOS, PM, APC: strings ended by BEL or ST (ESC \).
        Some(']' | 'P' | 'X' | '^' | '_') => {
            chars.next();
            skip_string_body(chars);
        }
        // A two-character escape such as ESC c (reset) or ESC ( B.
        Some('(' | ')' | '*' | '+' | '#' | '%') => {
            chars.next();
            chars.next();
        }
        Some(_) => {
            chars.next();
        }
        None => {}
    }
}

fn skip_csi_body(chars: &mut Chars<'_>) {
    // Parameters and intermediates, then one final byte in @..~.
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            break;
        }
    }
}

fn skip_string_body(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_escape_sequences_and_controls() {
        assert_eq!(strip_for_terminal("plain name"), "plain name");
        assert_eq!(strip_for_terminal("red\u{1b}[31mtext\u{1b}[0m"), "redtext");
        assert_eq!(
            strip_for_terminal("title\u{1b}]0;pwned\u{7}after"),
            "titleafter"
        );
        assert_eq!(strip_for_terminal("a\u{1b}]8;;http://x\u{1b}\\b"), "ab");
        assert_eq!(strip_for_terminal("bell\u{7}\u{8}x"), "bellx");
        assert_eq!(strip_for_terminal("rtl\u{202E}txt"), "rtltxt");
        assert_eq!(strip_for_terminal("two\nlines"), "two lines");
        assert_eq!(strip_for_terminal("c1\u{9b}2Jafter"), "c1after");
        assert_eq!(strip_for_terminal("trailing\u{1b}"), "trailing");
    }

    #[test]
    fn refuses_control_characters_in_names() {
        assert!(check_line("name", "billing-bot", 128).is_ok());
        assert!(check_line("name", "évaluation agent ✓", 128).is_ok());
        let err = check_line("name", "bad\u{1b}[31m", 128).unwrap_err();
        assert!(err.0.contains("U+001B"), "{err}");
        assert!(check_line("name", "", 128).is_err());
        assert!(check_line("name", "x\u{202E}y", 128).is_err());
        assert!(check_line("name", &"a".repeat(129), 128).is_err());
        assert!(check_free_text("reason", "line one\nline two", 100).is_ok());
    }

    #[test]
    fn refuses_and_strips_every_invisible_or_bidi_character() {
        let tricks = [
            '\u{061C}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{2065}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{E0000}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
        ];
        for c in tricks {
            let text = format!("ada{c}bot");
            let err = check_line("name", &text, 128).unwrap_err();
            assert!(err.0.contains(&format!("U+{:04X}", c as u32)), "{err}");
            assert!(check_free_text("reason", &text, 100).is_err());
            assert!(check_email(&format!("ad{c}a@example.com")).is_err());
            assert_eq!(strip_for_terminal(&text), "adabot");
        }
        // Ordinary non-Latin text stays allowed.
        assert!(check_line("name", "وكيل الفواتير", 128).is_ok());
        assert!(check_line("name", "請求書エージェント", 128).is_ok());
    }

    #[test]
    fn scopes_and_emails() {
        assert!(check_scope("crm.orders:read").is_ok());
        assert!(check_scope("s3.finance-reports/2026:write").is_ok());
        assert!(check_scope("bad scope").is_err());
        assert!(check_scope(":read").is_err());
        assert!(check_email("ada@example.com").is_ok());
        assert!(check_email("ada@example").is_err());
        assert!(check_email("ada example.com").is_err());
    }
}
