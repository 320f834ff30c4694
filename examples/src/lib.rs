//! Runnable examples of egress-core: see the `[[example]]` targets in this package.
