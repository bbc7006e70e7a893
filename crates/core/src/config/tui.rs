//! `[tui]`: the console's theme, keys and colours (checked by the console, which names
//! the key on a mistake).

use serde::Deserialize;
use std::collections::BTreeMap;

/// The console: its colours and its keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuiConfig {
    /// "dark" or "light"; `NO_COLOR` in the environment wins over both.
    #[serde(default)]
    pub theme: ThemeName,
    /// Key (as written: "x", "ctrl-r", "f5") to action name ("refresh", "none" to unbind).
    /// Checked by the console when it builds its keymap, which names this key on a mistake.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// Meaning ("error", "ok", "selected", …) to colour ("red", "#1a7f37", "208"), on top
    /// of the theme. Checked by the console before it opens, naming the key on a mistake.
    #[serde(default)]
    pub colors: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeName {
    #[default]
    Dark,
    Light,
}
