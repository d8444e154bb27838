//! The closed string enums of runs and their content, as the contract spells them.

/// A string enum with its wire spelling: deserializes only the listed values (naming
/// them in the error) and gives back the text to store.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        // By hand: the derive does not see a `rename` passed through a macro.
        impl utoipa::__dev::ComposeSchema for $name {
            fn compose(
                _: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
            ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

text_enum!(
    /// Outcome of a run.
    RunOutcome { Pass = "PASS", Fail = "FAIL", Error = "ERROR", Timeout = "TIMEOUT", Aborted = "ABORTED" }
);

text_enum!(
    /// Outcome of a phase.
    PhaseOutcome { Pass = "PASS", Fail = "FAIL", Skip = "SKIP", Error = "ERROR" }
);

text_enum!(
    /// Outcome of a measurement, validator or aggregation.
    MeasurementOutcome { Pass = "PASS", Fail = "FAIL", Unset = "UNSET" }
);

text_enum!(
    /// Outcome of a sequence call.
    SequenceOutcome {
        Pass = "PASS", Fail = "FAIL", Error = "ERROR", Timeout = "TIMEOUT", Aborted = "ABORTED",
        Skip = "SKIP",
    }
);

text_enum!(
    /// Severity of a log line.
    LogLevel { Debug = "DEBUG", Info = "INFO", Warning = "WARNING", Error = "ERROR", Critical = "CRITICAL" }
);

text_enum!(
    /// Where a config value or secret came from.
    VariableSource {
        Default = "default", Shell = "shell", Dotenv = "dotenv", Process = "process",
        Station = "station", Procedure = "procedure", Organization = "organization",
    }
);

text_enum!(
    /// Kind of a measured value, for measurement list filters.
    MeasurementType {
        Numeric = "numeric", Boolean = "boolean", String = "string",
        Multidimensional = "multidimensional", Empty = "empty", Json = "json",
    }
);

text_enum!(
    /// Unit sample kinds in list filters (`production` = not a sample).
    SampleFilter { Production = "production", Golden = "golden", Failing = "failing", Ignored = "ignored" }
);

text_enum!(
    /// A deployment environment (accepted in filters; tofulab has no deployments).
    Environment { Production = "production", Preview = "preview", Development = "development" }
);

text_enum!(
    /// A deployment's build status (accepted in filters; tofulab has no deployments).
    BuildStatus { Pending = "pending", Building = "building", Ready = "ready", Failed = "failed" }
);
