//! Error plumbing shared by every layer. The error types themselves live
//! with their layer (`config::Problem`, `request::Reject`,
//! `service::ServeError`, ...).

use std::fmt;

/// Displays an error followed by each of its causes: `a: b: c`.
pub struct Chain<'a>(pub &'a dyn std::error::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_follow_the_error() {
        let inner = std::io::Error::other("disk full");
        let outer = crate::service::ServeError::Storage(inner);
        assert_eq!(
            Chain(&outer).to_string(),
            "Cache Error, check the server log: disk full"
        );
    }
}
