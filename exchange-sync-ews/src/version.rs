//! Schema versions (`t:RequestServerVersion`) and how the client steps down through them.

/// The request schema versions the client can speak, newest last.
///
/// A server rejects a version newer than itself with ErrorInvalidServerVersion; the client then
/// retries with [`ExchangeVersion::older`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ExchangeVersion {
    /// Exchange 2007 SP1: pull notifications, SyncFolderItems.
    Exchange2007Sp1,
    /// Exchange 2010.
    Exchange2010,
    /// Exchange 2010 SP1: streaming notifications.
    Exchange2010Sp1,
    /// Exchange 2010 SP2.
    Exchange2010Sp2,
    /// Exchange 2013: modern public folders.
    Exchange2013,
    /// Exchange 2013 SP1.
    Exchange2013Sp1,
    /// Exchange 2016 (also what 2019 and Subscription Edition accept).
    Exchange2016,
}

impl ExchangeVersion {
    /// Every version, oldest first.
    pub const ALL: [Self; 7] = [
        Self::Exchange2007Sp1,
        Self::Exchange2010,
        Self::Exchange2010Sp1,
        Self::Exchange2010Sp2,
        Self::Exchange2013,
        Self::Exchange2013Sp1,
        Self::Exchange2016,
    ];

    /// The schema name sent in `RequestServerVersion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exchange2007Sp1 => "Exchange2007_SP1",
            Self::Exchange2010 => "Exchange2010",
            Self::Exchange2010Sp1 => "Exchange2010_SP1",
            Self::Exchange2010Sp2 => "Exchange2010_SP2",
            Self::Exchange2013 => "Exchange2013",
            Self::Exchange2013Sp1 => "Exchange2013_SP1",
            Self::Exchange2016 => "Exchange2016",
        }
    }

    /// The version from its schema name (as in `ServerVersionInfo/@Version`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == name)
    }

    /// The next older version, to retry with when the server refuses this one.
    pub fn older(self) -> Option<Self> {
        let i = Self::ALL.iter().position(|v| *v == self)?;
        i.checked_sub(1).map(|j| Self::ALL[j])
    }

    /// Whether this version has streaming notifications (2010 SP1 and later).
    pub fn supports_streaming(self) -> bool {
        self >= Self::Exchange2010Sp1
    }

    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_down_to_the_oldest() {
        let mut v = ExchangeVersion::Exchange2016;
        let mut seen = vec![v];
        while let Some(o) = v.older() {
            v = o;
            seen.push(v);
        }
        assert_eq!(seen.len(), ExchangeVersion::ALL.len());
        assert_eq!(v, ExchangeVersion::Exchange2007Sp1);
        assert_eq!(ExchangeVersion::parse("Exchange2010_SP1"), Some(ExchangeVersion::Exchange2010Sp1));
        assert!(!ExchangeVersion::Exchange2010.supports_streaming());
    }
}
