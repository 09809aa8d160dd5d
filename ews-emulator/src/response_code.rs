//! EWS response codes as errors that operations return per item or per request.

/// An EWS error answer: a `ResponseCode` and the `MessageText` Exchange would give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EwsError {
    /// Value of `m:ResponseCode` (an entry of the schema's `ResponseCodeType`).
    pub code: &'static str,
    /// Human readable `m:MessageText`.
    pub message: String,
}

impl EwsError {
    /// An error with a code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        EwsError { code, message: message.into() }
    }

    /// ErrorItemNotFound.
    pub fn item_not_found() -> Self {
        Self::new("ErrorItemNotFound", "The specified object was not found in the store.")
    }

    /// ErrorFolderNotFound.
    pub fn folder_not_found() -> Self {
        Self::new("ErrorFolderNotFound", "The specified folder could not be found in the store.")
    }

    /// ErrorAccessDenied.
    pub fn access_denied() -> Self {
        Self::new("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    }

    /// ErrorInvalidIdMalformed.
    pub fn id_malformed() -> Self {
        Self::new("ErrorInvalidIdMalformed", "Id is malformed.")
    }

    /// ErrorNonExistentMailbox.
    pub fn no_mailbox(address: &str) -> Self {
        Self::new("ErrorNonExistentMailbox", format!("The SMTP address has no mailbox associated with it: {address}"))
    }

    /// ErrorInvalidRequest with a reason.
    pub fn invalid_request(why: impl Into<String>) -> Self {
        Self::new("ErrorInvalidRequest", why)
    }
}

impl std::fmt::Display for EwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for EwsError {}
