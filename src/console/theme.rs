//! Themes: named styles for every part of the screen, read from TOML (see `config.rs`).

use ratatui::style::{Color, Style};

/// Every styled part of the screen. The TOML key of each is `key()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Base,
    Header,
    Banner,
    TableHeader,
    Selected,
    Marked,
    Active,
    Suspended,
    Decommissioned,
    Flag,
    Dim,
    Accent,
    Key,
    Hint,
    Error,
    Ok,
    Border,
    Title,
    Input,
    Button,
    ButtonFocused,
}

pub const SLOTS: [Slot; 21] = [
    Slot::Base,
    Slot::Header,
    Slot::Banner,
    Slot::TableHeader,
    Slot::Selected,
    Slot::Marked,
    Slot::Active,
    Slot::Suspended,
    Slot::Decommissioned,
    Slot::Flag,
    Slot::Dim,
    Slot::Accent,
    Slot::Key,
    Slot::Hint,
    Slot::Error,
    Slot::Ok,
    Slot::Border,
    Slot::Title,
    Slot::Input,
    Slot::Button,
    Slot::ButtonFocused,
];

impl Slot {
    pub fn key(self) -> &'static str {
        match self {
            Slot::Base => "base",
            Slot::Header => "header",
            Slot::Banner => "banner",
            Slot::TableHeader => "table_header",
            Slot::Selected => "selected",
            Slot::Marked => "marked",
            Slot::Active => "active",
            Slot::Suspended => "suspended",
            Slot::Decommissioned => "decommissioned",
            Slot::Flag => "flag",
            Slot::Dim => "dim",
            Slot::Accent => "accent",
            Slot::Key => "key",
            Slot::Hint => "hint",
            Slot::Error => "error",
            Slot::Ok => "ok",
            Slot::Border => "border",
            Slot::Title => "title",
            Slot::Input => "input",
            Slot::Button => "button",
            Slot::ButtonFocused => "button_focused",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    styles: Vec<Style>,
}

impl Theme {
    pub(crate) fn new(name: &str, styles: Vec<Style>) -> Theme {
        assert_eq!(styles.len(), SLOTS.len());
        Theme {
            name: name.to_string(),
            styles,
        }
    }

    pub fn style(&self, slot: Slot) -> Style {
        let i = SLOTS.iter().position(|s| *s == slot).expect("every slot");
        self.styles[i]
    }

    /// The same theme with every colour removed (`NO_COLOR`): modifiers carry the meaning. A
    /// style that stood out by its background (selection, header, key hints) becomes reverse
    /// video, so that it still stands out.
    pub fn without_colors(&self) -> Theme {
        Theme {
            name: self.name.clone(),
            styles: self
                .styles
                .iter()
                .map(|s| {
                    let mut s = *s;
                    if matches!(s.bg, Some(c) if c != Color::Reset) {
                        s = s.add_modifier(ratatui::style::Modifier::REVERSED);
                    }
                    s.fg = None;
                    s.bg = None;
                    s
                })
                .collect(),
        }
    }

    /// True when no style sets a colour (what NO_COLOR promises).
    pub fn is_colorless(&self) -> bool {
        self.styles.iter().all(|s| {
            matches!(s.fg, None | Some(Color::Reset)) && matches!(s.bg, None | Some(Color::Reset))
        })
    }
}

impl Theme {
    /// The style of an agent status.
    pub fn status_style(&self, s: crate::model::AgentStatus) -> Style {
        use crate::model::AgentStatus;
        self.style(match s {
            AgentStatus::Active => Slot::Active,
            AgentStatus::Suspended => Slot::Suspended,
            AgentStatus::Decommissioned => Slot::Decommissioned,
        })
    }
}
