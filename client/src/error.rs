//! Errors, one enum per operation, and the protocol's error codes.

use std::fmt;

use roomcast_schema::types::TypeError;
use roomcast_schema::wire::DecodeError;

/// An error code of the protocol (spec `room-protocol.md` §2.3), as a
/// matchmaking call or an ERROR frame carries it. The 0.16 codes
/// (4210–4216) read as the same variants.
///
/// # Examples
///
/// ```
/// use roomcast_client::ErrorCode;
/// assert_eq!(ErrorCode::from_code(522), ErrorCode::InvalidRoomId);
/// assert_eq!(ErrorCode::from_code(4212), ErrorCode::InvalidRoomId);
/// assert_eq!(ErrorCode::from_code(4401), ErrorCode::Other(4401));
/// assert_eq!(ErrorCode::AuthFailed.code(), 525);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 520 `MATCHMAKE_NO_HANDLER`: unknown method, or no room of that name
    /// is defined.
    NoHandler,
    /// 521 `MATCHMAKE_INVALID_CRITERIA`: `join` found no room that matches.
    InvalidCriteria,
    /// 522 `MATCHMAKE_INVALID_ROOM_ID`: `joinById` / `reconnect`: the room
    /// is not found, locked or disposed.
    InvalidRoomId,
    /// 523 `MATCHMAKE_UNHANDLED`: an exception in the room's `onCreate` /
    /// `onJoin`, a missing reconnection token, …
    Unhandled,
    /// 524 `MATCHMAKE_EXPIRED`: the seat reservation expired or was used,
    /// or the reconnection token is unknown.
    Expired,
    /// 525 `AUTH_FAILED`: the room's `onAuth` refused the client.
    AuthFailed,
    /// 526 `APPLICATION_ERROR`: the application threw without a code.
    ApplicationError,
    /// 4217 `INVALID_PAYLOAD`: a message payload the room refused.
    InvalidPayload,
    /// Any other code (an application's own, or an HTTP status).
    Other(u32),
}

impl ErrorCode {
    /// The variant of a numeric code.
    #[must_use]
    pub fn from_code(code: u32) -> Self {
        match code {
            520 | 4210 => Self::NoHandler,
            521 | 4211 => Self::InvalidCriteria,
            522 | 4212 => Self::InvalidRoomId,
            523 | 4213 => Self::Unhandled,
            524 | 4214 => Self::Expired,
            525 | 4215 => Self::AuthFailed,
            526 | 4216 => Self::ApplicationError,
            4217 => Self::InvalidPayload,
            other => Self::Other(other),
        }
    }

