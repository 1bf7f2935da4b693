//! Data sets in their standard formats.
