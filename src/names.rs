//! Enums whose variants have one stable name each, used alike in JSON
//! (serde), in the journal's database, in messages and in human output —
//! written once, so those can never disagree.

/// Defines a plain enum whose variants have stable names: `as_str`,
/// `FromStr`, `Display`, and serde under the same names. A variant may have
/// further names that `FromStr` alone accepts (`Markdown = "markdown" | "md"`).
/// `FromStr` takes a name exactly, or else trimmed and in any case (what a
/// person types); serde and `as_str` only ever use the first name.
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $name:ident as $kind:literal {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal $(| $alias:literal)*,)+
    }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> Result<Self, $crate::names::UnknownName> {
                match s {
                    $($text => return Ok($name::$variant),)+
                    _ => {}
                }
                let loose = s.trim();
                $(
                    if loose.eq_ignore_ascii_case($text)
                        $(|| loose.eq_ignore_ascii_case($alias))*
                    {
                        return Ok($name::$variant);
                    }
                )+
                Err($crate::names::UnknownName {
                    kind: $kind,
                    value: s.to_string(),
                    names: &[$($text),+],
                })
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use named_enum;

/// A name that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}` ({})", choices(names))]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
    /// The names there are.
    pub names: &'static [&'static str],
}

/// `a, b or c`.
fn choices(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}
