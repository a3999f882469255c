//! The `options!` macro: turns the one table of [`super::options`] into everything an option
//! needs, so an option is declared once.
//!
//! From each entry (`Key field: Type as Kind = default, group, help, example, bad, check, shown`)
//! it generates: the field (with the entry's doc) of [`super::Config`] or
//! [`crate::security::SecurityConfig`], its default in the one `impl Default`, the [`super::Key`]
//! variant (TOML key = field name, `--flag`, `RINGCAST_*` variable), its [`super::Spec`] (what
//! `serve --help` and the clap argument are built from), and the `set` / `render` / `toml_value`
//! / `check_each` arms that read, print and check it. The value kinds themselves are in
//! [`super::kind`]; rules between options are hand-written in [`super::validate`].
//!
//! It must never hold behaviour of its own: a macro is hard to read, so everything it generates
//! is a one-line dispatch to a kind or a check.

/// `Some(expr)` when given an expression, `None` otherwise (for an entry's optional parts).
macro_rules! some_or_none {
    () => {
        None
    };
    ($e:expr) => {
        Some($e)
    };
}

/// See the module doc. Two sections: `Config`'s own fields, then `SecurityConfig`'s (reached as
/// `config.security.FIELD`).
macro_rules! options {
    (
        $(#[$cattr:meta])*
        pub struct Config {
            $(
                $(#[$cdoc:meta])*
                $CKey:ident $cfield:ident : $cty:ty as $ckind:ident = $cdefault:expr,
                group $cgroup:literal, help $chelp:literal,
                example $cexample:literal, bad $cbad:literal
                $(, check $ccheck:expr)?
                $(, shown $cshown:expr)?
                ;
            )*
        }
        $(#[$sfdoc:meta])*
        pub security:
        $(#[$sattr:meta])*
        pub struct SecurityConfig {
            $(
                $(#[$sdoc:meta])*
                $SKey:ident $sfield:ident : $sty:ty as $skind:ident = $sdefault:expr,
                group $sgroup:literal, help $shelp:literal,
                example $sexample:literal, bad $sbad:literal
                $(, check $scheck:expr)?
                ;
            )*
        }
    ) => {
        $(#[$cattr])*
        pub struct Config {
            $( $(#[$cdoc])* pub $cfield: $cty, )*
            $(#[$sfdoc])*
            pub security: SecurityConfig,
        }

        $(#[$sattr])*
        pub struct SecurityConfig {
            $( $(#[$sdoc])* pub $sfield: $sty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    $( $cfield: $cdefault, )*
                    security: SecurityConfig::default(),
                }
            }
        }

        impl Default for SecurityConfig {
            fn default() -> Self {
                SecurityConfig {
                    $( $sfield: $sdefault, )*
                }
            }
        }

        /// One option. Its TOML key is [`Key::name`] (the field name), its flag `--`[`Key::flag`],
        /// its environment variable [`Key::env_var`]; the rest of its declaration is
        /// [`Key::spec`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)] // each variant is the field of the same name
        pub enum Key {
            $( $CKey, )*
            $( $SKey, )*
        }

        impl Key {
            /// How many options there are.
            pub const COUNT: usize = [$( stringify!($CKey), )* $( stringify!($SKey), )*].len();

            /// Every option, in declaration order (the order `--print-config` writes them).
            pub const ALL: [Key; Key::COUNT] = [$( Key::$CKey, )* $( Key::$SKey, )*];

            /// The option's declaration.
            pub fn spec(self) -> &'static Spec {
                &SPECS[self.index()]
            }
        }

        /// Every declaration, indexed by `Key as usize`.
        static SPECS: [Spec; Key::COUNT] = [
            $(
                Spec {
                    name: stringify!($cfield),
                    group: $cgroup,
                    help: $chelp,
                    example: $cexample,
                    bad: $cbad,
                    bare_flag: <$crate::config::kind::$ckind as $crate::config::kind::Kind<$cty>>::BARE_FLAG,
                    value_name: <$crate::config::kind::$ckind as $crate::config::kind::Kind<$cty>>::value_name,
                    shown: $crate::config::declare::some_or_none!($($cshown)?),
                },
            )*
            $(
                Spec {
                    name: stringify!($sfield),
                    group: $sgroup,
                    help: $shelp,
                    example: $sexample,
                    bad: $sbad,
                    bare_flag: <$crate::config::kind::$skind as $crate::config::kind::Kind<$sty>>::BARE_FLAG,
                    value_name: <$crate::config::kind::$skind as $crate::config::kind::Kind<$sty>>::value_name,
                    shown: None,
                },
            )*
        ];

        impl Config {
            /// Sets `at.key` from one raw value. Rules are left to [`Config::validate`].
            pub(super) fn set(
                &mut self,
                at: &$crate::config::load::Provenance,
                raw: $crate::config::kind::Raw<'_>,
            ) -> Result<(), $crate::config::ConfigError> {
                use $crate::config::kind::Kind as _;
                let r = $crate::config::kind::Reader { at };
                match at.key {
                    $( Key::$CKey => self.$cfield = $crate::config::kind::$ckind::read(&r, raw)?, )*
                    $( Key::$SKey => self.security.$sfield = $crate::config::kind::$skind::read(&r, raw)?, )*
                }
                Ok(())
            }

            /// The value of `key`, written as it would be in a flag or environment variable (and,
            /// quoted where TOML needs it, in the file): `"16MiB"`, `"30s"`, `"chat,v2"`, `"off"`.
            /// A set secret is rendered too: only [`Config::to_toml`] hides it.
            pub fn render(&self, key: Key) -> String {
                use $crate::config::kind::Kind as _;
                match key {
                    $( Key::$CKey => $crate::config::kind::$ckind::render(&self.$cfield), )*
                    $( Key::$SKey => $crate::config::kind::$skind::render(&self.security.$sfield), )*
                }
            }

            /// The value of `key` as TOML, or `None` for a value never printed (a set secret).
            pub(super) fn toml_value(&self, key: Key) -> Option<toml::Value> {
                use $crate::config::kind::Kind as _;
                match key {
                    $( Key::$CKey => $crate::config::kind::$ckind::toml(&self.$cfield), )*
                    $( Key::$SKey => $crate::config::kind::$skind::toml(&self.security.$sfield), )*
                }
            }

            /// Runs each option's own `check`, in declaration order.
            pub(super) fn check_each(
                &self,
                at: &dyn Fn(Key) -> $crate::config::load::Provenance,
            ) -> Result<(), $crate::config::ConfigError> {
                $( $(
                    let check: fn(&$cty) -> Result<(), $crate::config::error::Refusal> = $ccheck;
                    check(&self.$cfield)
                        .map_err(|refusal| refusal.at(at(Key::$CKey), self.render(Key::$CKey)))?;
                )? )*
                $( $(
                    let check: fn(&$sty) -> Result<(), $crate::config::error::Refusal> = $scheck;
                    check(&self.security.$sfield)
                        .map_err(|refusal| refusal.at(at(Key::$SKey), self.render(Key::$SKey)))?;
                )? )*
                Ok(())
            }
        }
    };
}

pub(super) use options;
pub(super) use some_or_none;
