//! The language findings and reports speak: English or Simplified Chinese,
//! from `--lang` or the environment (`LANG`). The messages live in
//! `harness/locales/findings.yml`, compiled in by rust-i18n; English is
//! the fallback, so a message missing in one catalogue never prints its id.

use std::sync::atomic::{AtomicU8, Ordering};

/// A language of the message catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Lang {
    /// English.
    #[value(name = "en")]
    En,
    /// Simplified Chinese.
    #[value(name = "zh-CN")]
    ZhCn,
}

impl Lang {
    /// The catalogue's locale code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language a locale string names (`zh_CN.UTF-8`, `zh-SG`, `en_US`):
    /// Simplified Chinese for mainland China and Singapore, and for `zh`
    /// and `zh-Hans`; English otherwise.
    pub fn from_locale(locale: &str) -> Lang {
        let tag = locale
            .split(['.', '@'])
            .next()
            .unwrap_or("")
            .replace('_', "-")
            .to_ascii_lowercase();
        match tag.as_str() {
            "zh" | "zh-cn" | "zh-sg" | "zh-hans" | "zh-hans-cn" | "zh-hans-sg" => Lang::ZhCn,
            _ => Lang::En,
        }
    }

    /// The language of the environment: `LC_ALL`, then `LC_MESSAGES`, then
    /// `LANG`, the first that is set and not empty.
    pub fn from_env() -> Lang {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty())
            .map_or(Lang::En, |v| Lang::from_locale(&v))
    }
}

static CURRENT: AtomicU8 = AtomicU8::new(0);

/// Sets the language of this process's output (the CLI does, once).
pub fn set(lang: Lang) {
    CURRENT.store(lang as u8, Ordering::Relaxed);
}

/// The language of this process's output.
pub fn current() -> Lang {
    match CURRENT.load(Ordering::Relaxed) {
        1 => Lang::ZhCn,
        _ => Lang::En,
    }
}

/// The message `key` in `lang`, with each `%{name}` replaced by its value
/// in `args`; English when `lang` lacks it, the key itself only when no
/// catalogue has it.
pub fn tr_in(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let text = crate::_rust_i18n_try_translate(lang.code(), key)
        .or_else(|| crate::_rust_i18n_try_translate("en", key))
        .map_or_else(|| key.to_owned(), |t| t.into_owned());
    args.iter().fold(text, |t, (name, value)| {
        t.replace(&format!("%{{{name}}}"), value)
    })
}

/// `tr_in` in the current language.
pub fn tr(key: &str, args: &[(&str, &str)]) -> String {
    tr_in(current(), key, args)
}

/// Whether the catalogue has `key` in `lang` itself, without falling back.
pub fn has(lang: Lang, key: &str) -> bool {
    crate::_rust_i18n_try_translate(lang.code(), key).is_some()
        && (lang == Lang::En
            || crate::_rust_i18n_try_translate(lang.code(), key)
                != crate::_rust_i18n_try_translate("en", key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_map_to_languages_and_placeholders_are_filled() {
        assert_eq!(Lang::from_locale("zh_CN.UTF-8"), Lang::ZhCn);
        assert_eq!(Lang::from_locale("zh_SG"), Lang::ZhCn);
        assert_eq!(Lang::from_locale("zh_TW.UTF-8"), Lang::En);
        assert_eq!(Lang::from_locale("en_US.UTF-8"), Lang::En);
        assert_eq!(Lang::from_locale("C"), Lang::En);
        let t = tr_in(Lang::En, "udp-truncates.title", &[("detail", "1024")]);
        assert!(t.contains("1024 bytes") && !t.contains("%{"), "{t}");
        let z = tr_in(Lang::ZhCn, "udp-truncates.title", &[("detail", "1024")]);
        assert!(z.contains("1024") && z.contains("截断"), "{z}");
        assert_eq!(tr_in(Lang::ZhCn, "no.such.key", &[]), "no.such.key");
    }

    #[test]
    fn every_message_of_the_catalogue_is_in_english_and_in_chinese() {
        let text = include_str!("../locales/findings.yml");
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with([' ', '#', '_']) && l.ends_with(':'))
            .map(|l| l.trim_end_matches(':'))
            .collect();
        assert!(keys.len() > 60, "{keys:?}");
        for k in keys {
            assert!(has(Lang::En, k), "{k} has no English");
            assert!(has(Lang::ZhCn, k), "{k} has no Chinese of its own");
        }
    }
}
