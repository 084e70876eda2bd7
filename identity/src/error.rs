//! The identity layer's error type. Client errors carry a stable code and a human message; internal
//! failures carry context for the log and are never shown to a client.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input failed a rule; `field` names the input, `code` is stable and machine-readable.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        code: &'static str,
        message: String,
    },
    #[error("not found")]
    NotFound,
    #[error("you are not signed in")]
    Unauthenticated,
    #[error("you do not have permission to do this")]
    Forbidden,
    /// The one message for unknown account, wrong password and disabled account.
    #[error("Incorrect email or password.")]
    InvalidCredentials,
    #[error("Too many failed sign-in attempts. Try again in a few minutes.")]
    Throttled { retry_after_secs: i64 },
    /// A rule about the current state refused the change (e.g. the last owner).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn internal(
        context: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Internal {
            context,
            source: Box::new(source),
        }
    }

    /// The stable, machine-readable code clients can match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. } | Self::Conflict { code, .. } => code,
            Self::NotFound => "not_found",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Throttled { .. } => "too_many_attempts",
            Self::Internal { .. } => "internal",
        }
    }

    /// The input field the error is about, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The message safe to show a client (internal details are never included).
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal { .. } => "Something went wrong on our side.".to_owned(),
            other => other.to_string(),
        }
    }
}

/// Adds context to an internal failure: `.context("Failed to store staff session")`.
pub trait Context<T> {
    fn context(self, context: &'static str) -> Result<T>;
}

impl<T, E> Context<T> for std::result::Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn context(self, context: &'static str) -> Result<T> {
        self.map_err(|e| Error::internal(context, e))
    }
}

/// True when the database refused a write because of a unique constraint.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}
