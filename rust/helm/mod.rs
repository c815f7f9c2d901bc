//! helm: detecting Helm 3 or 4, building its arguments, running it, reading
//! the release back.