    /// The numeric code (0.18 numbering).
    #[must_use]
    pub fn code(self) -> u32 {
        match self {
            Self::NoHandler => 520,
            Self::InvalidCriteria => 521,
            Self::InvalidRoomId => 522,
            Self::Unhandled => 523,
            Self::Expired => 524,
            Self::AuthFailed => 525,
            Self::ApplicationError => 526,
            Self::InvalidPayload => 4217,
            Self::Other(code) => code,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// Why an endpoint given to [`Client::new`](crate::Client::new) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Not of the form `http://host[:port][/path][?query]` (or `ws://`).
    #[error("invalid endpoint {0:?}: expected http://host[:port][/path]")]
    Invalid(String),
    /// `https` / `wss`: this client has no TLS; put a TLS-terminating proxy
    /// in front of it or use a plain endpoint.
    #[error("TLS endpoints (https, wss) are not supported by this client")]
    TlsUnsupported,
}

/// Why a matchmaking HTTP call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The server answered with an error: the code is the HTTP status (as
    /// the 0.18 SDK reports it), or the body's `code` for a 0.16-style
    /// error with status 200.
    #[error("server error {code}: {message}")]
    Server {
        /// The error code.
        code: ErrorCode,
        /// The server's message (`error` of the body, or the status text).
        message: String,
    },
    /// The TCP connection or the HTTP exchange failed.
    #[error("HTTP request failed: {0}")]
    Http(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request took longer than the configured timeout.
    #[error("HTTP request timed out")]
    Timeout,
    /// The answer is not what the protocol describes (not JSON, missing
    /// fields, too large).
    #[error("invalid server response: {0}")]
    InvalidResponse(String),
}

impl RequestError {
    /// The protocol error code, for [`RequestError::Server`].
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Why joining a room (any of the `Client` join methods, or
/// [`Client::reconnect`](crate::Client::reconnect)) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The matchmaking call failed (`520` unknown room name, `521` no room
    /// to join, `522` unknown room id, …: see [`JoinError::code`]).
    #[error("matchmaking failed: {0}")]
    MatchMake(#[from] RequestError),
    /// The room refused the connection with an ERROR frame (its `onAuth`
    /// failed, the seat reservation expired, …).
    #[error("the room refused the join with error {code}: {message}")]
    Refused {
        /// The error code.
        code: ErrorCode,
        /// The room's message.
        message: String,
    },
    /// The WebSocket closed before the room's JOIN_ROOM handshake.
    #[error("the connection closed before the join completed (code {code}: {reason})")]
    Closed {
        /// The close code (1006 when there was none).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The WebSocket connection could not be opened.
    #[error("WebSocket connection failed: {0}")]
    WebSocket(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The JOIN_ROOM handshake or its Reflection bytes are malformed.
    #[error("invalid handshake: {0}")]
    Handshake(#[from] DecodeError),
    /// The typed state's Rust types do not make a valid schema.
    #[error("invalid state type: {0}")]
    StateType(#[from] TypeError),
    /// A reconnection token not of the form `roomId:token`.
    #[error("invalid reconnection token: expected roomId:token")]
    InvalidToken,
    /// The join options could not be serialized to JSON.
    #[error("invalid join options: {0}")]
    Options(#[source] serde_json::Error),
    /// No JOIN_ROOM arrived within the configured timeout.
    #[error("the join timed out")]
    Timeout,
}

impl JoinError {
    /// The protocol error code of a refused join: the matchmaking error's
    /// code, or the ERROR frame's.
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_client::{ErrorCode, JoinError};
    /// let e = JoinError::Refused { code: ErrorCode::Expired, message: "seat reservation expired.".into() };
    /// assert_eq!(e.code(), Some(ErrorCode::Expired));
    /// ```
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::MatchMake(e) => e.code(),
            Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The payload could not be encoded as MessagePack.
    #[error("cannot encode the payload: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The room was left: its connection task has ended.
    #[error("the room was left")]
    Closed,
}

/// Why a received message's payload could not be read as the asked type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The payload is not MessagePack of that shape.
    #[error("cannot decode the payload: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// A ROOM_DATA_BYTES message: its payload is raw bytes.
    #[error("the message carries raw bytes, not MessagePack")]
    RawBytes,
}

/// Why a [`RoomSender::request`](crate::RoomSender::request) got no
/// answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The room rejected the request (status REJECTED); `reason` is what it
    /// gave (JSON `null` when none, or not readable).
    #[error("the room rejected the request: {reason}")]
    Rejected {
        /// The room's reason.
        reason: serde_json::Value,
    },
    /// The room's handler failed, or there is none (status ERROR).
    #[error("the request failed: {message}")]
    Failed {
        /// The error's name (`"invalid_payload"`, …), if given.
        name: Option<String>,
        /// The error's message.
        message: String,
        /// The error's code, if given.
        code: Option<u32>,
    },
    /// No answer within the timeout.
    #[error("the request timed out")]
    Timeout,
    /// The connection closed (or was not open) before the answer.
    #[error("the connection closed before the answer")]
    Closed,
    /// The payload could not be encoded.
    #[error("cannot encode the payload: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The answer is not MessagePack of the asked type.
    #[error("cannot decode the answer: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

/// Why [`Client::get_latency`](crate::Client::get_latency) has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LatencyError {
    /// The WebSocket connection could not be opened.
    #[error("WebSocket connection failed: {0}")]
    WebSocket(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The server closed the connection before answering every ping.
    #[error("the connection closed before the answers")]
    Closed,
    /// No answer within 1.5 s.
    #[error("the latency probe timed out")]
    Timeout,
}
