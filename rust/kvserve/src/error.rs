//! Errors as values: the C ABI's status code and message, split into the parts
//! a caller branches on (which field, what was expected, what was given).
use kvserve_sys as sys;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A descriptor field is out of its domain: `field` is its path ("kv.page_size").
    InvalidProblem {
        op: String,
        field: String,
        expected: String,
        got: String,
    },
    /// A run or prepare argument (tensor or host array) does not fit the plan.
    InvalidArgument {
        op: String,
        argument: String,
        expected: String,
        got: String,
    },
    /// Any other invalid input (device, page-table entry), with the library's message.
    Invalid {
        message: String,
    },
    /// A valid request this build cannot serve; `config` names the missing kernel.
    Unsupported {
        config: String,
    },
    WorkspaceTooSmall {
        needed: usize,
        given: usize,
    },
    /// A host-side pool (BlockManager pages) is used up.
    ResourceExhausted {
        message: String,
    },
    Cuda {
        message: String,
    },
    Internal {
        message: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidProblem { op, field, expected, got } => {
                write!(f, "{op}: descriptor field '{field}': expected {expected}, got {got}")
            }
            Error::InvalidArgument { op, argument, expected, got } => {
                write!(f, "{op}: argument '{argument}': expected {expected}, got {got}")
            }
            Error::WorkspaceTooSmall { needed, given } => {
                write!(f, "workspace too small: {needed} bytes needed, {given} given")
            }
            Error::Unsupported { config } => write!(f, "unsupported: {config}"),
            Error::Invalid { message } | Error::ResourceExhausted { message } => f.write_str(message),
            Error::Cuda { message } => write!(f, "CUDA error: {message}"),
            Error::Internal { message } => write!(f, "internal error: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// "<op>: <what> '<name>': expected <e>, got <g>" split into its parts.
fn split_named<'m>(message: &'m str, what: &str) -> Option<(&'m str, &'m str, &'m str, &'m str)> {
    let marker = format!("{what} '");
    let at = message.find(&marker)?;
    let op = message[..at].trim_end().trim_end_matches(':');
    let rest = &message[at + marker.len()..];
    let (name, rest) = rest.split_once("': expected ")?;
    let (expected, got) = rest.rsplit_once(", got ")?;
    Some((op, name, expected, got))
}

impl Error {
    pub(crate) fn from_c(code: sys::kvs_status_code, err: &sys::kvs_error) -> Error {
        // SAFETY: the library always NUL-terminates the message (kvserve.h).
        let message = unsafe { std::ffi::CStr::from_ptr(err.message.as_ptr()) }.to_string_lossy().into_owned();
        let own = |s: &str| s.to_string();
        match code {
            sys::KVS_WORKSPACE_TOO_SMALL => {
                Error::WorkspaceTooSmall { needed: err.workspace_needed, given: err.workspace_got }
            }
            sys::KVS_UNSUPPORTED => Error::Unsupported { config: message },
            sys::KVS_RESOURCE_EXHAUSTED => Error::ResourceExhausted { message },
            sys::KVS_CUDA_ERROR => Error::Cuda { message },
            sys::KVS_INVALID_ARGUMENT => {
                if let Some((op, field, expected, got)) = split_named(&message, "descriptor field") {
                    Error::InvalidProblem { op: own(op), field: own(field), expected: own(expected), got: own(got) }
                } else if let Some((op, argument, expected, got)) = split_named(&message, "argument") {
                    Error::InvalidArgument {
                        op: own(op),
                        argument: own(argument),
                        expected: own(expected),
                        got: own(got),
                    }
                } else {
                    Error::Invalid { message }
                }
            }
            _ => Error::Internal { message },
        }
    }

    /// A Rust-side argument error (a view that does not fit its buffer).
    pub(crate) fn argument(argument: &str, expected: String, got: String) -> Error {
        Error::InvalidArgument { op: "kvserve (Rust)".into(), argument: argument.into(), expected, got }
    }
}

/// Calls a C entry point with an error record and turns its status into a Result.
pub(crate) fn check(call: impl FnOnce(*mut sys::kvs_error) -> sys::kvs_status_code) -> Result<()> {
    let mut err = sys::kvs_error::default();
    match call(&mut err) {
        sys::KVS_OK => Ok(()),
        code => Err(Error::from_c(code, &err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(code: sys::kvs_status_code, message: &str) -> sys::kvs_error {
        let mut err = sys::kvs_error { code, workspace_needed: 4096, workspace_got: 16, ..Default::default() };
        for (dst, src) in err.message.iter_mut().zip(message.bytes()) {
            *dst = src as std::ffi::c_char;
        }
        err
    }

    // Codes the CPU backend cannot produce from a bad descriptor (its plans
    // need no workspace; no CUDA there): the record's parts still map.
    #[test]
    fn every_status_code_maps_to_its_variant() {
        let cases = [
            (sys::KVS_WORKSPACE_TOO_SMALL, "x", Error::WorkspaceTooSmall { needed: 4096, given: 16 }),
            (sys::KVS_CUDA_ERROR, "out of memory", Error::Cuda { message: "out of memory".into() }),
            (sys::KVS_INTERNAL, "boom", Error::Internal { message: "boom".into() }),
            (sys::KVS_UNSUPPORTED, "Op: d=96 not built", Error::Unsupported { config: "Op: d=96 not built".into() }),
            (sys::KVS_RESOURCE_EXHAUSTED, "full", Error::ResourceExhausted { message: "full".into() }),
            (
                sys::KVS_INVALID_ARGUMENT,
                "Op: device: expected ordinal 0 for cpu, got 3",
                Error::Invalid { message: "Op: device: expected ordinal 0 for cpu, got 3".into() },
            ),
            (
                sys::KVS_INVALID_ARGUMENT,
                "Op: descriptor field 'kv.page_size': expected in [1, 1024], got 0",
                Error::InvalidProblem {
                    op: "Op".into(),
                    field: "kv.page_size".into(),
                    expected: "in [1, 1024]".into(),
                    got: "0".into(),
                },
            ),
            (
                sys::KVS_INVALID_ARGUMENT,
                "Op: argument 'q': expected rank 3, got rank 2 ([2, 8], strides [8, 1])",
                Error::InvalidArgument {
                    op: "Op".into(),
                    argument: "q".into(),
                    expected: "rank 3".into(),
                    got: "rank 2 ([2, 8], strides [8, 1])".into(),
                },
            ),
        ];
        for (code, message, want) in cases {
            assert_eq!(Error::from_c(code, &record(code, message)), want, "{message}");
        }
    }
}
