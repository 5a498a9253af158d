//! Readers for every primitive encoding (spec `schema-wire.md` §2).
