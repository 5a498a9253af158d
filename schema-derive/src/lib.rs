//! `#[derive(Schema)]` for `roomcast-schema`.
