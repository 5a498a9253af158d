//! Errors that reach clients.

use std::borrow::Cow;

use crate::protocol::error_code;

/// An error a hook returns to refuse or abort an operation; its code and
/// message reach the client (`err.code` / `err.message` in the SDKs).
///
/// # Examples
///
/// ```
/// use roomcast::ServerError;
///
/// let err = ServerError::new(4401, "bad password");
/// assert_eq!(err.code, 4401);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct ServerError {
    /// The code the client sees.
    pub code: u16,
    /// The message the client sees.
    pub message: Cow<'static, str>,
}

impl ServerError {
    /// A new error with a code and a message.
    pub fn new(code: u16, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `APPLICATION_ERROR` (526) with a message.
    pub fn application(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(error_code::APPLICATION_ERROR, message)
    }

    #[cold]
    pub(crate) fn expired() -> Self {
        Self::new(error_code::MATCHMAKE_EXPIRED, "seat reservation expired.")
    }
}
