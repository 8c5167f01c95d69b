//! `?`: the keys, generated from the keymap (with the user's overrides), showing only what the
//! signed-in person may do, each with the name that rebinds it in `config.toml [keys]`. Two
//! columns when the terminal is wide enough, otherwise one that scrolls.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{Hint, Overlay, Room};
use crate::console::action::Effect;
use crate::console::app::App;
use crate::console::keymap::{Binding, Command, Scope};
use crate::console::layout;
use crate::console::list::Scroll;
use crate::console::theme::Slot;

#[derive(Debug, Default)]
pub struct HelpState {
    pub scroll: Scroll,
}

/// One help line: keys (and `:` words), the binding's name, what it does.
fn entry(b: &Binding) -> (String, &'static str, &'static str) {
    let mut keys = if b.keys.is_empty() {
        String::new()
    } else {
        b.keys_label()
    };
    if !b.words.is_empty() {
        if !keys.is_empty() {
            keys.push(' ');
        }
        keys.push_str(&b.words_label());
    }
    (keys, b.name, b.help)
}

fn section_lines<'a>(app: &App, title: &'a str, bindings: &[&Binding]) -> Vec<Line<'a>> {
    let t = &app.theme;
    let mut lines = vec![Line::from(Span::styled(
        format!(" {title}"),
        t.style(Slot::Title),
    ))];
    let entries: Vec<_> = bindings.iter().map(|b| entry(b)).collect();
    let kw = entries
        .iter()
        .map(|(k, _, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(10);
    let nw = entries
        .iter()
        .map(|(_, n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    for (keys, name, help) in entries {
        lines.push(Line::from(vec![
            Span::styled(format!("   {keys:<kw$} "), t.style(Slot::Accent)),
            Span::styled(format!("{name:<nw$}  "), t.style(Slot::Dim)),
            Span::styled(help, t.style(Slot::Hint)),
        ]));
    }
    lines.push(Line::from(""));
    lines
}

/// The help's columns, for this person and this terminal.
fn columns(app: &App) -> Vec<Vec<Line<'static>>> {
    let t = &app.theme;
    let sections = app.keymap.help_sections(|c| app.may_at_all(c));
    let footer = Line::from(Span::styled(
        " Rebind a key in config.toml [keys] by the name in the middle column.",
        t.style(Slot::Dim),
    ));
    let mut columns: Vec<Vec<Line<'static>>> = Vec::new();
    if layout::help_two_columns(app) {
        // The inventory's keys on the right, everything else on the left.
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for (scope, bindings) in &sections {
            let lines = section_lines(app, scope.title(), bindings);
            if *scope == Scope::Inventory || !scope.is_screen() {
                right.extend(lines);
            } else {
                left.extend(lines);
            }
        }
        right.push(footer);
        columns.push(left);
        columns.push(right);
    } else {
        let mut one = Vec::new();
        for (scope, bindings) in &sections {
            one.extend(section_lines(app, scope.title(), bindings));
        }
        one.push(footer);
        columns.push(one);
    }
    columns
}

/// Lines of the longest column (what scrolling runs over).
fn length(app: &App) -> usize {
    columns(app).iter().map(Vec::len).max().unwrap_or(0)
}

impl Room for HelpState {
    fn scope(&self) -> Scope {
        Scope::Reading
    }

    fn key(
        mut self,
        app: &mut App,
        _key: KeyEvent,
        command: Option<Command>,
        _fx: &mut Vec<Effect>,
    ) -> Option<Overlay> {
        let (len, page) = (length(app), layout::help_rows(app));
        match command {
            Some(Command::Cancel) => return None,
            Some(Command::Up) => self.scroll.move_by(-1, len, page),
            Some(Command::Down) => self.scroll.move_by(1, len, page),
            Some(Command::PageUp) => self.scroll.move_by(-(page as isize), len, page),
            Some(Command::PageDown) => self.scroll.move_by(page as isize, len, page),
            _ => {}
        }
        Some(Overlay::Help(self))
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let rect = layout::help(area);
        frame.render_widget(Clear, rect);
        let block = Block::bordered()
            .title(Span::styled(" Help: keys ", t.style(Slot::Title)))
            .title_bottom(Span::styled(" ↑↓ scroll · esc closes ", t.style(Slot::Dim)))
            .border_style(t.style(Slot::Border))
            .style(t.style(Slot::Base));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let columns = columns(app);
        let areas = Layout::horizontal(vec![Constraint::Fill(1); columns.len()]).split(inner);
        for (lines, column) in columns.into_iter().zip(areas.iter()) {
            let max = (lines.len() as u16).saturating_sub(column.height);
            let scroll = (self.scroll.offset as u16).min(max);
            frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), *column);
        }
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Key(Command::Down, "scroll"),
            Hint::Key(Command::Cancel, "close"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::config::builtin_theme;
    use crate::console::inventory::Inventory;
    use crate::console::keymap::Keymap;
    use crate::model::Person;
    use crate::model::api::WhoAmI;
    use crate::model::permissions::{Permissions, Reach};

    fn app(may: Option<Permissions>) -> App {
        let mut app = App::new(
            "http://registry.test",
            std::path::PathBuf::from("/nonexistent"),
            Inventory::new("http://registry.test"),
            builtin_theme("default"),
            Keymap::default(),
            false,
            0,
        );
        app.width = 200;
        app.height = 80;
        app.me = Some(WhoAmI {
            person: Person {
                id: "p1".into(),
                email: "omar@example.com".into(),
                display_name: "Omar".into(),
                roles: vec![],
                active: true,
                manager: None,
                team: None,
                created_at: chrono::Utc::now(),
                change_seq: 0,
                left_at: None,
            },
            token_id: "tok".into(),
            token_expires_at: chrono::Utc::now(),
            server_name: "test".into(),
            may,
        });
        app
    }

    fn text(app: &App) -> String {
        columns(app)
            .into_iter()
            .flatten()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn help_lists_only_what_the_person_may_do_with_the_names_that_rebind_it() {
        let owner = Permissions {
            revoke: Reach::Owned,
            decommission: Reach::Owned,
            ..Permissions::default()
        };
        let help = text(&app(Some(owner)));
        // Their own agents: revoke and decommission are theirs, with their [keys] names.
        assert!(
            help.contains("revoke") && help.contains("decommission"),
            "{help}"
        );
        assert!(
            help.contains(":agent NAME") && help.contains("open-agent"),
            "{help}"
        );
        assert!(
            help.contains("prompt-accept"),
            "dialog keys are bindings too:\n{help}"
        );
        // Not theirs: owners, reinstating, campaigns, and flags (this registry says none).
        for hidden in [
            "acknowledge-flag",
            "assign-owner",
            "reinstate",
            "new-campaign",
            "close-campaign",
            "campaign-progress",
            "pause-stream",
            ":streams",
            "reassign",
        ] {
            assert!(
                !help.contains(hidden),
                "{hidden} shown to an owner:\n{help}"
            );
        }

        let admin = Permissions {
            set_owner: Reach::All,
            revoke: Reach::All,
            reinstate: Reach::All,
            decommission: Reach::All,
            read_all_reviews: true,
            administer_campaigns: true,
            read_audit: true,
            acknowledge_flags: Reach::All,
            manage_streams: true,
        };
        let help = text(&app(Some(admin)));
        for shown in [
            "acknowledge-flag",
            "assign-owner",
            "reinstate",
            "new-campaign",
            "close-campaign",
            "pause-stream",
            ":streams",
            "reassign",
        ] {
            assert!(
                help.contains(shown),
                "{shown} hidden from an admin:\n{help}"
            );
        }
        // A registry that does not say (older): every key is listed; it still refuses.
        let help = text(&app(None));
        assert!(help.contains("assign-owner"), "{help}");
        // An owner may acknowledge flags on their own agents: `a` is theirs.
        let flagging_owner = Permissions {
            acknowledge_flags: Reach::Owned,
            ..Permissions::default()
        };
        let help = text(&app(Some(flagging_owner)));
        assert!(help.contains("acknowledge-flag"), "{help}");
    }

    #[test]
    fn help_follows_a_rebinding() {
        let mut a = app(None);
        let mut o = std::collections::BTreeMap::new();
        o.insert(
            "prompt-cancel".to_string(),
            vec![crate::console::keymap::KeySpec::parse("ctrl-g").unwrap()],
        );
        a.keymap = Keymap::with_overrides(&o).unwrap();
        let help = text(&a);
        let line = help
            .lines()
            .find(|l| l.contains("prompt-cancel"))
            .unwrap_or_else(|| panic!("no prompt-cancel in\n{help}"));
        assert!(line.contains("ctrl-g"), "{line}");
    }
}
