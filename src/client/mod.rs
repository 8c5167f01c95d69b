//! The typed HTTP client of the registry API.
